/**
 * Reference steps 3–11 end to end: the real gateway, oidc-provider as the authorization server,
 * and Debian's Chromium clicking through login and consent.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.js';
import { oidcProviderInput, startAuthServer, type AuthServer } from './support/authServer.js';
import { chromiumAvailable, completeConsent, launchBrowser } from './support/browser.js';

const requireBrowser = process.env['CI'] === 'true' || chromiumAvailable();
if (!requireBrowser)
  console.warn('[consent.test] /usr/bin/chromium is missing: browser consent tests skipped (mandatory when CI=true)');

const TEST = `mutation($p: ID!, $c: ID!) { testConnection(providerId: $p, connectionId: $c) { ok status tokenExpiresAt error { code message } } }`;
const CONNECTION = `query($p: ID!, $c: ID!) { connection(providerId: $p, id: $c) { status error { code message } tokenExpiresAt lastRefreshedAt version } }`;
const LOGIN_LINK = `mutation($p: ID!, $c: ID!, $r: String!) { createLoginLink(providerId: $p, connectionId: $c, postLoginRedirectUrl: $r) { url expiresAt } }`;

describe.runIf(requireBrowser)('consent with a real browser and authorization server', () => {
  let auth: AuthServer;
  let t: TestApp;
  let browser: Browser;
  let clockOffsetMs = 0;
  const seenSecrets = new Set<string>();

  beforeAll(async () => {
    auth = await startAuthServer({ accessTokenTtlSeconds: 5 });
    t = await startTestApp({}, { now: () => new Date(Date.now() + clockOffsetMs) });
    browser = await launchBrowser();
    seenSecrets.add(auth.clients.web.clientSecret);
    const created = await t.admin(
      `mutation($input: CreateCredentialProviderInput!) { createCredentialProvider(input: $input) { id } }`,
      { input: oidcProviderInput('oidc-01', auth) },
    );
    expect(created.body.errors).toBeUndefined();
    const conn = await t.admin(
      `mutation { createConnection(providerId: "oidc-01", input: { id: "alice" }) { status } }`,
    );
    expect(conn.body.data.createConnection.status).toBe('NOT_CONNECTED');
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await auth?.close();
  });

  async function loginLink(connectionId = 'alice', redirect = `${t.url}/done`): Promise<string> {
    const res = await t.admin(LOGIN_LINK, { p: 'oidc-01', c: connectionId, r: redirect });
    expect(res.body.errors).toBeUndefined();
    return res.body.data.createLoginLink.url;
  }

  it('refuses to test a connection that has not consented yet', async () => {
    const res = await t.admin(TEST, { p: 'oidc-01', c: 'alice' });
    expect(res.body.data.testConnection).toEqual({
      ok: false,
      status: 'NOT_CONNECTED',
      tokenExpiresAt: null,
      error: {
        code: 'CONNECTION_NOT_CONNECTED',
        message: "connection 'alice' of provider 'oidc-01' needs consent first",
      },
    });
  });

  it('connects after login and consent in the browser, and stores the tokens sealed', async () => {
    const link = await loginLink();
    expect(link.startsWith(`${t.url}/oauth/login/`)).toBe(true);
    const final = await completeConsent(browser, link, { login: 'alice' });
    expect(`${final.origin}${final.pathname}`).toBe(`${t.url}/done`);
    expect(Object.fromEntries(final.searchParams)).toEqual({
      providerId: 'oidc-01',
      connectionId: 'alice',
      status: 'CONNECTED',
    });
    const res = await t.admin(CONNECTION, { p: 'oidc-01', c: 'alice' });
    expect(res.body.data.connection.status).toBe('CONNECTED');
    expect(new Date(res.body.data.connection.tokenExpiresAt).getTime()).toBeGreaterThan(Date.now());
    expect(auth.counts.authorizationCode).toBe(1);

    const token = await t.app.tokens.get({ providerId: 'oidc-01', connectionId: 'alice' });
    expect(token.accessToken.split('.')).toHaveLength(3);
    seenSecrets.add(token.accessToken);
  });

  it('refreshes with rotation ten times in a row', async () => {
    auth.resetCounts();
    const expiries: string[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await t.admin(TEST, { p: 'oidc-01', c: 'alice' });
      expect(res.body.data.testConnection).toMatchObject({ ok: true, status: 'CONNECTED', error: null });
      expiries.push(res.body.data.testConnection.tokenExpiresAt);
    }
    expect(auth.counts.refresh).toBe(10);
    expect(new Set(expiries).size).toBeGreaterThan(1);
    const res = await t.admin(CONNECTION, { p: 'oidc-01', c: 'alice' });
    expect(res.body.data.connection.lastRefreshedAt).not.toBeNull();
    // Token refreshes are not admin changes: the version stays.
    expect(res.body.data.connection.version).toBe(1);
  });

  it('refreshes on use once the access token is inside the refresh skew', async () => {
    auth.resetCounts();
    const before = await t.app.tokens.get({ providerId: 'oidc-01', connectionId: 'alice' });
    // Tokens live 5 s and the skew is 180 s: every use needs a refresh, exactly one per use.
    const after = await t.app.tokens.get({ providerId: 'oidc-01', connectionId: 'alice' });
    expect(after.accessToken).not.toBe(before.accessToken);
    seenSecrets.add(before.accessToken).add(after.accessToken);
    expect(auth.counts.refresh).toBe(2);
  });

  it('shares one refresh among concurrent users of the same connection', async () => {
    auth.resetCounts();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => t.app.tokens.get({ providerId: 'oidc-01', connectionId: 'alice' })),
    );
    expect(new Set(results.map((r) => r.accessToken)).size).toBe(1);
    expect(auth.counts.refresh).toBe(1);
  });

  it('moves a connection whose grant was revoked to ERROR / REAUTHORIZATION_REQUIRED', async () => {
    expect(auth.revokeGrantsOf('alice')).toBeGreaterThan(0);
    const res = await t.admin(TEST, { p: 'oidc-01', c: 'alice' });
    expect(res.body.data.testConnection).toMatchObject({
      ok: false,
      status: 'ERROR',
      error: { code: 'REAUTHORIZATION_REQUIRED' },
    });
    const conn = await t.admin(CONNECTION, { p: 'oidc-01', c: 'alice' });
    expect(conn.body.data.connection.status).toBe('ERROR');
    expect(conn.body.data.connection.error.code).toBe('REAUTHORIZATION_REQUIRED');
    await expect(t.app.tokens.get({ providerId: 'oidc-01', connectionId: 'alice' })).rejects.toMatchObject({
      code: 'REAUTHORIZATION_REQUIRED',
    });
  });

  it('comes back to CONNECTED after a new consent', async () => {
    const final = await completeConsent(browser, await loginLink(), { login: 'alice' });
    expect(final.searchParams.get('status')).toBe('CONNECTED');
    const res = await t.admin(TEST, { p: 'oidc-01', c: 'alice' });
    expect(res.body.data.testConnection).toMatchObject({ ok: true, status: 'CONNECTED', error: null });
  });

  it('leaves the connection as it was when consent is denied', async () => {
    await t.admin(`mutation { createConnection(providerId: "oidc-01", input: { id: "carol" }) { id } }`);
    const final = await completeConsent(browser, await loginLink('carol'), { login: 'carol', deny: true });
    expect(final.searchParams.get('error')).toBe('ACCESS_DENIED');
    expect(final.searchParams.get('status')).toBeNull();
    const res = await t.admin(CONNECTION, { p: 'oidc-01', c: 'carol' });
    expect(res.body.data.connection).toMatchObject({ status: 'NOT_CONNECTED', error: null });
  });

  it("drops a stale error parameter of the admin's post-login URL after a successful consent, needing no confirmation", async () => {
    const final = await completeConsent(
      browser,
      await loginLink('alice', `${t.url}/done?error=ACCESS_DENIED&error_description=earlier&keep=1`),
      { login: 'alice' },
    );
    expect(Object.fromEntries(final.searchParams)).toEqual({
      keep: '1',
      providerId: 'oidc-01',
      connectionId: 'alice',
      status: 'CONNECTED',
    });
  });

  it("makes the connection's other outstanding links and states unusable once a consent succeeds", async () => {
    const spare = await loginLink();
    const atProvider = new URL((await fetch(await loginLink(), { redirect: 'manual' })).headers.get('location')!);
    const final = await completeConsent(browser, await loginLink(), { login: 'alice' });
    expect(final.searchParams.get('status')).toBe('CONNECTED');
    expect((await fetch(spare, { redirect: 'manual' })).status).toBe(404);
    const late = await fetch(`${t.url}/oauth/callback?state=${atProvider.searchParams.get('state')}&code=x`, {
      redirect: 'manual',
    });
    expect(late.status).toBe(400);
  });

  it('refuses a post-login URL outside the allowlist, and creates no link', async () => {
    const res = await t.admin(LOGIN_LINK, { p: 'oidc-01', c: 'alice', r: 'https://evil.example.com/steal' });
    expect(res.body.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'postLoginRedirectUrl' });
    const sneaky = await t.admin(LOGIN_LINK, { p: 'oidc-01', c: 'alice', r: `${t.url}@evil.example.com/` });
    expect(sneaky.body.errors![0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('uses a login link once only', async () => {
    const link = await loginLink();
    const first = await fetch(link, { redirect: 'manual' });
    expect(first.status).toBe(302);
    expect(first.headers.get('location')!.startsWith(auth.issuer)).toBe(true);
    const second = await fetch(link, { redirect: 'manual' });
    expect(second.status).toBe(404);
    expect(await second.json()).toMatchObject({ error: 'NOT_FOUND' });
  });

  it('refuses a replayed state at the callback', async () => {
    const link = await loginLink();
    const toProvider = new URL((await fetch(link, { redirect: 'manual' })).headers.get('location')!);
    const state = toProvider.searchParams.get('state')!;
    const forged = await fetch(`${t.url}/oauth/callback?state=${encodeURIComponent(state)}&code=made-up`, {
      redirect: 'manual',
    });
    // The state was valid once: the made-up code fails at the provider and the browser goes back with an error.
    expect(forged.status).toBe(302);
    expect(new URL(forged.headers.get('location')!).searchParams.get('error')).toBe('PROVIDER_UNAVAILABLE');
    const replay = await fetch(`${t.url}/oauth/callback?state=${encodeURIComponent(state)}&code=made-up`, {
      redirect: 'manual',
    });
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error: 'BAD_USER_INPUT' });
    const conn = await t.admin(CONNECTION, { p: 'oidc-01', c: 'alice' });
    expect(conn.body.data.connection.status).toBe('CONNECTED');
  });

  it('refuses an expired login link and an expired state', async () => {
    const link = await loginLink();
    const link2 = await loginLink();
    const toProvider = new URL((await fetch(link2, { redirect: 'manual' })).headers.get('location')!);
    clockOffsetMs = 11 * 60_000;
    try {
      const expiredLink = await fetch(link, { redirect: 'manual' });
      expect(expiredLink.status).toBe(404);
      const state = toProvider.searchParams.get('state')!;
      const expiredState = await fetch(`${t.url}/oauth/callback?state=${encodeURIComponent(state)}&code=x`, {
        redirect: 'manual',
      });
      expect(expiredState.status).toBe(400);
    } finally {
      clockOffsetMs = 0;
    }
  });

  it('keeps every client secret and token out of the SQLite file', async () => {
    const files = ['credentials.db', 'credentials.db-wal'].map((f) => {
      try {
        return readFileSync(join(t.dir, f));
      } catch {
        return Buffer.alloc(0);
      }
    });
    expect(seenSecrets.size).toBeGreaterThanOrEqual(4);
    for (const secret of seenSecrets)
      for (const bytes of files) expect(bytes.includes(Buffer.from(secret))).toBe(false);
  });
});

describe('client configurations of changed and deleted providers', () => {
  it("drops a deleted provider's cached client configuration (it holds the client secret): the same provider created again discovers afresh", async () => {
    const auth = await startAuthServer({ accessTokenTtlSeconds: 60 });
    const t = await startTestApp();
    try {
      const create = async () => {
        const created = await t.admin(
          `mutation($input: CreateCredentialProviderInput!) { createCredentialProvider(input: $input) { id } }`,
          {
            input: oidcProviderInput('oidc-02', auth),
          },
        );
        expect(created.body.errors).toBeUndefined();
      };
      /** Opens a fresh login link: the gateway builds an authorization request, discovering if it must. */
      const openLoginLink = async (connectionId: string) => {
        const made = await t.admin(
          `mutation { createConnection(providerId: "oidc-02", input: { id: "${connectionId}" }) { status } }`,
        );
        expect(made.body.errors).toBeUndefined();
        const res = await t.admin(LOGIN_LINK, { p: 'oidc-02', c: connectionId, r: `${t.url}/done` });
        const opened = await fetch(res.body.data.createLoginLink.url, { redirect: 'manual' });
        expect(opened.status).toBe(302);
        expect(opened.headers.get('location')).toMatch(new RegExp(`^${auth.issuer}`));
      };
      await create();
      const before = auth.counts.discovery;
      await openLoginLink('alice');
      await openLoginLink('bob');
      expect(auth.counts.discovery).toBe(before + 1);
      const deleted = await t.admin(`mutation { deleteCredentialProvider(id: "oidc-02") }`);
      expect(deleted.body.data.deleteCredentialProvider).toBe(true);
      await create();
      await openLoginLink('alice');
      expect(auth.counts.discovery).toBe(before + 2);
    } finally {
      await t.close();
      await auth.close();
    }
  });
});
