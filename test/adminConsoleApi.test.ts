/**
 * What the admin console needs from the management API: connection counts by status for a page of
 * providers at a constant number of store queries, a status filter on `connections`, and whether a
 * login link was used (`loginLinkPending`), all through the public `/admin/graphql`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.js';
import { consentOverHttp, oidcProviderInput, startAuthServer, type AuthServer } from './support/authServer.js';

const CREATE_PROVIDER = `mutation($input: CreateCredentialProviderInput!) { createCredentialProvider(input: $input) { id } }`;
const CREATE_CONNECTION = `mutation($p: ID!, $c: ID!) { createConnection(providerId: $p, input: { id: $c }) { id } }`;
const COUNTS = `query($first: Int) { credentialProviders(first: $first) { items { id connectionCounts { connected notConnected error total } } } }`;
const BY_STATUS = `query($p: ID!, $s: ConnectionStatus, $first: Int, $after: String) {
  credentialProvider(id: $p) { connections(first: $first, after: $after, status: $s) { nextCursor items { id status } } } }`;
const LOGIN_LINK = `mutation($p: ID!, $c: ID!, $r: String!) { createLoginLink(providerId: $p, connectionId: $c, postLoginRedirectUrl: $r) { id url expiresAt } }`;
const PENDING = `query($id: ID!) { loginLinkPending(id: $id) }`;

describe('the management API for the admin console', () => {
  let auth: AuthServer;
  let t: TestApp;

  beforeAll(async () => {
    auth = await startAuthServer();
    t = await startTestApp();
    for (const id of ['a-p1', 'a-p2', 'a-p3', 'a-p4']) {
      expect((await t.admin(CREATE_PROVIDER, { input: oidcProviderInput(id, auth) })).body.errors).toBeUndefined();
    }
    for (const [p, n] of [
      ['a-p2', 1],
      ['a-p3', 3],
      ['a-p4', 5],
    ] as const) {
      for (let i = 1; i <= n; i++) await t.admin(CREATE_CONNECTION, { p, c: `c${i}` });
    }
    const link = await t.admin(LOGIN_LINK, { p: 'a-p3', c: 'c2', r: `${t.url}/done` });
    await consentOverHttp(link.body.data.createLoginLink.url, {
      login: 'alice',
      stopAt: (u) => u.pathname === '/done',
    });
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await auth?.close();
  });

  it("counts each provider's connections by status", async () => {
    const res = await t.admin(COUNTS, { first: 10 });
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data.credentialProviders.items).toEqual([
      { id: 'a-p1', connectionCounts: { connected: 0, notConnected: 0, error: 0, total: 0 } },
      { id: 'a-p2', connectionCounts: { connected: 0, notConnected: 1, error: 0, total: 1 } },
      { id: 'a-p3', connectionCounts: { connected: 1, notConnected: 2, error: 0, total: 3 } },
      { id: 'a-p4', connectionCounts: { connected: 0, notConnected: 5, error: 0, total: 5 } },
    ]);
  });

  it('costs the same number of store queries for counts of 1 and of 4 providers', async () => {
    const cost = async (first: number) => {
      const before = t.app.store.stats.queries;
      const res = await t.admin(COUNTS, { first });
      expect(res.body.data.credentialProviders.items).toHaveLength(first);
      return t.app.store.stats.queries - before;
    };
    const one = await cost(1);
    expect(await cost(4)).toBe(one);
    expect(one).toBeLessThanOrEqual(2);
  });

  it("filters a provider's connections by status and pages within the filter", async () => {
    const connected = await t.admin(BY_STATUS, { p: 'a-p3', s: 'CONNECTED' });
    expect(connected.body.data.credentialProvider.connections.items).toEqual([{ id: 'c2', status: 'CONNECTED' }]);
    const first = await t.admin(BY_STATUS, { p: 'a-p3', s: 'NOT_CONNECTED', first: 1 });
    const page1 = first.body.data.credentialProvider.connections;
    expect(page1.items).toEqual([{ id: 'c1', status: 'NOT_CONNECTED' }]);
    const second = await t.admin(BY_STATUS, { p: 'a-p3', s: 'NOT_CONNECTED', first: 1, after: page1.nextCursor });
    expect(second.body.data.credentialProvider.connections.items).toEqual([{ id: 'c3', status: 'NOT_CONNECTED' }]);
    const errors = await t.admin(BY_STATUS, { p: 'a-p3', s: 'ERROR' });
    expect(errors.body.data.credentialProvider.connections).toEqual({ items: [], nextCursor: null });
    const all = await t.admin(BY_STATUS, { p: 'a-p3' });
    expect(all.body.data.credentialProvider.connections.items.map((c: { id: string }) => c.id)).toEqual([
      'c1',
      'c2',
      'c3',
    ]);
  });

  it('refuses an unknown status with a GraphQL validation error', async () => {
    const res = await t.admin(BY_STATUS, { p: 'a-p3', s: 'BROKEN' });
    expect(res.body.errors?.[0]?.message).toContain('$s');
    expect(res.body.data).toBeUndefined();
  });

  it('says a login link is pending until it is opened, and not after', async () => {
    const res = await t.admin(LOGIN_LINK, { p: 'a-p4', c: 'c1', r: `${t.url}/done` });
    const link = res.body.data.createLoginLink;
    expect(link.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The id names the link but is not its token: the URL does not contain it.
    expect(link.url).not.toContain(link.id);
    expect((await t.admin(PENDING, { id: link.id })).body.data.loginLinkPending).toBe(true);
    const opened = await fetch(`${t.url}/oauth/login/${link.id}`, { redirect: 'manual' });
    expect(opened.status).toBeGreaterThanOrEqual(400);
    expect((await t.admin(PENDING, { id: link.id })).body.data.loginLinkPending).toBe(true);
    await fetch(link.url, { redirect: 'manual' });
    expect((await t.admin(PENDING, { id: link.id })).body.data.loginLinkPending).toBe(false);
    expect((await t.admin(PENDING, { id: 'no-such-link' })).body.data.loginLinkPending).toBe(false);
  });

  it('says which grant types use each catalog parameter, so a form asks only for those', async () => {
    const res = await t.admin(`{ identityProvider(name: "oauth2") { parameters { name required grantTypes } } }`);
    const byName = Object.fromEntries(
      res.body.data.identityProvider.parameters.map((p: { name: string }) => [p.name, p]),
    );
    expect(byName['authorizationUrl']).toEqual({
      name: 'authorizationUrl',
      required: true,
      grantTypes: ['AUTHORIZATION_CODE'],
    });
    expect(byName['tokenUrl']).toEqual({
      name: 'tokenUrl',
      required: true,
      grantTypes: ['AUTHORIZATION_CODE', 'CLIENT_CREDENTIALS'],
    });
  });
});
