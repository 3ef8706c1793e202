/**
 * Provider quirks applied to token endpoint responses. `normalizeTokenResponse` runs inside the
 * fetch hook, before openid-client validates the body, so that openid-client sees an RFC 6749
 * response; `toTokenResult` turns what openid-client returns into the stored shape.
 */
import { decodeJwt } from 'jose';
import type { TokenEndpointResponse, TokenEndpointResponseHelpers } from 'openid-client';
import type { OAuthQuirks, TokenResult } from './types.js';
import { isRecord } from '../values.js';

/** The fields that describe the token itself; moved as a whole from a nested token object. */
const TOKEN_FIELDS = ['access_token', 'token_type', 'expires_in', 'refresh_token', 'scope', 'id_token'] as const;

/** Never copied into `extra`, whatever the catalog says: `extra` is not meant for secrets. */
const SECRET_FIELDS: ReadonlySet<string> = new Set(['access_token', 'refresh_token', 'id_token', 'client_secret']);

/** Optional token fields some providers send as `null` rather than leaving out; openid-client refuses a null. */
const OPTIONAL_TOKEN_FIELDS = ['refresh_token', 'scope', 'expires_in', 'id_token'] as const;

/** Statuses whose Response may not carry a body (the Response constructor rejects one). */
const NULL_BODY_STATUSES: ReadonlySet<number> = new Set([101, 103, 204, 205, 304]);

type JsonObject = Record<string, unknown>;

export function readPath(source: unknown, path: string): unknown {
  let current: unknown = source;
  for (const segment of path.split('.')) {
    if (!isRecord(current) || !Object.hasOwn(current, segment)) return undefined;
    current = current[segment];
  }
  return current;
}

/** JSON, or form-encoded (GitHub without `Accept: application/json`); null when neither. */
function parseBody(text: string, contentType: string): JsonObject | null {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      return isRecord(parsed) ? parsed : null;
    } catch {
      return null;
    }
  }
  const formLike = contentType.includes('application/x-www-form-urlencoded') || contentType.startsWith('text/plain');
  if (formLike) {
    const form = Object.fromEntries(new URLSearchParams(trimmed));
    return 'access_token' in form || 'error' in form ? form : null;
  }
  return null;
}

/** Rewrites the JSON object in place; returns the HTTP status openid-client should see. */
function applyQuirks(body: JsonObject, status: number, quirks: OAuthQuirks): number {
  if (quirks.tokenResponsePath !== null) {
    const nested = readPath(body, quirks.tokenResponsePath);
    // Slack's code exchange nests the user token; its refresh answers at the top level.
    if (isRecord(nested) && typeof nested['access_token'] === 'string') {
      for (const field of TOKEN_FIELDS) {
        delete body[field];
        if (nested[field] !== undefined) body[field] = nested[field];
      }
    }
  }
  for (const field of OPTIONAL_TOKEN_FIELDS) if (body[field] === null) delete body[field];
  // RFC 6749 §3.3 makes `scope` one space-separated string; Twitch and others send a JSON array.
  const scope = body['scope'];
  if (Array.isArray(scope) && scope.every((s) => typeof s === 'string')) body['scope'] = scope.join(' ');
  // Only `bearer` and `dpop` pass openid-client; other names (Slack's `bot`, `user`) are bearer
  // tokens in practice, and some providers leave the field out.
  const tokenType = body['token_type'];
  if (
    typeof body['access_token'] === 'string' &&
    (typeof tokenType !== 'string' || !/^(?:bearer|dpop)$/i.test(tokenType))
  ) {
    body['token_type'] = 'Bearer';
  }
  // GitHub and Slack report errors with HTTP 200; openid-client only looks for them on 4xx.
  if (status === 200 && typeof body['error'] === 'string' && body['access_token'] === undefined) return 400;
  return status;
}

function responseInit(response: Response): { status: number; statusText: string; headers: Headers } {
  const headers = new Headers(response.headers);
  // The body is handed on decoded, so its transfer headers no longer apply.
  headers.delete('content-length');
  headers.delete('content-encoding');
  return { status: response.status, statusText: response.statusText, headers };
}

/** The same response with its already-read body. */
export function rebuildResponse(response: Response, text: string): Response {
  const init = responseInit(response);
  return new Response(NULL_BODY_STATUSES.has(init.status) ? null : text, init);
}

/** A token endpoint response rewritten into RFC 6749 form; unreadable bodies pass unchanged. */
export function normalizeTokenResponse(response: Response, text: string, quirks: OAuthQuirks): Response {
  const init = responseInit(response);
  const body = NULL_BODY_STATUSES.has(init.status) ? null : parseBody(text, init.headers.get('content-type') ?? '');
  if (body === null) return rebuildResponse(response, text);
  const status = applyQuirks(body, init.status, quirks);
  init.headers.set('content-type', 'application/json');
  return new Response(JSON.stringify(body), { ...init, status });
}

function canonicalTokenType(tokenType: string): string {
  return tokenType === 'dpop' ? 'DPoP' : 'Bearer';
}

/** A JWT access token's `exp` further out than this is not believed (a year and a month). */
const MAX_JWT_ACCESS_TOKEN_LIFETIME_MS = 400 * 24 * 3600 * 1000;

/**
 * The `exp` of a JWT access token, read without verifying it (the gateway is not its audience and
 * only decides when to renew by it); null for an opaque token or an `exp` not in the near future.
 */
function jwtExpiresAt(accessToken: string, nowMs: number): number | null {
  let exp: unknown;
  try {
    exp = decodeJwt(accessToken).exp;
  } catch {
    return null;
  }
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return null;
  const ms = exp * 1000;
  return ms > nowMs && ms - nowMs <= MAX_JWT_ACCESS_TOKEN_LIFETIME_MS ? ms : null;
}

/** `expires_in`; without it, a JWT access token's own `exp`; then the catalog's assumption. */
function expiresAtOf(
  expiresInSeconds: unknown,
  accessToken: string,
  quirks: OAuthQuirks,
  nowMs: number,
): number | null {
  if (typeof expiresInSeconds === 'number' && expiresInSeconds > 0) return nowMs + expiresInSeconds * 1000;
  const fromJwt = jwtExpiresAt(accessToken, nowMs);
  if (fromJwt !== null) return fromJwt;
  if (quirks.tokensNeverExpire) return null;
  return quirks.defaultTokenLifetimeSeconds === null ? null : nowMs + quirks.defaultTokenLifetimeSeconds * 1000;
}

function keptFields(response: TokenEndpointResponse, quirks: OAuthQuirks): Record<string, string> {
  const extra: Record<string, string> = {};
  for (const path of quirks.keepResponseFields) {
    const leaf = path.slice(path.lastIndexOf('.') + 1);
    if (SECRET_FIELDS.has(leaf)) continue;
    const value = readPath(response, path);
    if (value === undefined || value === null) continue;
    // An object kept whole (none in the catalog today) never carries a token inside it.
    extra[path] =
      typeof value === 'object'
        ? JSON.stringify(value, (key, v: unknown) => (SECRET_FIELDS.has(key) ? undefined : v))
        : String(value);
  }
  return extra;
}

/** The stored shape of a validated token response, quirks applied; frozen. */
export function toTokenResult(
  response: TokenEndpointResponse & TokenEndpointResponseHelpers,
  quirks: OAuthQuirks,
  nowMs: number = Date.now(),
): TokenResult {
  const claims = response.claims();
  return Object.freeze({
    accessToken: response.access_token,
    refreshToken:
      typeof response.refresh_token === 'string' && response.refresh_token !== '' ? response.refresh_token : null,
    tokenType: canonicalTokenType(response.token_type),
    expiresAt: expiresAtOf(response.expires_in, response.access_token, quirks, nowMs),
    scope: typeof response.scope === 'string' ? response.scope : null,
    idTokenClaims: claims === undefined ? null : Object.freeze({ ...claims }),
    extra: Object.freeze(keptFields(response, quirks)),
  });
}
