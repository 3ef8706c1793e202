/**
 * Who may use a connection's tokens (the reference's access policies). Pure and exhaustive over
 * policy kinds: a new kind fails to compile until it is decided here.
 */
import type { AccessPolicyRecord } from '../domain/model.js';
import type { Caller } from '../identity/caller.js';

/** A verified caller (`identity: jwt`) or the gateway itself (`identity: managed`). */
export type Principal = { readonly kind: 'caller'; readonly caller: Caller } | { readonly kind: 'managed'; readonly objectId: string };

function tenantMatches(policy: AccessPolicyRecord, caller: Caller): boolean {
  return policy.tenantId === null || policy.tenantId === caller.tenantId;
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
      return (c.oid === policy.objectId || c.sub === policy.objectId) && tenantMatches(policy, c) && appMatches(policy, c);
    }
    case 'GROUP': {
      if (principal.kind !== 'caller') return false;
      const c = principal.caller;
      return c.groups.includes(policy.objectId) && tenantMatches(policy, c) && appMatches(policy, c);
    }
    case 'SERVICE_PRINCIPAL': {
      if (principal.kind !== 'caller') return false;
      const c = principal.caller;
      return c.appId === policy.objectId && tenantMatches(policy, c);
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
