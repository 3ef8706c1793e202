/**
 * Usable access tokens from the store: open, and when expired or inside the refresh skew, refresh
 * (authorization code) or acquire (client credentials). One refresh per connection at a time: a
 * shared promise in this process, the store's connection lock across processes, then a re-read,
 * because another holder may have refreshed already. New tokens are persisted before anyone uses them.
 */
import type { Envelope } from '../crypto/envelope.js';
import type { ConnectionError, ConnectionRecord, ConnectionState, ProviderRecord, StoredTokenSet } from '../domain/model.js';
import { GatewayError, isGatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { OAuthClient } from '../oauth/client.js';
import type { ConnectionKey, Store } from '../store/types.js';
import { resolveClient } from './clientConfig.js';
import { NO_TOKEN_EVENTS, type ProviderCallKind, type ProviderCallOutcome, type TokenEvents } from './events.js';
import { openTokenSet, sealTokenSet, tokenSetFrom } from './tokenSet.js';

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
}

/** What callers get: never a refresh token. */
export interface AccessToken {
  readonly accessToken: string;
  readonly tokenType: string;
  /** Epoch ms; null when the provider's tokens never expire. */
  readonly expiresAt: number | null;
  /** Extra response fields the catalog keeps (for example `instance_url`). */
  readonly extra: Readonly<Record<string, string>>;
}

export interface TestOutcome {
  readonly ok: boolean;
  readonly state: ConnectionState;
  readonly tokenExpiresAt: Date | null;
  readonly error: ConnectionError | null;
}

const keyString = (k: ConnectionKey) => `${k.providerId}/${k.connectionId}`;

function accessTokenOf(set: StoredTokenSet): AccessToken {
  return Object.freeze({ accessToken: set.accessToken, tokenType: set.tokenType, expiresAt: set.expiresAt, extra: set.extra });
}

export class TokenSource {
  readonly #deps: TokenSourceDeps;
  readonly #inflight = new Map<string, Promise<AccessToken>>();

  constructor(deps: TokenSourceDeps) {
    this.#deps = deps;
  }

  /** A token valid beyond the refresh skew (or, if the provider is down, one not yet expired). */
  async get(key: ConnectionKey, options: { forceRefresh?: boolean } = {}): Promise<AccessToken> {
    const { connection, provider } = await this.#load(key);
    const current = this.#usableTokens(connection);
    if (current && !options.forceRefresh && this.#fresh(current)) return accessTokenOf(current);
    return this.#singleFlight(key, () => this.#renew(key, provider, options.forceRefresh === true));
  }

  /** Acquires or refreshes a token now and reports the outcome, never the token. */
  async test(key: ConnectionKey): Promise<TestOutcome> {
    let error: ConnectionError | null = null;
    let ok = false;
    try {
      await this.get(key, { forceRefresh: true });
      ok = true;
    } catch (e) {
      if (!isGatewayError(e) || e.code === 'INTERNAL_SERVER_ERROR') throw e;
      error = { code: e.code, message: e.message };
    }
    const after = await this.#deps.store.getConnection(key);
    if (!after) throw new GatewayError('CONNECTION_NOT_FOUND', `connection '${key.connectionId}' of provider '${key.providerId}' not found`);
    return { ok, state: after.state, tokenExpiresAt: after.tokenExpiresAt, error };
  }

  async #load(key: ConnectionKey): Promise<{ connection: ConnectionRecord; provider: ProviderRecord }> {
    const [connection, provider] = await Promise.all([this.#deps.store.getConnection(key), this.#deps.store.getProvider(key.providerId)]);
    if (!connection || !provider)
      throw new GatewayError('CONNECTION_NOT_FOUND', `connection '${key.connectionId}' of provider '${key.providerId}' not found`);
    return { connection, provider };
  }

  /** Tokens that may be used as far as the connection's state goes; throws the state's code otherwise. */
  #usableTokens(connection: ConnectionRecord): StoredTokenSet | null {
    const state = connection.state;
    switch (state.status) {
      case 'NOT_CONNECTED':
        throw new GatewayError('CONNECTION_NOT_CONNECTED', `connection '${connection.id}' needs consent first`);
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
    return connection.tokens ? openTokenSet(this.#deps.envelope, { providerId: connection.providerId, connectionId: connection.id }, connection.tokens) : null;
  }

  #fresh(set: StoredTokenSet): boolean {
    return set.expiresAt === null || set.expiresAt - this.#deps.now().getTime() > this.#deps.refreshSkewMs;
  }

  #notExpired(set: StoredTokenSet): boolean {
    return set.expiresAt === null || set.expiresAt > this.#deps.now().getTime();
  }

  #singleFlight(key: ConnectionKey, run: () => Promise<AccessToken>): Promise<AccessToken> {
    const k = keyString(key);
    const existing = this.#inflight.get(k);
    if (existing) return existing;
    const p = run().finally(() => this.#inflight.delete(k));
    this.#inflight.set(k, p);
    return p;
  }

  async #renew(key: ConnectionKey, provider: ProviderRecord, force: boolean): Promise<AccessToken> {
    return this.#deps.store.withConnectionLock(key, async () => {
      // Another process may have refreshed while we waited for the lock.
      const { connection } = await this.#load(key);
      const current = this.#usableTokens(connection);
      if (current && !force && this.#fresh(current)) return accessTokenOf(current);
      try {
        return await this.#fetchAndStore(key, provider, connection, current);
      } catch (e) {
        if (!isGatewayError(e)) throw e;
        return this.#onRenewFailure(key, connection, current, e, force);
      }
    });
  }

  async #fetchAndStore(key: ConnectionKey, provider: ProviderRecord, connection: ConnectionRecord, current: StoredTokenSet | null): Promise<AccessToken> {
    const { oauth, envelope, store, now } = this.#deps;
    let next: StoredTokenSet;
    if (provider.grantType === 'CLIENT_CREDENTIALS') {
      const client = resolveClient(envelope, provider, this.#deps, connection);
      next = tokenSetFrom(await this.#timed(key, 'client_credentials', () => oauth.clientCredentials(client.config, { scopes: [...client.scopes] })), null);
    } else {
      if (!current) throw new GatewayError('CONNECTION_NOT_CONNECTED', `connection '${connection.id}' needs consent first`);
      if (current.refreshToken === null) {
        // Nothing to refresh with (e.g. never-expiring tokens): serve what is still valid.
        if (this.#notExpired(current)) return accessTokenOf(current);
        throw new GatewayError('REAUTHORIZATION_REQUIRED', `connection '${connection.id}' has no refresh token; authorize it again`);
      }
      const client = resolveClient(envelope, provider, this.#deps);
      const refreshToken = current.refreshToken;
      next = tokenSetFrom(await this.#timed(key, 'refresh', () => oauth.refresh(client.config, refreshToken)), refreshToken);
    }
    const written = await store.writeTokens(
      key,
      {
        tokens: sealTokenSet(envelope, key, next),
        tokenExpiresAt: next.expiresAt === null ? null : new Date(next.expiresAt),
        lastRefreshedAt: now(),
        state: { status: 'CONNECTED' },
      },
      connection.tokenGeneration,
    );
    if (written) return accessTokenOf(next);
    // A consent landed meanwhile: its tokens win; ours (already rotated) are the older grant.
    const latest = await this.#load(key);
    const tokens = this.#usableTokens(latest.connection);
    if (!tokens) throw new GatewayError('CONNECTION_NOT_CONNECTED', `connection '${connection.id}' needs consent first`);
    return accessTokenOf(tokens);
  }

  async #timed<T>(key: ConnectionKey, kind: ProviderCallKind, call: () => Promise<T>): Promise<T> {
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
      events.providerCall(key, kind, outcome, performance.now() - started);
    }
  }

  async #onRenewFailure(
    key: ConnectionKey,
    before: ConnectionRecord,
    current: StoredTokenSet | null,
    e: GatewayError,
    force: boolean,
  ): Promise<AccessToken> {
    if (e.code === 'REAUTHORIZATION_REQUIRED') {
      // The grant may have been rotated by someone else (another replica, a new consent) meanwhile.
      const { connection } = await this.#load(key);
      if (connection.tokenGeneration !== before.tokenGeneration) {
        const tokens = this.#usableTokens(connection);
        if (tokens) return accessTokenOf(tokens);
      }
      await this.#deps.store.setConnectionState(key, { status: 'ERROR', error: { code: 'REAUTHORIZATION_REQUIRED', message: e.message } });
      this.#deps.logger.warn({ provider: key.providerId, connection: key.connectionId }, 'refresh token rejected; connection needs consent again');
      throw e;
    }
    // A forced renewal (testConnection) reports the failure instead of hiding it.
    if (e.code === 'PROVIDER_UNAVAILABLE' && !force && current && this.#notExpired(current)) {
      this.#deps.logger.warn({ provider: key.providerId, connection: key.connectionId, reason: e.message }, 'refresh failed; serving the still-valid token');
      return accessTokenOf(current);
    }
    throw e;
  }
}
