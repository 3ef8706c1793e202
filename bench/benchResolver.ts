/**
 * The pieces the in-process benchmarks share: the token resolver as src/server/wire.ts builds it
 * (over any store, cache on or off), a provider's input, a realistic sealed token set and a
 * caller's token request.
 */
import { randomBytes } from 'node:crypto';
import { validateConfig } from '../src/config/schema.js';
import { ConsentFlow } from '../src/consent/flow.js';
import type { Envelope } from '../src/crypto/envelope.js';
import type { Sealed } from '../src/crypto/sealed.js';
import { callerFromClaims } from '../src/identity/caller.js';
import { createLogger } from '../src/log.js';
import { OAuthClient } from '../src/oauth/client.js';
import { ChangeFeed } from '../src/registry/changes.js';
import { createOnFirstUse } from '../src/registry/connections.js';
import type { RegistryDeps } from '../src/registry/deps.js';
import type { Store } from '../src/store/types.js';
import type { ConnectionKey } from '../src/domain/ids.js';
import { TokenCache } from '../src/tokens/cache.js';
import { AcquisitionLimiter } from '../src/tokens/rateLimiter.js';
import { TokenResolver, type TokenRequest } from '../src/tokens/resolver.js';
import { sealTokenSet } from '../src/tokens/tokenSet.js';
import { TokenSource } from '../src/tokens/tokenSource.js';

export const DEFAULTS = validateConfig({});
const REFRESH_SKEW_MS = DEFAULTS.cache.refreshSkewSeconds * 1000;
const TOKEN_LIFETIME_MS = 60 * 60_000;
/** A JWT-sized access token, as the store and the cache hold real ones. */
const ACCESS_TOKEN_CHARS = 900;
/** Nothing listens there: a benchmark that reached a provider would fail instead of measuring it. */
const NOWHERE = 'http://127.0.0.1:1';

export interface BenchResolver {
  readonly resolver: TokenResolver;
  readonly registry: RegistryDeps;
}

export function benchResolver(store: Store, envelope: Envelope, cacheEnabled: boolean): BenchResolver {
  const now = () => new Date();
  const logger = createLogger('silent');
  const registry: RegistryDeps = {
    store,
    envelope,
    limits: DEFAULTS.limits,
    managedObjectId: DEFAULTS.identity.managedObjectId,
    allowInsecureHttp: true,
    allowPrivateNetworks: true,
    now,
    changes: new ChangeFeed(),
  };
  const oauth = new OAuthClient({
    timeoutMs: DEFAULTS.oauth.timeoutMs,
    allowInsecureHttp: true,
    allowPrivateNetworks: true,
  });
  const tokens = new TokenSource({
    store,
    envelope,
    oauth,
    now,
    logger,
    refreshSkewMs: REFRESH_SKEW_MS,
    allowInsecureHttp: true,
    callerTimeoutMs: DEFAULTS.oauth.timeoutMs,
  });
  const consent = new ConsentFlow({
    store,
    envelope,
    oauth,
    publicUrl: NOWHERE,
    allowedRedirectOrigins: [NOWHERE],
    stateTtlMs: DEFAULTS.consent.stateTtlSeconds * 1000,
    allowInsecureHttp: true,
    now,
    logger,
  });
  const resolver = new TokenResolver({
    tokens,
    reads: registry.store,
    changes: registry.changes,
    createOnFirstUse: (key, owner, displayName) => createOnFirstUse(registry, key, owner, displayName),
    cache: new TokenCache({ enabled: cacheEnabled, maxEntries: DEFAULTS.cache.maxEntries, skewMs: REFRESH_SKEW_MS }),
    // Without the cache every call is an acquisition; the per-minute limit would stop the loop.
    limiter: new AcquisitionLimiter(Number.MAX_SAFE_INTEGER),
    loginLinks: consent,
    postLoginRedirectUrl: `${NOWHERE}/oauth/done`,
    logger,
  });
  return { resolver, registry };
}

/** An authorization-code provider whose endpoints nobody answers. */
export function benchProviderInput(id: string) {
  return {
    id,
    identityProvider: 'oauth2',
    grantType: 'AUTHORIZATION_CODE',
    clientId: 'bench-client',
    clientSecret: randomBytes(24).toString('base64url'),
    scopes: ['read'],
    parameters: { authorizationUrl: `${NOWHERE}/authorize`, tokenUrl: `${NOWHERE}/token` },
  };
}

/** A token set the size of a real one (JWT access token, opaque refresh token), sealed to `key`, valid for an hour. */
export function sealBenchTokenSet(
  envelope: Envelope,
  key: ConnectionKey,
): { readonly sealed: Sealed; readonly expiresAt: Date } {
  const expiresAt = Date.now() + TOKEN_LIFETIME_MS;
  const sealed = sealTokenSet(envelope, key, {
    accessToken: randomBytes(ACCESS_TOKEN_CHARS).toString('base64url').slice(0, ACCESS_TOKEN_CHARS),
    refreshToken: randomBytes(32).toString('base64url'),
    tokenType: 'Bearer',
    expiresAt,
    scope: 'read',
    idTokenClaims: null,
    extra: {},
  });
  return { sealed, expiresAt: new Date(expiresAt) };
}

/** A caller with subject `sub` asking for a token of `key` on a `{jwt.sub}` binding. */
export function callerRequest(key: ConnectionKey, sub: string): TokenRequest {
  const caller = callerFromClaims({ iss: NOWHERE, sub }, DEFAULTS.admin.roleClaim);
  return { ...key, principal: { kind: 'caller', caller }, delegated: true, subgraph: 'github' };
}
