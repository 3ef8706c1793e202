/**
 * The consent kit as an Apollo Link: when a result carries CONNECTION_NOT_CONNECTED or
 * REAUTHORIZATION_REQUIRED with a `loginUrl`, the result is delivered as it is (the other
 * subgraphs' data shows at once), the consents run one after the other (see consent.ts), and the
 * operation is sent again once if any was confirmed. Consents for the same link that are already
 * under way are joined, not opened twice; after a blocked popup or a cancel, no further popup opens
 * for that result.
 *
 *   const client = new ApolloClient({
 *     cache: new InMemoryCache(),
 *     link: ApolloLink.from([createConsentLink({ gatewayOrigin, getToken }), authLink, httpLink]),
 *   });
 */
import { ApolloLink } from '@apollo/client';
import { Observable, type Subscription } from 'rxjs';
import {
  consentsNeeded,
  requestConsent,
  type ConsentNeeded,
  type ConsentProgress,
  type ConsentRequestOptions,
} from './consent.js';

export type ConsentLinkOptions = ConsentRequestOptions;

/** The consents of one result, one after the other; stops at the first cancel or blocked popup. */
async function runAll(
  needed: readonly ConsentNeeded[],
  start: (n: ConsentNeeded) => Promise<ConsentProgress>,
): Promise<ConsentProgress[]> {
  const outcomes: ConsentProgress[] = [];
  for (const n of needed) {
    const outcome = await start(n);
    outcomes.push(outcome);
    if (outcome.status === 'cancelled' || outcome.code === 'POPUP_BLOCKED') break;
  }
  return outcomes;
}

export function createConsentLink(options: ConsentLinkOptions): ApolloLink {
  // One consent per login link at a time, shared by every operation that needs it.
  const inFlight = new Map<string, Promise<ConsentProgress>>();
  const start = (needed: ConsentNeeded): Promise<ConsentProgress> => {
    const running = inFlight.get(needed.loginUrl);
    if (running) return running;
    const started = requestConsent(needed, options).finally(() => inFlight.delete(needed.loginUrl));
    inFlight.set(needed.loginUrl, started);
    return started;
  };

  return new ApolloLink((operation, forward) => {
    return new Observable<ApolloLink.Result>((observer) => {
      let current: Subscription | null = null;
      let stopped = false;
      const send = (retry: boolean): void => {
        let consents: Promise<ConsentProgress[]> | null = null;
        current = forward(operation).subscribe({
          next: (result) => {
            observer.next(result);
            const needed = retry ? [] : consentsNeeded('errors' in result ? result.errors : undefined);
            if (needed.length > 0) consents = runAll(needed, start);
          },
          error: (e: unknown) => observer.error(e),
          complete: () => {
            if (consents === null) return observer.complete();
            void consents.then((outcomes) => {
              if (stopped) return;
              if (outcomes.some((o) => o.status === 'confirmed')) send(true);
              else observer.complete();
            });
          },
        });
      };
      send(false);
      return () => {
        stopped = true;
        current?.unsubscribe();
      };
    });
  });
}
