/**
 * RFC 8693 token exchange for `identity: exchange` bindings: the caller's verified JWT is exchanged
 * at the provider's token endpoint for a token of the subgraph's own audience, so that a subgraph
 * never receives the caller's JWT itself. The authorization server is the access check: a refusal
 * is ACCESS_DENIED for that subgraph only. Results are cached in memory per (provider, caller,
 * audience, scope) under the usual skew rule, never past the caller's JWT's own expiry; the caller's
 * JWT is never stored or cached.
 */
import type { Caller } from '../identity/caller.js';
import type { Envelope } from '../crypto/envelope.js';
import { isStaticCredential } from '../domain/model.js';
import { GatewayError } from '../errors.js';
import type { OAuthClient } from '../oauth/client.js';
import type { ChangeFeed } from '../registry/changes.js';
import { orStoreUnavailable } from '../store/errors.js';
import { providerLabel } from '../domain/ids.js';
import type { Store } from '../store/types.js';
import { TokenCache } from './cache.js';
import { resolveClient } from './clientConfig.js';
import type { AcquisitionLimiter } from './rateLimiter.js';
import type { AccessToken } from './tokenSource.js';

export interface ExchangeRequest {
  readonly providerId: string;
  readonly caller: Caller;
  /** The caller's verified JWT, as it arrived. */
  readonly subjectToken: string;
  readonly audience: string;
  readonly scope: string | null;
}

export interface TokenExchangerDeps {
  readonly store: Pick<Store, 'getProvider'>;
  readonly envelope: Envelope;
  readonly oauth: Pick<OAuthClient, 'tokenExchange'>;
  readonly changes: Pick<ChangeFeed, 'subscribe'>;
  /** Exchanges per caller and provider per minute, as for a connection's acquisitions. */
  readonly limiter: AcquisitionLimiter;
  readonly allowInsecureHttp: boolean;
  readonly cache: { readonly enabled: boolean; readonly maxEntries: number; readonly skewMs: number };
  readonly now?: () => number;
}

const SECOND_MS = 1000;

export class TokenExchanger {
  readonly #deps: TokenExchangerDeps;
  readonly #cache: TokenCache;
  readonly #inflight = new Map<string, Promise<AccessToken>>();

  constructor(deps: TokenExchangerDeps) {
    this.#deps = deps;
    this.#cache = new TokenCache({ ...deps.cache, ...(deps.now && { now: deps.now }) });
    // A change of the provider (its client, its endpoints) may make every exchanged token of it stale.
    deps.changes.subscribe((event) => {
      if (event === null) this.#cache.clear();
      else if (event.connectionId === undefined) this.#cache.evict(event.providerId);
    });
  }

  async exchange(request: ExchangeRequest): Promise<AccessToken> {
    // The caller is (issuer, sub): two issuers' same `sub` never share an exchanged token.
    const key = `${request.providerId}/${JSON.stringify(['exchange', request.caller.issuer, request.caller.sub, request.audience, request.scope])}`;
    const hit = this.#cache.get(key);
    if (hit) return hit.token;
    let flight = this.#inflight.get(key);
    if (!flight) {
      flight = this.#exchange(request, key).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, flight);
    }
    return flight;
  }

  async #exchange(request: ExchangeRequest, key: string): Promise<AccessToken> {
    this.#deps.limiter.take(
      `${request.providerId}/exchange:${JSON.stringify([request.caller.issuer, request.caller.sub])}`,
    );
    const provider = await orStoreUnavailable(this.#deps.store.getProvider(request.providerId));
    if (!provider) throw new GatewayError('CONNECTION_NOT_FOUND', `${providerLabel(request.providerId)} not found`);
    if (isStaticCredential(provider.grantType))
      throw new GatewayError(
        'PROVIDER_UNAVAILABLE',
        `${providerLabel(provider.id)} holds ${provider.grantType} credentials and cannot exchange tokens`,
      );
    const client = resolveClient(this.#deps.envelope, provider, this.#deps);
    const result = await this.#deps.oauth.tokenExchange(client.config, {
      subjectToken: request.subjectToken,
      audience: request.audience,
      scope: request.scope,
    });
    const token: AccessToken = Object.freeze({
      accessToken: result.accessToken,
      tokenType: result.tokenType,
      expiresAt: result.expiresAt,
      obtainedAt: (this.#deps.now ?? Date.now)(),
      extra: Object.freeze({}),
      sendAs: null,
    });
    this.#cache.set(key, { token: { ...token, expiresAt: cacheUntil(token.expiresAt, request.caller) }, policies: [] });
    return token;
  }
}

/** A token exchanged for a caller is not served once the caller's own JWT has expired. */
function cacheUntil(expiresAt: number | null, caller: Caller): number | null {
  const exp = caller.claims['exp'];
  const callerExpiresAt = typeof exp === 'number' && Number.isFinite(exp) ? exp * SECOND_MS : null;
  if (callerExpiresAt === null) return expiresAt;
  return expiresAt === null ? callerExpiresAt : Math.min(expiresAt, callerExpiresAt);
}
