/** Access policy decisions, one rule at a time: issuer-scoped principals and service principals. */
import { describe, expect, it } from 'vitest';
import type { AccessPolicyRecord } from '../../src/domain/model.js';
import { callerFromClaims } from '../../src/identity/caller.js';
import { isAllowed, policyAdmits, type Principal } from '../../src/tokens/accessPolicy.js';

const A = 'https://login.a.example.com';
const B = 'https://login.b.example.com';

function policy(over: Partial<AccessPolicyRecord>): AccessPolicyRecord {
  return {
    providerId: 'p',
    connectionId: 'c',
    id: 'x',
    kind: 'USER',
    objectId: 'alice',
    tenantId: null,
    appIds: [],
    issuer: null,
    createdAt: new Date(0),
    ...over,
  };
}

function caller(claims: Record<string, unknown>): Principal {
  return { kind: 'caller', caller: callerFromClaims({ iss: A, ...claims }, 'roles') };
}

describe('issuer-scoped policies', () => {
  it.each(['USER', 'GROUP'] as const)(
    'a %s policy with an issuer admits only callers verified against that issuer',
    (kind) => {
      const p = policy({ kind, objectId: kind === 'USER' ? 'alice' : 'g1', issuer: A });
      expect(policyAdmits(p, caller({ sub: 'alice', groups: ['g1'] }))).toBe(true);
      expect(policyAdmits(p, caller({ iss: B, sub: 'alice', groups: ['g1'] }))).toBe(false);
    },
  );

  it('a policy without an issuer admits the principal of any issuer (the admin chose so)', () => {
    const p = policy({ objectId: 'alice' });
    expect(policyAdmits(p, caller({ sub: 'alice' }))).toBe(true);
    expect(policyAdmits(p, caller({ iss: B, sub: 'alice' }))).toBe(true);
  });

  it('compares the issuer exactly, as the token carries it', () => {
    expect(policyAdmits(policy({ issuer: `${A}/` }), caller({ sub: 'alice' }))).toBe(false);
    expect(policyAdmits(policy({ issuer: A.toUpperCase() }), caller({ sub: 'alice' }))).toBe(false);
  });

  it('issuer and tenant both narrow a USER policy', () => {
    const p = policy({ issuer: A, tenantId: 't1' });
    expect(policyAdmits(p, caller({ sub: 'alice', tid: 't1' }))).toBe(true);
    expect(policyAdmits(p, caller({ sub: 'alice', tid: 't2' }))).toBe(false);
    expect(policyAdmits(p, caller({ sub: 'alice' }))).toBe(false);
  });

  it('never admits the managed identity through a caller policy, nor a caller through MANAGED_IDENTITY', () => {
    expect(policyAdmits(policy({ issuer: A }), { kind: 'managed', objectId: 'alice' })).toBe(false);
    expect(policyAdmits(policy({ kind: 'MANAGED_IDENTITY', objectId: 'alice' }), caller({ sub: 'alice' }))).toBe(false);
  });
});

describe('SERVICE_PRINCIPAL policies name the principal, not the app', () => {
  const sp = policy({ kind: 'SERVICE_PRINCIPAL', objectId: 'sp-oid', appIds: ['app-1'], issuer: A });

  it('admits the app-only token of the service principal (oid)', () => {
    expect(policyAdmits(sp, caller({ sub: 'sp-oid', oid: 'sp-oid', azp: 'app-1', idtyp: 'app' }))).toBe(true);
  });

  it("refuses a user's token issued through the same app", () => {
    expect(policyAdmits(sp, caller({ sub: 'user-pairwise', oid: 'user-oid', azp: 'app-1' }))).toBe(false);
  });

  it('matches oid when the token has one, else sub: a user whose sub happens to equal the principal id but carries its own oid is refused', () => {
    expect(policyAdmits(sp, caller({ sub: 'sp-oid', oid: 'user-oid', azp: 'app-1' }))).toBe(false);
    // RFC 9068 client-credentials tokens carry no oid: sub is the client.
    expect(policyAdmits(sp, caller({ sub: 'sp-oid', client_id: 'app-1' }))).toBe(true);
  });

  it('with appIds, also requires the token to be issued to one of them', () => {
    expect(policyAdmits(sp, caller({ sub: 'sp-oid', azp: 'app-2' }))).toBe(false);
    expect(policyAdmits(sp, caller({ sub: 'sp-oid' }))).toBe(false);
    expect(
      policyAdmits(
        policy({ kind: 'SERVICE_PRINCIPAL', objectId: 'sp-oid' }),
        caller({ sub: 'sp-oid', azp: 'anything' }),
      ),
    ).toBe(true);
  });

  it('a policy written with an app id as objectId (the old meaning) no longer admits every user of that app', () => {
    const old = policy({ kind: 'SERVICE_PRINCIPAL', objectId: 'app-1' });
    expect(policyAdmits(old, caller({ sub: 'bob', oid: 'bob-oid', azp: 'app-1' }))).toBe(false);
    expect(policyAdmits(old, caller({ sub: 'bob', appid: 'app-1' }))).toBe(false);
  });

  it('is issuer-scoped like the others', () => {
    expect(policyAdmits(sp, caller({ iss: B, sub: 'sp-oid', oid: 'sp-oid', azp: 'app-1' }))).toBe(false);
  });
});

describe('isAllowed', () => {
  it('admits when any policy does, and refuses with none', () => {
    const p = [policy({ objectId: 'bob', issuer: A }), policy({ objectId: 'alice', issuer: B })];
    expect(isAllowed(p, caller({ iss: B, sub: 'alice' }))).toBe(true);
    expect(isAllowed(p, caller({ sub: 'alice' }))).toBe(false);
    expect(isAllowed([], caller({ sub: 'alice' }))).toBe(false);
  });
});
