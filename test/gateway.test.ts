/**
 * The product's reason to exist, end to end: one federated query, two SaaS subgraphs, each called
 * with the token of its own provider, taken from the connection store; real authorization servers,
 * real browser consent, real subgraphs that verify what they receive.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailable, completeConsent, launchBrowser } from './support/browser.js';
import { confirmAsOwner } from './support/consent.js';
import { startStage, type Stage } from './support/federation.js';

const requireBrowser = process.env['CI'] === 'true' || chromiumAvailable();
if (!requireBrowser)
  console.warn(
    '[gateway.test] /usr/bin/chromium is missing: gateway end-to-end tests skipped (mandatory when CI=true)',
  );

const BOTH = `{ viewer { login repositories { name } profile { displayName } } githubTokenInfo { issuer subject } graphTokenInfo { issuer subject } }`;
const TOKEN_INFO = `{ githubTokenInfo { issuer subject } graphTokenInfo { issuer subject } }`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Short enough to expire during the test; long enough that a busy machine finishes a burst of queries inside one token's fresh period. */
const ACCESS_TOKEN_TTL_SECONDS = 6;
const untilExpired = () => sleep(ACCESS_TOKEN_TTL_SECONDS * 1000 + 200);

function errorsByService(errors: any[] | undefined): Record<string, any> {
  return Object.fromEntries((errors ?? []).map((e) => [e.extensions?.serviceName, e]));
}

describe.runIf(requireBrowser)('federation gateway with per-subgraph tokens', () => {
  let s: Stage;
  let browser: Browser;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    // Refreshes on demand only: these tests count what requests cause (test/proactiveRefresh.test.ts covers the background ones).
    s = await startStage({
      accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS,
      config: { cache: { refreshSkewSeconds: 1, proactiveRefresh: false } },
    });
    browser = await launchBrowser();
    alice = await s.jwtFor('alice');
    bob = await s.jwtFor('bob');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  /** Consents in the browser as `login`, then confirms as the connection's owner with their JWT. */
  async function consentVia(loginUrl: string, login: 'alice' | 'bob'): Promise<void> {
    const final = await completeConsent(browser, loginUrl, { login });
    expect(final.pathname).toBe('/oauth/done');
    await confirmAsOwner(s.t.url, final, login === 'alice' ? alice : bob);
  }

  it('asks a new user to consent, per subgraph, with a working login link', async () => {
    const res = await s.query(BOTH, alice);
    expect(res.status).toBe(200);
    const errors = errorsByService(res.body.errors);
    expect(errors['github'].extensions.code).toBe('CONNECTION_NOT_CONNECTED');
    expect(errors['graph'].extensions.code).toBe('CONNECTION_NOT_CONNECTED');
    // Connections were created for alice only, waiting for her consent.
    const conn = await s.t.admin(
      `{ connection(providerId: "github-01", id: "alice") { status accessPolicies { id kind objectId } } }`,
    );
    expect(conn.body.data.connection).toEqual({
      status: 'NOT_CONNECTED',
      accessPolicies: [{ id: 'owner', kind: 'USER', objectId: 'alice' }],
    });
    await consentVia(errors['github'].extensions.loginUrl, 'alice');
    await consentVia(errors['graph'].extensions.loginUrl, 'alice');
  });

  it("answers one federated query with each subgraph called with its own provider's token", async () => {
    s.github.seen.length = 0;
    s.graph.seen.length = 0;
    const res = await s.query(BOTH, alice);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data).toMatchObject({
      viewer: { login: 'alice', profile: { displayName: expect.any(String) } },
      githubTokenInfo: { issuer: s.authGithub.issuer, subject: 'alice' },
      graphTokenInfo: { issuer: s.authGraph.issuer, subject: 'alice' },
    });
    const githubAuth = s.github.seen.map((x) => x.authorization);
    const graphAuth = s.graph.seen.map((x) => x.authorization);
    expect(githubAuth.length).toBeGreaterThan(0);
    expect(graphAuth.length).toBeGreaterThan(0);
    // Only its own token to each subgraph; never the caller's JWT.
    for (const h of [...githubAuth, ...graphAuth]) expect(h).not.toBe(`Bearer ${alice}`);
    expect(new Set(githubAuth).size).toBe(1);
    expect(githubAuth[0]).not.toBe(graphAuth[0]);
  });

  it('refreshes after expiry with exactly one refresh per connection under 50 concurrent queries', async () => {
    await untilExpired();
    s.authGithub.resetCounts();
    s.authGraph.resetCounts();
    const results = await Promise.all(Array.from({ length: 50 }, () => s.query(TOKEN_INFO, alice)));
    for (const r of results) expect(r.body.errors).toBeUndefined();
    expect(s.authGithub.counts.refresh).toBe(1);
    expect(s.authGraph.counts.refresh).toBe(1);
  });

  it("never sends alice's token with bob's requests; bob gets a login link while the other subgraph resolves", async () => {
    // Bob has consented to the graph provider only.
    const first = await s.query(TOKEN_INFO, bob);
    const graphLink = errorsByService(first.body.errors)['graph'].extensions.loginUrl;
    await consentVia(graphLink, 'bob');

    s.github.seen.length = 0;
    s.graph.seen.length = 0;
    const res = await s.query(TOKEN_INFO, bob);
    const errors = errorsByService(res.body.errors);
    expect(Object.keys(errors)).toEqual(['github']);
    expect(errors['github'].extensions.code).toBe('CONNECTION_NOT_CONNECTED');
    expect(errors['github'].extensions.loginUrl).toMatch(new RegExp(`^${s.t.url}/oauth/login/`));
    expect(res.body.data.graphTokenInfo).toEqual({ issuer: s.authGraph.issuer, subject: 'bob' });
    expect(s.github.seen).toHaveLength(0);

    const aliceRes = await s.query(TOKEN_INFO, alice);
    expect(aliceRes.body.data.graphTokenInfo.subject).toBe('alice');
    const bobHeaders = new Set(s.graph.seen.slice(0, 1).map((x) => x.authorization));
    const aliceHeaders = new Set(s.graph.seen.slice(1).map((x) => x.authorization));
    for (const h of bobHeaders) expect(aliceHeaders.has(h)).toBe(false);

    // The link works: after consent bob's github fields resolve with his own token.
    await consentVia(errors['github'].extensions.loginUrl, 'bob');
    const after = await s.query(TOKEN_INFO, bob);
    expect(after.body.errors).toBeUndefined();
    expect(after.body.data.githubTokenInfo).toEqual({ issuer: s.authGithub.issuer, subject: 'bob' });
  });

  it("refuses bob on alice's connection even if he names it", async () => {
    const res = await fetch(`${s.t.url}/tokens/github-01/alice`, { headers: { authorization: `Bearer ${bob}` } });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: 'ACCESS_DENIED' });
  });

  it("does not let bob read alice's profile or mail through an entity reference, with his own tokens", async () => {
    const entityQuery = (owner: string) =>
      `{ repository(owner: "${owner}", name: "notes") { owner { login profile { mail } mail(first: 1) { subject } } } }`;
    const attack = await s.query(entityQuery('alice'), bob);
    expect(JSON.stringify(attack.body)).not.toContain('alice@example.com');
    expect(attack.body.data?.repository?.owner?.profile ?? null).toBeNull();
    const graphError = attack.body.errors?.find((e: any) => e.extensions?.serviceName === 'graph');
    expect(graphError?.message).toMatch(/only its own user/);

    // His own entity still resolves, with the same tokens.
    const own = await s.query(entityQuery('bob'), bob);
    expect(own.body.errors).toBeUndefined();
    expect(own.body.data.repository.owner).toMatchObject({ login: 'bob', profile: { mail: 'bob@example.com' } });
  });

  describe('token endpoint', () => {
    it('serves an allowed caller a fresh access token, never a refresh token', async () => {
      const res = await fetch(`${s.t.url}/tokens/graph-01/alice`, { headers: { authorization: `Bearer ${alice}` } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as Record<string, unknown>;
      expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_at', 'token_type']);
      expect(body['token_type']).toBe('Bearer');
      expect(body['expires_at']).toBeGreaterThan(Date.now() / 1000);
      expect(res.headers.get('cache-control')).toBe('no-store');
    });

    it.each([
      ['no JWT', undefined, '/tokens/graph-01/alice', 401, 'UNAUTHENTICATED'],
      ['a garbage JWT', 'Bearer not.a.jwt', '/tokens/graph-01/alice', 401, 'UNAUTHENTICATED'],
      ['an unknown connection', 'alice', '/tokens/graph-01/nobody', 404, 'CONNECTION_NOT_FOUND'],
      ['an unknown provider', 'alice', '/tokens/nope/alice', 404, 'CONNECTION_NOT_FOUND'],
    ])('refuses %s with the right code', async (_name, auth, path, status, code) => {
      const header = auth === 'alice' ? `Bearer ${alice}` : auth;
      const res = await fetch(`${s.t.url}${path}`, { headers: header ? { authorization: header } : {} });
      expect(res.status).toBe(status);
      expect(await res.json()).toMatchObject({ error: code });
    });
  });

  it('refuses an invalid caller JWT with 401 instead of serving it anonymously', async () => {
    const res = await s.query(TOKEN_INFO, 'garbage');
    expect(res.status).toBe(401);
    expect(res.body.errors![0].extensions.code).toBe('UNAUTHENTICATED');
  });

  it('fails only the bound fields for an anonymous caller', async () => {
    const res = await s.query(TOKEN_INFO, null);
    const errors = errorsByService(res.body.errors);
    expect(errors['github'].extensions.code).toBe('UNAUTHENTICATED');
    expect(errors['graph'].extensions.code).toBe('UNAUTHENTICATED');
  });

  it('reports a revoked grant as REAUTHORIZATION_REQUIRED and shows the connection in ERROR', async () => {
    s.authGithub.revokeGrantsOf('alice');
    await untilExpired();
    const res = await s.query(TOKEN_INFO, alice);
    const errors = errorsByService(res.body.errors);
    expect(errors['github'].extensions.code).toBe('REAUTHORIZATION_REQUIRED');
    expect(errors['github'].extensions.loginUrl).toMatch(/\/oauth\/login\//);
    expect(res.body.data.graphTokenInfo.subject).toBe('alice');
    const conn = await s.t.admin(`{ connection(providerId: "github-01", id: "alice") { status error { code } } }`);
    expect(conn.body.data.connection).toEqual({ status: 'ERROR', error: { code: 'REAUTHORIZATION_REQUIRED' } });
  });

  it('stops serving a connection as soon as its access policy is removed', async () => {
    const ok = await s.query(TOKEN_INFO, bob);
    expect(ok.body.errors).toBeUndefined();
    const del = await s.t.admin(
      `mutation { deleteAccessPolicy(providerId: "graph-01", connectionId: "bob", id: "owner") }`,
    );
    expect(del.body.data.deleteAccessPolicy).toBe(true);
    const res = await s.query(TOKEN_INFO, bob);
    expect(errorsByService(res.body.errors)['graph'].extensions.code).toBe('ACCESS_DENIED');
  });
});
