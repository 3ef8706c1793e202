/**
 * `/readyz`: ready when the store answers (within a bound) and, when a supergraph is configured,
 * one is being served. A failed reload keeps the last good supergraph in service, so it stays
 * ready, reported as `stale` with the count of failed reloads since the last good one.
 */
import type { SupergraphStatus } from '../gateway/supergraphSource.js';

export interface ReadinessDeps {
  readonly store: { ping(): Promise<void> };
  /** null: no supergraph configured. */
  readonly supergraph: { status(): SupergraphStatus } | null;
  /** A store that does not answer within this time counts as unavailable. */
  readonly timeoutMs: number;
}

export interface ReadinessReport {
  readonly status: 'ready' | 'not ready';
  readonly store: 'ok' | 'unavailable';
  readonly supergraph: 'ok' | 'stale' | 'none';
  /** Only when stale: failed reloads since the last good supergraph. */
  readonly supergraphReloadFailures?: number;
}

export interface Readiness {
  readonly ready: boolean;
  readonly report: ReadinessReport;
  /** Why the store check failed, for the log (never for the response). */
  readonly storeError: unknown;
}

async function pingWithin(store: ReadinessDeps['store'], timeoutMs: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the store did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([store.ping(), timeout]);
    return null;
  } catch (e) {
    return e ?? new Error('store ping failed');
  } finally {
    clearTimeout(timer);
  }
}

export async function checkReadiness(deps: ReadinessDeps): Promise<Readiness> {
  const storeError = await pingWithin(deps.store, deps.timeoutMs);
  const supergraph = deps.supergraph?.status() ?? null;
  const ready = storeError === null;
  const report: ReadinessReport = Object.freeze({
    status: ready ? 'ready' : 'not ready',
    store: storeError === null ? 'ok' : 'unavailable',
    supergraph: supergraph === null ? 'none' : supergraph.state,
    ...(supergraph?.state === 'stale' && { supergraphReloadFailures: supergraph.failedReloads }),
  });
  return Object.freeze({ ready, report, storeError });
}
