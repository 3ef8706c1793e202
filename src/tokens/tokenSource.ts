/**
 * Usable access tokens from the store: open, and when expired or inside the refresh skew, refresh
 * (authorization code) or acquire (client credentials). One refresh per connection at a time: a
 * shared promise in this process, the store's connection lock across processes, then a re-read,
 * because another holder may have refreshed already. New tokens are persisted before anyone uses them,
 * and every replica is told (ChangeFeed), so that no cache keeps serving the token they replace.
 */
import type { Envelope } from '../crypto/envelope.js';
import type {
  ConnectionError,
  ConnectionRecord,
  ConnectionTestResult,
  CredentialHeader,
  ProviderRecord,
  StoredTokenSet,
} from '../domain/model.js';
import { GatewayError, isGatewayError, type ErrorCode } from '../errors.js';
import { orStoreUnavailable, storeUnavailable } from '../store/errors.js';
import { connectionKeyOf, connectionLabel, type ConnectionKey } from '../domain/ids.js';
import type { Logger } from '../log.js';
import type { OAuthClient } from '../oauth/client.js';
import type { ChangeFeed, ReadInFlight } from '../registry/changes.js';
import type { Store, TokenWrite } from '../store/types.js';
import { isStaticCredential } from '../domain/model.js';
import { credentialCheckUrl, headerValue } from '../providers/credentials.js';
import { catalogEntryOf, resolveClient } from './clientConfig.js';
import {
  NO_TOKEN_EVENTS,
  type ProviderCallKind,
  type ProviderCallOrigin,
  type ProviderCallOutcome,
  type TokenEvents,
} from './events.js';
import { RenewalSlots } from './renewalSlots.js';
import { connectedTokenWrite, openTokenSet, tokenSetFrom } from './tokenSet.js';

export interface TokenSourceDeps {
  readonly store: Store;
  readonly envelope: Envelope;
  readonly oauth: OAuthClient;
  readonly now: () => Date;
  readonly logger: Logger;
  /** Tokens this close to expiry are refreshed before use (the reference's 3 minutes). */
  readonly refreshSkewMs: number;
  readonly allowInsecureHttp: boolean;
  readonly events?: TokenEvents;
  /** Told of every token write and state change, so that every replica's cache lets go of the old token. */
  readonly changes?: ChangeFeed;
  /**
   * How long a caller waits for a renewal (`oauth.timeoutMs`). The renewal itself may take longer
   * (`oauth` is built with REFRESH_COMPLETION_FACTOR times this): see `#bounded`.
   */
  readonly callerTimeoutMs: number;
}

/**
 * A refresh the provider answers late must still be stored: a rotating provider has already
 * invalidated the old refresh token, so abandoning its answer would lose the connection. The
 * OAuth client used for renewals gets this many times the callers' timeout to finish.
 */
export const REFRESH_COMPLETION_FACTOR = 4;

/**
 * Renewals running at once in this process, and for any one provider. Each holds a store lock (on
 * PostgreSQL one of the 10 sessions of the lock pool, see postgres.ts) while its provider answers:
 * fewer than that pool, so that a renewal never waits for a session; and a provider's share is
 * half, so that one slow provider leaves the others room. The rest queue (callers are served the
 * current token meanwhile while it is valid, see `#bounded`).
 */
export const MAX_CONCURRENT_RENEWALS = 8;
export const MAX_CONCURRENT_RENEWALS_PER_PROVIDER = 4;

/** Waits before retrying a failed token write (a busy SQLite file, a reset PostgreSQL session); then it is kept aside. */
const TOKEN_WRITE_RETRY_DELAYS_MS: readonly number[] = [50, 250, 1_000];
/**
 * A kept-aside set is also stored in the background, this often, this many times, so that it does
 * not wait in memory (where a crash loses it) for the connection's next renewal.
 */
const KEPT_ASIDE_RETRY_INTERVAL_MS = 5_000;
const KEPT_ASIDE_BACKGROUND_ATTEMPTS = 60;

/** Failures after which the connection's current token must not be served any more, even if still valid. */
const NO_FALLBACK_CODES: ReadonlySet<ErrorCode> = new Set([
  'REAUTHORIZATION_REQUIRED',
  'CONNECTION_NOT_CONNECTED',
  'CONNECTION_NOT_FOUND',
]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface GetOptions {
  /** Renew even if the stored token is fresh (testConnection). */
  readonly forceRefresh?: boolean;
  /**
   * Renew unless the token stays valid at least this long (never less than the refresh skew). The
   * proactive refresher asks for more than the skew: a token another replica has just renewed
   * satisfies it, so that replica's work is re-read rather than repeated.
   */
  readonly minValidityMs?: number;
  /** Who waits for a renewal, as reported on `providerCall`; default `request`. */
  readonly origin?: ProviderCallOrigin;
  /**
   * Handed to change listeners with the change a renewal started by this call writes, so that the
   * caller's own read is not taken for stale by its own write (see ReadInFlight).
   */
  readonly cause?: ReadInFlight;
  /** The connection as already being read by the caller (started beside its policy read), instead of a read of our own. */
  readonly connection?: Promise<ConnectionRecord | null>;
  /** Told when the stored token will not do and a renewal (own or joined) is awaited: traces say `refresh`. */
  readonly onRenewal?: () => void;
}

/** What callers get: never a refresh token. */
export interface AccessToken {
  readonly accessToken: string;
  readonly tokenType: string;
  /** Epoch ms; null when the provider's tokens never expire. */
  readonly expiresAt: number | null;
  /** Epoch ms when the gateway obtained it (its lifetime is `expiresAt - obtainedAt`); null if not recorded. */
  readonly obtainedAt: number | null;
  /** Extra response fields the catalog keeps (for example `instance_url`). */
  readonly extra: Readonly<Record<string, string>>;
  /** API_KEY and BASIC: the header the catalog sends the credential in; null for OAuth tokens (the binding's header, `Bearer`). */
  readonly sendAs: CredentialHeader | null;
}

/**
 * Codes of a static credential's test outcome (ConnectionTestResult.error), beside the stable codes:
 * the check URL refused the credential (401, 403), or there is no check URL to try it at.
 */
export const CREDENTIAL_REJECTED = 'CREDENTIAL_REJECTED';
export const NOT_TESTABLE = 'NOT_TESTABLE';

/** One renewal in progress; a request that joins a background renewal waits on it too. */
interface Flight {
  requestWaiting: boolean;
  readonly cause: ReadInFlight | undefined;
}

interface Wanted {
  readonly force: boolean;
  readonly minValidityMs: number;
}

/** A token set the provider gave but the store did not take: sealed, with the generation it replaces. */
interface KeptAside {
  readonly generation: number;
  readonly write: TokenWrite;
}

export function connectionNotFound(key: ConnectionKey): GatewayError {
  return new GatewayError('CONNECTION_NOT_FOUND', `${connectionLabel(key)} not found`);
}

export const needsConsent = (
  connection: Pick<ConnectionRecord, 'id' | 'providerId'> &
    Partial<Pick<ConnectionRecord, 'clientId' | 'clientSecret'>>,
) => {
  const label = connectionLabel({ providerId: connection.providerId, connectionId: connection.id });
  // A client-credentials connection whose own secret went with an endpoint change needs a new secret, not a consent.
  const why =
    typeof connection.clientId === 'string' && connection.clientSecret === null
      ? 'needs a new client secret (updateConnection)'
      : 'needs consent first';
  return new GatewayError('CONNECTION_NOT_CONNECTED', `${label} ${why}`);
};

function accessTokenOf(set: StoredTokenSet, obtainedAt: Date | null): AccessToken {
  return Object.freeze({
    accessToken: set.accessToken,
    tokenType: set.tokenType,
    expiresAt: set.expiresAt,
    obtainedAt: obtainedAt?.getTime() ?? null,
    extra: set.extra,
    sendAs: set.sendAs ?? null,
  });
}

export class TokenSource {
  readonly #deps: TokenSourceDeps;
  readonly #inflight = new Map<string, { readonly flight: Flight; readonly promise: Promise<AccessToken> }>();
  readonly #slots = new RenewalSlots({
    total: MAX_CONCURRENT_RENEWALS,
    perGroup: MAX_CONCURRENT_RENEWALS_PER_PROVIDER,
  });
  /**
   * Token sets obtained but not yet stored, by connection: persisted before that connection's next
   * provider call (the provider has already rotated the refresh token they replace). Kept in this
   * process's memory, sealed: a crash before they are stored loses them, and no gateway can close that
   * window alone, since only the provider could take the rotated-out refresh token back (see README,
   * "Crashes"). Bounded by the number of connections, and only filled while the store fails writes.
   */
  readonly #keptAside = new Map<string, KeptAside>();

  constructor(deps: TokenSourceDeps) {
    this.#deps = deps;
  }

  /** A token valid beyond the refresh skew (or, if the provider is down, one not yet expired). */
  async get(key: ConnectionKey, options: GetOptions = {}): Promise<AccessToken> {
    const wanted: Wanted = {
      force: options.forceRefresh === true,
      minValidityMs: Math.max(this.#deps.refreshSkewMs, options.minValidityMs ?? 0),
    };
    const connection = await this.#connection(key, options.connection);
    const current = this.#usableTokens(connection);
    if (current && !wanted.force && this.#validFor(current, wanted.minValidityMs))
      return accessTokenOf(current, connection.lastRefreshedAt);
    options.onRenewal?.();
    const renewal = this.#singleFlight(key, options.origin ?? 'request', options.cause, (flight) =>
      this.#renew(key, wanted, flight),
    );
    return this.#bounded(renewal, wanted.force ? null : current, connection.lastRefreshedAt);
  }

  /**
   * The caller waits at most `callerTimeoutMs`; the renewal goes on (holding the connection lock)
   * until the provider answers or the longer completion deadline passes, and stores what it gets.
   * A caller whose renewal failed for any reason (provider, store, lock) or took too long is served
   * the current token while it is still valid (never for a forced renewal: `fallback` is then null),
   * unless the failure says the connection may not be used any more (NO_FALLBACK_CODES).
   */
  async #bounded(
    renewal: Promise<AccessToken>,
    fallback: StoredTokenSet | null,
    obtainedAt: Date | null,
  ): Promise<AccessToken> {
    const timeoutMs = this.#deps.callerTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), timeoutMs);
    });
    let failure: unknown;
    try {
      const first = await Promise.race([renewal, deadline]);
      if (first !== 'deadline') return first;
      failure = new GatewayError('PROVIDER_UNAVAILABLE', `identity provider did not answer within ${timeoutMs} ms`);
    } catch (e) {
      if (isGatewayError(e) && NO_FALLBACK_CODES.has(e.code)) throw e;
      failure = e;
    } finally {
      clearTimeout(timer);
    }
    if (!fallback || !this.#notExpired(fallback)) throw failure;
    if (!isGatewayError(failure))
      this.#deps.logger.error(
        { err: failure },
        'token renewal failed unexpectedly; serving the current token while it is valid',
      );
    return accessTokenOf(fallback, obtainedAt);
  }

  /**
   * Acquires or refreshes a token now and reports the outcome, never the token. An API key or basic
   * credential is sent to its catalog entry's check URL instead, when there is one.
   */
  async test(key: ConnectionKey): Promise<ConnectionTestResult> {
    let error: ConnectionError | null = null;
    let ok = false;
    let tested = true;
    try {
      const provider = await orStoreUnavailable(this.#deps.store.getProvider(key.providerId));
      if (provider && isStaticCredential(provider.grantType)) {
        const outcome = await this.#checkCredential(provider, await this.#connection(key));
        ({ ok, tested, error } = outcome);
      } else {
        await this.get(key, { forceRefresh: true });
        ok = true;
      }
    } catch (e) {
      if (!isGatewayError(e) || e.code === 'INTERNAL_SERVER_ERROR') throw e;
      error = { code: e.code, message: e.message };
    }
    const after = await this.#connection(key);
    return { ok, tested, state: after.state, tokenExpiresAt: after.tokenExpiresAt, error };
  }

  /** Sends the credential to the check URL: any 2xx accepts it; the state of the connection stays as it is. */
  async #checkCredential(
    provider: ProviderRecord,
    connection: ConnectionRecord,
  ): Promise<Pick<ConnectionTestResult, 'ok' | 'tested' | 'error'>> {
    const current = this.#usableTokens(connection);
    if (!current?.sendAs) throw needsConsent(connection);
    const entry = catalogEntryOf(provider);
    const url = credentialCheckUrl(entry, provider.parameters, this.#deps);
    if (url === null) {
      const message = `the credential cannot be tested: identity provider ${entry.name} names no check URL${entry.parameters.some((p) => p.name === 'checkUrl') ? ' (set the checkUrl parameter)' : ''}`;
      return { ok: false, tested: false, error: { code: NOT_TESTABLE, message } };
    }
    const status = await this.#deps.oauth.checkCredential(url, {
      [current.sendAs.name]: headerValue(current.sendAs, current.accessToken),
    });
    if (status >= 200 && status <= 299) return { ok: true, tested: true, error: null };
    if (status === 401 || status === 403)
      return {
        ok: false,
        tested: true,
        error: {
          code: CREDENTIAL_REJECTED,
          message: `the check URL refused the credential (HTTP ${status}); give a new one through updateConnection`,
        },
      };
    throw new GatewayError('PROVIDER_UNAVAILABLE', `the check URL answered HTTP ${status}`);
  }

  async #connection(key: ConnectionKey, read?: Promise<ConnectionRecord | null>): Promise<ConnectionRecord> {
    const connection = await orStoreUnavailable(read ?? this.#deps.store.getConnection(key));
    if (!connection) throw connectionNotFound(key);
    return connection;
  }

  /** Tokens that may be used as far as the connection's state goes; throws the state's code otherwise. */
  #usableTokens(connection: ConnectionRecord): StoredTokenSet | null {
    const state = connection.state;
    switch (state.status) {
      case 'NOT_CONNECTED':
        throw needsConsent(connection);
      case 'ERROR':
        if (state.error.code === 'REAUTHORIZATION_REQUIRED')
          throw new GatewayError('REAUTHORIZATION_REQUIRED', `connection '${connection.id}' must be authorized again`);
        break;
      case 'CONNECTED':
        break;
      default: {
        const never: never = state;
        throw new Error(`unknown connection state ${JSON.stringify(never)}`);
      }
    }
    return connection.tokens
      ? openTokenSet(
          this.#deps.envelope,
          { providerId: connection.providerId, connectionId: connection.id },
          connection.tokens,
        )
      : null;
  }

  #validFor(set: StoredTokenSet, ms: number): boolean {
    return set.expiresAt === null || set.expiresAt - this.#deps.now().getTime() > ms;
  }

  #notExpired(set: StoredTokenSet): boolean {
    return set.expiresAt === null || set.expiresAt > this.#deps.now().getTime();
  }

  #singleFlight(
    key: ConnectionKey,
    origin: ProviderCallOrigin,
    cause: ReadInFlight | undefined,
    run: (flight: Flight) => Promise<AccessToken>,
  ): Promise<AccessToken> {
    const k = connectionKeyOf(key);
    const existing = this.#inflight.get(k);
    if (existing) {
      if (origin === 'request') existing.flight.requestWaiting = true;
      return existing.promise;
    }
    const flight: Flight = { requestWaiting: origin === 'request', cause };
    const entry = { flight, promise: run(flight).finally(() => this.#inflight.delete(k)) };
    this.#inflight.set(k, entry);
    return entry.promise;
  }

  async #renew(key: ConnectionKey, wanted: Wanted, flight: Flight): Promise<AccessToken> {
    return this.#slots.run(key.providerId, () => this.#locked(key, () => this.#renewLocked(key, wanted, flight)));
  }

  /** Runs `fn` holding the connection's lock; failing to take the lock is a store failure. */
  async #locked<T>(key: ConnectionKey, fn: () => Promise<T>): Promise<T> {
    let entered = false;
    try {
      return await this.#deps.store.withConnectionLock(key, () => {
        entered = true;
        return fn();
      });
    } catch (e) {
      throw entered || isGatewayError(e) ? e : storeUnavailable(e);
    }
  }

  async #renewLocked(key: ConnectionKey, wanted: Wanted, flight: Flight): Promise<AccessToken> {
    // The provider first, then the connection: a change of the provider's endpoints drops the
    // tokens in the same transaction, so tokens read after the provider were never bound to
    // endpoints newer than the ones read. (The other order could send old tokens to new endpoints.)
    const provider = await orStoreUnavailable(this.#deps.store.getProvider(key.providerId));
    // Another process may have refreshed while we waited for the lock: then its token is ours too.
    let connection = await this.#connection(key);
    const persisted = await this.#persistKeptAside(key, connection, flight);
    if (persisted) {
      connection = persisted;
      const tokens = this.#usableTokens(connection);
      // Obtained by the renewal that could not store it: as new as a forced renewal asks for.
      if (tokens && this.#notExpired(tokens) && (wanted.force || this.#validFor(tokens, wanted.minValidityMs)))
        return accessTokenOf(tokens, connection.lastRefreshedAt);
    }
    const current = this.#usableTokens(connection);
    if (current && !wanted.force && this.#validFor(current, wanted.minValidityMs))
      return accessTokenOf(current, connection.lastRefreshedAt);
    // A connection implies its provider (foreign key): it was deleted meanwhile.
    if (!provider) throw connectionNotFound(key);
    try {
      return await this.#fetchAndStore(key, provider, connection, current, flight);
    } catch (e) {
      if (!isGatewayError(e)) throw e;
      return this.#onRenewFailure(key, connection, e);
    }
  }

  /**
   * Stores the token set an earlier renewal of this connection could not store, if any, before
   * anything asks the provider again: returns the connection as written, or null when there was
   * nothing to store or a newer set (a consent) was stored meanwhile and wins. A store that still
   * fails throws STORE_UNAVAILABLE, so the provider is not called with a refresh token it rotated out.
   */
  async #persistKeptAside(
    key: ConnectionKey,
    connection: ConnectionRecord,
    flight: Flight,
  ): Promise<ConnectionRecord | null> {
    const name = connectionKeyOf(key);
    const kept = this.#keptAside.get(name);
    if (!kept) return null;
    if (connection.tokenGeneration !== kept.generation) {
      this.#keptAside.delete(name);
      return null;
    }
    let written: ConnectionRecord | null;
    try {
      written = await this.#writeTokens(key, kept.write, kept.generation);
    } catch (e) {
      // Kept while the store fails; a connection gone (NOT_FOUND) has no use for it.
      if (!isGatewayError(e) || e.code !== 'STORE_UNAVAILABLE') this.#keptAside.delete(name);
      throw e;
    }
    this.#keptAside.delete(name);
    if (written) {
      this.#deps.logger.info(
        { provider: key.providerId, connection: key.connectionId },
        'stored a token set kept aside after a failed store write',
      );
      await this.#deps.changes?.publish(key, flight.cause);
    }
    return written;
  }

  /** Tries to store the connection's kept-aside set in the background, under its lock, until stored, dropped or out of attempts. */
  #persistLater(key: ConnectionKey, attemptsLeft: number): void {
    const timer = setTimeout(async () => {
      const name = connectionKeyOf(key);
      if (!this.#keptAside.has(name)) return;
      const flight: Flight = { requestWaiting: false, cause: undefined };
      try {
        await this.#slots.run(key.providerId, () =>
          this.#locked(key, async () => void (await this.#persistKeptAside(key, await this.#connection(key), flight))),
        );
      } catch {
        // Still failing (logged by the write): the next attempt, or the next renewal, tries again.
      }
      if (this.#keptAside.has(name) && attemptsLeft > 1) this.#persistLater(key, attemptsLeft - 1);
    }, KEPT_ASIDE_RETRY_INTERVAL_MS);
    timer.unref();
  }

  /**
   * writeTokens, retried with backoff on store failures (NOT_FOUND and a moved generation are
   * answers, not failures); STORE_UNAVAILABLE once the retries are spent.
   */
  async #writeTokens(key: ConnectionKey, write: TokenWrite, generation: number): Promise<ConnectionRecord | null> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#deps.store.writeTokens(key, write, generation);
      } catch (e) {
        if (isGatewayError(e)) throw e;
        const delayMs = TOKEN_WRITE_RETRY_DELAYS_MS[attempt];
        if (delayMs === undefined) throw storeUnavailable(e);
        this.#deps.logger.warn(
          { err: e, provider: key.providerId, connection: key.connectionId, attempt: attempt + 1 },
          'token write failed; retrying',
        );
        await sleep(delayMs);
      }
    }
  }

  async #fetchAndStore(
    key: ConnectionKey,
    provider: ProviderRecord,
    connection: ConnectionRecord,
    current: StoredTokenSet | null,
    flight: Flight,
  ): Promise<AccessToken> {
    const { oauth, envelope, now } = this.#deps;
    let next: StoredTokenSet;
    // An API key or password never renews: only an admin gives a new one (updateConnection).
    if (isStaticCredential(provider.grantType)) {
      if (current && this.#notExpired(current)) return accessTokenOf(current, connection.lastRefreshedAt);
      throw needsConsent(connection);
    }
    if (provider.grantType === 'CLIENT_CREDENTIALS') {
      const client = resolveClient(envelope, provider, this.#deps, connection);
      next = tokenSetFrom(
        await this.#timed(key, 'client_credentials', flight, () =>
          oauth.clientCredentials(client.config, { scopes: [...client.scopes] }),
        ),
        null,
      );
    } else {
      if (!current) throw needsConsent(connection);
      if (current.refreshToken === null) {
        // Nothing to refresh with (e.g. never-expiring tokens): serve what is still valid.
        if (this.#notExpired(current)) return accessTokenOf(current, connection.lastRefreshedAt);
        throw new GatewayError(
          'REAUTHORIZATION_REQUIRED',
          `connection '${connection.id}' has no refresh token; authorize it again`,
        );
      }
      const client = resolveClient(envelope, provider, this.#deps);
      const refreshToken = current.refreshToken;
      next = tokenSetFrom(
        await this.#timed(key, 'refresh', flight, () => oauth.refresh(client.config, refreshToken)),
        refreshToken,
      );
    }
    const obtainedAt = now();
    const write = connectedTokenWrite(envelope, key, next, obtainedAt);
    let written: ConnectionRecord | null;
    try {
      written = await this.#writeTokens(key, write, connection.tokenGeneration);
    } catch (e) {
      // Never dropped: the provider may have rotated the refresh token already (see #keptAside).
      if (isGatewayError(e) && e.code === 'STORE_UNAVAILABLE') {
        this.#keptAside.set(connectionKeyOf(key), { generation: connection.tokenGeneration, write });
        this.#persistLater(key, KEPT_ASIDE_BACKGROUND_ATTEMPTS);
      }
      throw e;
    }
    if (written) {
      await this.#deps.changes?.publish(key, flight.cause);
      return accessTokenOf(next, obtainedAt);
    }
    // A consent landed meanwhile: its tokens win; ours (already rotated) are the older grant.
    const latest = await this.#connection(key);
    const tokens = this.#usableTokens(latest);
    if (!tokens) throw needsConsent(connection);
    return accessTokenOf(tokens, latest.lastRefreshedAt);
  }

  async #timed<T>(key: ConnectionKey, kind: ProviderCallKind, flight: Flight, call: () => Promise<T>): Promise<T> {
    const events = this.#deps.events ?? NO_TOKEN_EVENTS;
    const started = performance.now();
    let outcome: ProviderCallOutcome = 'error';
    try {
      const result = await call();
      outcome = 'success';
      return result;
    } catch (e) {
      if (isGatewayError(e) && e.code === 'REAUTHORIZATION_REQUIRED') outcome = 'reauthorization_required';
      else if (isGatewayError(e) && e.code === 'PROVIDER_UNAVAILABLE') outcome = 'provider_unavailable';
      throw e;
    } finally {
      // Read at the end: a request may have joined a background renewal while it ran.
      events.providerCall(
        key,
        kind,
        outcome,
        performance.now() - started,
        flight.requestWaiting ? 'request' : 'background',
      );
    }
  }

  async #onRenewFailure(key: ConnectionKey, before: ConnectionRecord, e: GatewayError): Promise<AccessToken> {
    if (e.code === 'REAUTHORIZATION_REQUIRED') {
      // The grant may have been rotated by someone else (another replica, a new consent) meanwhile.
      const connection = await this.#connection(key);
      if (connection.tokenGeneration !== before.tokenGeneration) {
        const tokens = this.#usableTokens(connection);
        if (tokens) return accessTokenOf(tokens, connection.lastRefreshedAt);
      }
      // Guarded by the generation rejected: a consent landing after the re-read above keeps its tokens.
      const marked = await orStoreUnavailable(
        this.#deps.store.setConnectionStateIfGeneration(
          key,
          { status: 'ERROR', error: { code: 'REAUTHORIZATION_REQUIRED', message: e.message } },
          before.tokenGeneration,
        ),
      );
      if (!marked) {
        const latest = await this.#connection(key);
        const tokens = this.#usableTokens(latest);
        if (tokens) return accessTokenOf(tokens, latest.lastRefreshedAt);
        throw needsConsent(latest);
      }
      await this.#deps.changes?.publish(key);
      this.#deps.logger.warn(
        { provider: key.providerId, connection: key.connectionId },
        'refresh token rejected; connection needs consent again',
      );
      throw e;
    }
    // Callers still holding a valid token keep it (see #bounded); once per renewal, say why.
    if (e.code === 'PROVIDER_UNAVAILABLE')
      this.#deps.logger.warn(
        { provider: key.providerId, connection: key.connectionId, reason: e.message },
        'refresh failed at the identity provider',
      );
    if (e.code === 'STORE_UNAVAILABLE')
      this.#deps.logger.warn(
        { err: e.cause, provider: key.providerId, connection: key.connectionId },
        'renewal failed at the store',
      );
    throw e;
  }
}
