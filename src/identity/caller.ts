/**
 * The verified identity of whoever sent a request (docs/design.md "The runtime step" step 1). Access policies
 * match on these fields, always within the caller's issuer when the policy names one: USER by
 * `sub`/`oid` and tenant, GROUP by `groups`, SERVICE_PRINCIPAL by `oid`/`sub` (and `appId` when the
 * policy lists app ids); admin JWTs by `roles`.
 */
import { issuerNameOf } from '../config/schema.js';
import { deepFreeze } from '../values.js';

export interface Caller {
  /** The verified `iss`: a caller is the pair (issuer, subject). */
  readonly issuer: string;
  /** The configured name of that issuer, which `{issuer}` renders to in connection templates. */
  readonly issuerName: string;
  readonly sub: string;
  readonly oid: string | null;
  /** The `tid` claim. */
  readonly tenantId: string | null;
  readonly groups: readonly string[];
  /** `azp`, else `client_id`, else `appid` (Entra v1): the application the token was issued to. */
  readonly appId: string | null;
  /** From the configured role claim, which may hold one string or a list. */
  readonly roles: readonly string[];
  /** Every verified claim, for binding templates such as `{jwt.sub}`. */
  readonly claims: Readonly<Record<string, unknown>>;
}

/** Claims naming the client application, in order of preference. */
const APP_ID_CLAIMS = ['azp', 'client_id', 'appid'] as const;

function stringClaim(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}

/** A claim that may hold one string or a list; anything else (numbers, objects) counts as none. */
function stringListClaim(value: unknown): readonly string[] {
  if (typeof value === 'string') return value.length > 0 ? Object.freeze([value]) : Object.freeze([]);
  if (!Array.isArray(value)) return Object.freeze([]);
  return Object.freeze(value.filter((v): v is string => typeof v === 'string' && v.length > 0));
}

/**
 * Builds a frozen Caller from claims that have ALREADY been verified (signature, issuer,
 * audience, expiry, a non-empty string `iss` and `sub`). It checks nothing itself.
 */
export function callerFromClaims(
  claims: Readonly<Record<string, unknown>>,
  roleClaim: string,
  issuerName?: string,
): Caller {
  const copy = deepFreeze(structuredClone({ ...claims }));
  const issuer = String(copy['iss']);
  return Object.freeze({
    issuer,
    issuerName: issuerName ?? issuerNameOf({ issuer }),
    sub: String(copy['sub']),
    oid: stringClaim(copy['oid']),
    tenantId: stringClaim(copy['tid']),
    groups: stringListClaim(copy['groups']),
    appId: APP_ID_CLAIMS.map((name) => stringClaim(copy[name])).find((v) => v !== null) ?? null,
    roles: stringListClaim(copy[roleClaim]),
    claims: copy,
  });
}
