/**
 * Who may use a connection's tokens (the reference's access policies). Pure and exhaustive over
 * policy kinds: a new kind fails to compile until it is decided here.
 */
import type { AccessPolicyRecord } from '../domain/model.js';
import type { Caller } from '../identity/caller.js';

/** A verified caller (`identity: jwt`) or the gateway itself (`identity: managed`). */
export type Principal =
  | { readonly kind: 'caller'; readonly caller: Caller }
  | { readonly kind: 'managed'; readonly objectId: string };

function tenantMatches(policy: AccessPolicyRecord, caller: Caller): boolean {
  return policy.tenantId === null || policy.tenantId === caller.tenantId;
}

/** A subject is only unique within its issuer: a policy naming one admits no caller of another. */
function issuerMatches(policy: AccessPolicyRecord, caller: Caller): boolean {
  return policy.issuer === null || policy.issuer === caller.issuer;
}

/** What every caller policy checks beside its principal: issuer and tenant. */
function scopeMatches(policy: AccessPolicyRecord, caller: Caller): boolean {
  return issuerMatches(policy, caller) && tenantMatches(policy, caller);
}

/** Policies listing application ids admit the principal only through one of those applications. */
function appMatches(policy: AccessPolicyRecord, caller: Caller): boolean {
  return policy.appIds.length === 0 || (caller.appId !== null && policy.appIds.includes(caller.appId));
}

export function policyAdmits(policy: AccessPolicyRecord, principal: Principal): boolean {
  switch (policy.kind) {
    case 'MANAGED_IDENTITY':
      return principal.kind === 'managed' && principal.objectId === policy.objectId;
    case 'USER': {
      if (principal.kind !== 'caller') return false;
      const c = principal.caller;
      return (
        (c.oid === policy.objectId || c.sub === policy.objectId) && scopeMatches(policy, c) && appMatches(policy, c)
      );
    }
    case 'GROUP': {
      if (principal.kind !== 'caller') return false;
      const c = principal.caller;
      return c.groups.includes(policy.objectId) && scopeMatches(policy, c) && appMatches(policy, c);
    }
    case 'SERVICE_PRINCIPAL': {
      // The principal itself, not the application it signed in through: a user's token issued to
      // the same app carries the user's own oid / sub and is refused. An app-only token carries the
      // service principal's (Entra: oid = sub = its object id; RFC 9068 client credentials: sub = client id).
      if (principal.kind !== 'caller') return false;
      const c = principal.caller;
      return (c.oid ?? c.sub) === policy.objectId && scopeMatches(policy, c) && appMatches(policy, c);
    }
    default: {
      const never: never = policy.kind;
      throw new Error(`unknown access policy kind ${String(never)}`);
    }
  }
}

export function isAllowed(policies: readonly AccessPolicyRecord[], principal: Principal): boolean {
  return policies.some((p) => policyAdmits(p, principal));
}
