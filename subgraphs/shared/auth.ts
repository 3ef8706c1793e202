/**
 * Bearer token verification of a sample SaaS subgraph: like a real SaaS API, it accepts only
 * access tokens its own issuer minted for its own audience. Whatever the failure, the answer is
 * the same 401 UNAUTHENTICATED, so a token meant for another subgraph gets nothing.
 */
import { GraphQLError } from 'graphql';
import { HeaderMap } from '@apollo/server';
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

const ALGORITHMS = ['RS256', 'ES256', 'PS256', 'EdDSA'];
const CLOCK_TOLERANCE_SECONDS = 5;
const DISCOVERY_TIMEOUT_MS = 5_000;
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

export interface TokenOptions {
  /** `iss` of accepted tokens; its discovery document names the JWKS unless `jwksUri` is given. */
  readonly issuer: string;
  /** `aud` accepted tokens must carry. */
  readonly audience: string;
  readonly jwksUri?: string | null;
}

export interface TokenClaims extends JWTPayload {
  readonly sub: string;
}

/** What a subgraph tells about the token it received (the `TokenInfo` type of both schemas). */
export interface TokenInfo {
  readonly issuer: string;
  readonly audience: readonly string[];
  readonly subject: string;
  readonly clientId: string | null;
}

export function unauthenticated(message: string): GraphQLError {
  const headers = new HeaderMap([['www-authenticate', 'Bearer error="invalid_token"']]);
  return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers } } });
}

async function jwksUriByDiscovery(issuer: string): Promise<string> {
  const res = await fetch(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`, {
    signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS),
  });
  if (!res.ok) throw new Error(`discovery answered HTTP ${res.status}`);
  const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
  if (doc.issuer !== issuer || typeof doc.jwks_uri !== 'string')
    throw new Error('discovery document does not match the issuer');
  return doc.jwks_uri;
}

/** `verify(authorizationHeader)` resolves the claims of a valid token, or throws a 401 GraphQLError. */
export function createTokenVerifier(options: TokenOptions): (authorization: string | null) => Promise<TokenClaims> {
  let keys: Promise<JWTVerifyGetKey> | null = null;
  const keySet = (): Promise<JWTVerifyGetKey> => {
    if (keys === null) {
      const pending = (options.jwksUri ? Promise.resolve(options.jwksUri) : jwksUriByDiscovery(options.issuer)).then(
        (uri) => createRemoteJWKSet(new URL(uri)),
      );
      // A failed discovery is retried by the next request instead of being remembered.
      pending.catch(() => {
        if (keys === pending) keys = null;
      });
      keys = pending;
    }
    return keys;
  };
  return async (authorization) => {
    const token = authorization === null ? undefined : BEARER.exec(authorization)?.[1];
    if (token === undefined) throw unauthenticated('a bearer access token is required');
    try {
      const { payload } = await jwtVerify(token, await keySet(), {
        issuer: options.issuer,
        audience: options.audience,
        algorithms: ALGORITHMS,
        requiredClaims: ['sub', 'exp'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      });
      return payload as TokenClaims;
    } catch {
      throw unauthenticated('the access token is not valid for this API');
    }
  };
}

export function forbidden(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'FORBIDDEN' } });
}

/**
 * The user entity a reference names, if the token is that user's own. The gateway attaches the
 * caller's identity, but any caller can write a query that makes the gateway send any `id` in a
 * `_entities` representation: the subgraph, which owns the data, decides who may read it.
 * Call it from an async `__resolveReference`: a rejection fails that one entity of the batch, a
 * synchronous throw fails them all.
 */
export function ownUser<T extends { readonly id: string }>(ref: T, claims: TokenClaims): T {
  if (ref.id !== claims.sub) throw forbidden('this access token may read only its own user');
  return ref;
}

export function tokenInfoOf(claims: TokenClaims): TokenInfo {
  const aud = claims.aud === undefined ? [] : typeof claims.aud === 'string' ? [claims.aud] : claims.aud;
  const clientId = claims['azp'] ?? claims['client_id'];
  return Object.freeze({
    issuer: claims.iss ?? '',
    audience: Object.freeze([...aud]),
    subject: claims.sub,
    clientId: typeof clientId === 'string' ? clientId : null,
  });
}
