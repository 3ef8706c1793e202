/** Token sets at rest: one sealed JSON field per connection, so access and refresh tokens change together. */
import type { Envelope } from '../crypto/envelope.js';
import type { Sealed } from '../crypto/sealed.js';
import type { StoredTokenSet } from '../domain/model.js';
import type { TokenResult } from '../oauth/types.js';
import type { TokenWrite } from '../store/types.js';
import type { ConnectionKey } from '../domain/ids.js';

const ref = (key: ConnectionKey) => ({ kind: 'connection', field: 'tokens', ...key }) as const;

export function sealTokenSet(envelope: Envelope, key: ConnectionKey, tokens: StoredTokenSet): Sealed {
  return envelope.seal(JSON.stringify(tokens), ref(key));
}

export function openTokenSet(envelope: Envelope, key: ConnectionKey, sealed: Sealed): StoredTokenSet {
  return Object.freeze(JSON.parse(envelope.open(sealed, ref(key))) as StoredTokenSet);
}

/** The store write that makes `tokens`, obtained at `obtainedAt`, the connection's CONNECTED token set. */
export function connectedTokenWrite(
  envelope: Envelope,
  key: ConnectionKey,
  tokens: StoredTokenSet,
  obtainedAt: Date,
): TokenWrite {
  return {
    tokens: sealTokenSet(envelope, key, tokens),
    tokenExpiresAt: tokens.expiresAt === null ? null : new Date(tokens.expiresAt),
    lastRefreshedAt: obtainedAt,
    state: { status: 'CONNECTED' },
  };
}

/** A provider that omits a new refresh token keeps the old one valid: carry it over. */
export function tokenSetFrom(result: TokenResult, previousRefreshToken: string | null): StoredTokenSet {
  return Object.freeze({
    accessToken: result.accessToken,
    refreshToken: result.refreshToken ?? previousRefreshToken,
    tokenType: result.tokenType,
    expiresAt: result.expiresAt,
    scope: result.scope,
    idTokenClaims: result.idTokenClaims,
    extra: result.extra,
  });
}
