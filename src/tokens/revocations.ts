/**
 * Revocation of deleted connections' tokens at their provider (RFC 7009), from the store's durable
 * queue: a delete moved the tokens there in its own transaction and never waited on the provider.
 * Every replica runs this worker; each queued row is claimed by one at a time and retried with
 * backoff until revoked, or given up after REVOCATION_MAX_ATTEMPTS (logged and counted).
 */
import type { Envelope } from '../crypto/envelope.js';
import type { StoredTokenSet } from '../domain/model.js';
import { asGatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { OAuthClient } from '../oauth/client.js';
import type { OAuthClientConfig } from '../oauth/types.js';
import { findIdentityProvider } from '../providers/catalog.js';
import { resolveEndpoints } from '../providers/endpoints.js';
import { QueueLoop, backoffMs } from '../registry/queueLoop.js';
import type { RevocationRecord, Store } from '../store/types.js';

export const REVOCATION_MAX_ATTEMPTS = 8;
export const REVOCATION_RETRY_BASE_MS = 5_000;
const REVOCATION_RETRY_MAX_MS = 15 * 60_000;
const REVOCATION_POLL_INTERVAL_MS = 5_000;
const REVOCATION_BATCH_SIZE = 20;

/** revoked: done; unsupported: the provider names no revocation endpoint; retried; failed: given up. */
export type RevocationOutcome = 'revoked' | 'unsupported' | 'retried' | 'failed';

export interface RevocationWorkerOptions {
  readonly store: Store;
  readonly envelope: Envelope;
  /** Its own client: nothing of a revocation stays cached beside the live connections' clients. */
  readonly oauth: OAuthClient;
  readonly allowInsecureHttp: boolean;
  /** A claim lasts this long: past it, a row whose worker died is due again. */
  readonly leaseMs: number;
  readonly logger: Logger;
  readonly onOutcome: (outcome: RevocationOutcome) => void;
  readonly now?: () => Date;
  readonly maxAttempts?: number;
  readonly retryBaseMs?: number;
  readonly pollIntervalMs?: number;
}

class GiveUp extends Error {}

function clientConfigOf(
  revocation: RevocationRecord,
  clientSecret: string | null,
  allowInsecureHttp: boolean,
): OAuthClientConfig {
  const entry = findIdentityProvider(revocation.identityProvider);
  if (entry === undefined) throw new GiveUp(`unknown identity provider ${revocation.identityProvider}`);
  const endpoints = resolveEndpoints(entry, revocation.parameters, { allowInsecureHttp });
  return {
    cacheKey: `revocation:${revocation.id}`,
    issuer: endpoints.issuer,
    discoveryUrl: endpoints.discoveryUrl,
    authorizationUrl: endpoints.authorizationUrl,
    tokenUrl: endpoints.tokenUrl,
    revocationUrl: endpoints.revocationUrl,
    clientId: revocation.clientId,
    clientSecret,
    quirks: { ...entry.quirks, extraAuthorizationParams: {} },
  };
}

export class RevocationWorker {
  readonly #options: RevocationWorkerOptions;
  readonly #loop: QueueLoop;

  constructor(options: RevocationWorkerOptions) {
    this.#options = options;
    this.#loop = new QueueLoop({
      step: () => this.#step(),
      intervalMs: options.pollIntervalMs ?? REVOCATION_POLL_INTERVAL_MS,
      onError: (err) => options.logger.warn({ err }, 'revocation queue step failed'),
    });
  }

  start(): void {
    this.#loop.start();
  }

  /** A delete just queued tokens: revoke them now rather than at the next poll. */
  wake(): void {
    this.#loop.wake();
  }

  /** Works the queue until nothing is due (tests). */
  async drain(): Promise<void> {
    this.#loop.wake();
    await this.#loop.idle();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }

  async #step(): Promise<boolean> {
    const { store, leaseMs } = this.#options;
    const claimed = await store.claimRevocations(this.#now(), REVOCATION_BATCH_SIZE, leaseMs);
    await Promise.all(claimed.map((r) => this.#process(r)));
    return claimed.length === REVOCATION_BATCH_SIZE;
  }

  #now(): Date {
    return this.#options.now?.() ?? new Date();
  }

  async #process(revocation: RevocationRecord): Promise<void> {
    const { store, logger, onOutcome } = this.#options;
    const where = {
      provider: revocation.providerId,
      connection: revocation.connectionId,
      attempt: revocation.attempts,
    };
    try {
      const revoked = await this.#revoke(revocation);
      await store.deleteRevocation(revocation.id);
      onOutcome(revoked ? 'revoked' : 'unsupported');
      if (!revoked)
        logger.info(
          where,
          "the provider names no revocation endpoint: a deleted connection's tokens were dropped unrevoked",
        );
      return;
    } catch (e) {
      const error = asGatewayError(e);
      const maxAttempts = this.#options.maxAttempts ?? REVOCATION_MAX_ATTEMPTS;
      if (e instanceof GiveUp || revocation.attempts >= maxAttempts) {
        await store.deleteRevocation(revocation.id);
        onOutcome('failed');
        logger.error(
          { ...where, code: error.code, reason: e instanceof Error ? e.message : String(e) },
          "revoking a deleted connection's tokens failed; given up",
        );
        return;
      }
      const delay = backoffMs(
        revocation.attempts,
        this.#options.retryBaseMs ?? REVOCATION_RETRY_BASE_MS,
        REVOCATION_RETRY_MAX_MS,
      );
      await store.retryRevocationAt(revocation.id, new Date(this.#now().getTime() + delay));
      onOutcome('retried');
      logger.warn(
        { ...where, code: error.code, retryInMs: delay },
        "revoking a deleted connection's tokens failed; will retry",
      );
    }
  }

  /** False when the provider names no revocation endpoint. */
  async #revoke(revocation: RevocationRecord): Promise<boolean> {
    const { envelope, oauth, allowInsecureHttp } = this.#options;
    const tokens = JSON.parse(
      envelope.open(revocation.tokens, { kind: 'revocation', field: 'tokens', revocationId: revocation.id }),
    ) as StoredTokenSet;
    const clientSecret =
      revocation.clientSecret === null
        ? null
        : envelope.open(revocation.clientSecret, {
            kind: 'revocation',
            field: 'clientSecret',
            revocationId: revocation.id,
          });
    const config = clientConfigOf(revocation, clientSecret, allowInsecureHttp);
    try {
      // The refresh token first: it is what outlives the connection. Revoking it again is harmless (RFC 7009 §2.2).
      if (tokens.refreshToken) {
        if (!(await oauth.revoke(config, tokens.refreshToken, 'refresh_token'))) return false;
        // Many providers revoke a grant's access tokens with its refresh token, or cannot revoke JWTs: best effort.
        await oauth.revoke(config, tokens.accessToken, 'access_token').catch(() => undefined);
        return true;
      }
      return await oauth.revoke(config, tokens.accessToken, 'access_token');
    } finally {
      oauth.forgetWhere((key) => key === config.cacheKey);
    }
  }
}
