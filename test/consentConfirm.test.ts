/**
 * Consent started from a runtime `loginUrl` is confirmed by the connection's owner
 * (docs/trust-model.md): the real gateway, real authorization servers, Debian's Chromium, and two
 * small pages on other origins playing the app (allowlisted) and a stranger (not allowlisted) that open the link
 * in a popup.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consentOverHttp } from './support/authServer.js';
import { chromiumAvailable, completeConsent, driveConsent, launchBrowser } from './support/browser.js';
import { confirmAsOwner, confirmConsent, consentIdOf } from './support/consent.js';
import { startStage, type Stage } from './support/federation.js';

const requireBrowser = process.env['CI'] === 'true' || chromiumAvailable();
if (!requireBrowser)
  console.warn(
    '[consentConfirm.test] /usr/bin/chromium is missing: confirmation tests skipped (mandatory when CI=true)',
  );

const GITHUB_INFO = `{ githubTokenInfo { issuer subject } }`;
const CONNECTION = `query($c: ID!) { connection(providerId: "github-01", id: $c) { status hasTokens: tokenExpiresAt } }`;
const LOGIN_LINK = `mutation($c: ID!, $r: String!) { createLoginLink(providerId: "github-01", connectionId: $c, postLoginRedirectUrl: $r) { url } }`;
const TEN_MINUTES_MS = 10 * 60_000;

/** A page on its own origin that records every message it receives (the opener of a consent popup). */
async function startOpenerSite(): Promise<{ server: Server; origin: string }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><html><body><p>app</p></body></html>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const closeServer = (server: Server | undefined) =>
  new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));

describe.runIf(requireBrowser)('consent started from a runtime loginUrl is confirmed by the connection owner', () => {
  let s: Stage;
  let browser: Browser;
  let app: { server: Server; origin: string };
  let stranger: { server: Server; origin: string };
  let alice: string;
  let bob: string;
  let clockOffsetMs = 0;
  const logLines: string[] = [];
  const consentIds: string[] = [];

  beforeAll(async () => {
    [app, stranger] = await Promise.all([startOpenerSite(), startOpenerSite()]);
    s = await startStage({
      // A burst of 300 failing queries below must not hit the acquisitions-per-minute limit.
      config: {
        consent: { allowedRedirectOrigins: [app.origin] },
        cache: { proactiveRefresh: false },
        limits: { tokenAcquisitionsPerMinute: 10_000 },
      },
      logLines,
      now: () => new Date(Date.now() + clockOffsetMs),
    });
    browser = await launchBrowser();
    alice = await s.jwtFor('alice');
    bob = await s.jwtFor('bob');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await s?.close();
    await Promise.all([closeServer(app?.server), closeServer(stranger?.server)]);
  });

  async function loginUrlFor(jwt: string): Promise<string> {
    const res = await s.query(GITHUB_INFO, jwt);
    const error = res.body.errors?.find((e: any) => e.extensions?.serviceName === 'github');
    expect(error?.extensions.code).toMatch(/^(CONNECTION_NOT_CONNECTED|REAUTHORIZATION_REQUIRED)$/);
    return error.extensions.loginUrl;
  }

  async function connectionOf(id: string) {
    return (await s.t.admin(CONNECTION, { c: id })).body.data.connection;
  }

  const remember = (landed: URL): URL => {
    consentIds.push(consentIdOf(landed));
    return landed;
  };

  it("holds the owner's own consent pending, and connects it once the owner confirms", async () => {
    const landed = remember(await completeConsent(browser, await loginUrlFor(alice), { login: 'alice' }));
    expect(`${landed.origin}${landed.pathname}`).toBe(`${s.t.url}/oauth/done`);
    expect(landed.searchParams.get('status')).toBeNull();
    // Before confirmation: nothing changed, no token is served.
    expect(await connectionOf('alice')).toEqual({ status: 'NOT_CONNECTED', hasTokens: null });
    expect((await s.query(GITHUB_INFO, alice)).body.errors?.[0].extensions.code).toBe('CONNECTION_NOT_CONNECTED');

    const confirmed = await confirmConsent(s.t.url, landed, alice);
    expect(confirmed).toEqual({
      status: 200,
      body: { providerId: 'github-01', connectionId: 'alice', status: 'CONNECTED' },
    });
    expect((await connectionOf('alice')).status).toBe('CONNECTED');
    const after = await s.query(GITHUB_INFO, alice);
    expect(after.body.errors).toBeUndefined();
    expect(after.body.data.githubTokenInfo).toEqual({ issuer: s.authGithub.issuer, subject: 'alice' });
  });

  it("refuses alice's confirmation of bob's link completed in her browser session, and bob's connection stays unusable", async () => {
    // Bob sends alice his link; she is signed in at the provider and approves.
    const landed = remember(await completeConsent(browser, await loginUrlFor(bob), { login: 'alice' }));
    const refused = await confirmConsent(s.t.url, landed, alice);
    expect(refused.status).toBe(403);
    expect(refused.body['error']).toBe('ACCESS_DENIED');
    expect(await connectionOf('bob')).toEqual({ status: 'NOT_CONNECTED', hasTokens: null });
    expect((await s.query(GITHUB_INFO, bob)).body.errors?.[0].extensions.code).toBe('CONNECTION_NOT_CONNECTED');
    // The refused consent is spent: bob cannot take alice's identity with it either.
    expect((await confirmConsent(s.t.url, landed, bob)).status).toBe(404);
    expect(
      (await fetch(`${s.t.url}/tokens/github-01/bob`, { headers: { authorization: `Bearer ${bob}` } })).status,
    ).toBe(409);
  });

  it('answers 404 to a replayed, an unknown and an expired consent id, and 401 without a valid JWT', async () => {
    const replayed = consentIds[0]!;
    expect((await confirmConsent(s.t.url, replayed, alice)).status).toBe(404);
    expect(await confirmConsent(s.t.url, 'A'.repeat(43), alice)).toMatchObject({
      status: 404,
      body: { error: 'NOT_FOUND' },
    });
    expect((await confirmConsent(s.t.url, 'not-even-shaped-like-one', alice)).status).toBe(404);

    const carol = await s.jwtFor('carol');
    const landed = remember(await consentOverHttp(await loginUrlFor(carol), { login: 'carol' }));
    expect(await confirmConsent(s.t.url, landed, null)).toMatchObject({
      status: 401,
      body: { error: 'UNAUTHENTICATED' },
    });
    expect(await confirmConsent(s.t.url, landed, 'not.a.jwt')).toMatchObject({
      status: 401,
      body: { error: 'UNAUTHENTICATED' },
    });
    clockOffsetMs = TEN_MINUTES_MS + 1_000;
    try {
      expect(await confirmConsent(s.t.url, landed, carol)).toMatchObject({ status: 404, body: { error: 'NOT_FOUND' } });
    } finally {
      clockOffsetMs = 0;
    }
    expect((await connectionOf('carol')).status).toBe('NOT_CONNECTED');
  });

  it('refuses a body without a consent id with 400 naming the field', async () => {
    const res = await fetch(`${s.t.url}/oauth/confirm`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}` },
      body: '{"id":"x"}',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'BAD_USER_INPUT', field: 'consent' });
  });

  /** `opener` opens the user's runtime link in a popup; the user consents there; returns what the opener heard. */
  async function consentInPopup(
    openerOrigin: string,
    jwtSub: string,
  ): Promise<{ landed: URL; messages: { origin: string; data: unknown }[] }> {
    const context = await browser.newContext();
    try {
      const page: Page = await context.newPage();
      await page.goto(`${openerOrigin}/`);
      // Runs in the page: `globalThis` is its window.
      await page.evaluate(() => {
        const w = globalThis as any;
        w.heard = [];
        w.addEventListener('message', (e: any) => w.heard.push({ origin: e.origin, data: e.data }));
      });
      const link = await loginUrlFor(await s.jwtFor(jwtSub));
      const [popup] = await Promise.all([
        context.waitForEvent('page'),
        page.evaluate((url) => void (globalThis as any).open(url, 'consent', 'popup'), link),
      ]);
      await popup.waitForLoadState('load');
      const landed = remember(await driveConsent(popup, { login: jwtSub }));
      // done.js ran (a deferred script runs before `load`); a message it posted is delivered to the
      // opener as a task: a message the opener posts itself after that arrives after it.
      expect(await popup.evaluate(() => (globalThis as any).document.body.dataset.consent)).toBe(consentIdOf(landed));
      await page.evaluate(
        () =>
          new Promise<void>((resolve) => {
            const w = globalThis as any;
            w.addEventListener('message', (e: any) => {
              if (e.data === 'flush') resolve();
            });
            w.postMessage('flush', w.location.origin);
          }),
      );
      const messages = (await page.evaluate(() => (globalThis as any).heard)) as { origin: string; data: unknown }[];
      return { landed, messages: messages.filter((m) => m.data !== 'flush') };
    } finally {
      await context.close();
    }
  }

  it('posts the pending consent to an opener on an allowlisted origin', async () => {
    const { landed, messages } = await consentInPopup(app.origin, 'dave');
    expect(messages).toEqual([
      {
        origin: s.t.url,
        data: { type: 'credential-gateway:consent', consent: consentIdOf(landed), status: 'pending' },
      },
    ]);
    await confirmAsOwner(s.t.url, landed, await s.jwtFor('dave'));
    expect((await connectionOf('dave')).status).toBe('CONNECTED');
  });

  it('posts nothing to an opener on a foreign origin', async () => {
    const { messages } = await consentInPopup(stranger.origin, 'erin');
    expect(messages).toEqual([]);
    expect((await connectionOf('erin')).status).toBe('NOT_CONNECTED');
  });

  it('serves the done page under a strict CSP, without inline script, not framable', async () => {
    const res = await fetch(`${s.t.url}/oauth/done?consent=${'B'.repeat(43)}`);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const html = await res.text();
    expect(html.match(/<script[^>]*>/g)).toEqual(['<script src="done.js" defer>']);
    expect(html).toContain('/oauth/confirm');
    const script = await fetch(`${s.t.url}/oauth/done.js`);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    const text = await script.text();
    expect(text).toContain('postMessage(message, origins[i])');
    expect(text).not.toContain("'*'");
  });

  it('sends the browser to an allowlisted ?redirect= with consent=<id>, dropping a stale error parameter', async () => {
    const link = await loginUrlFor(await s.jwtFor('frank'));
    const refused = await fetch(`${link}?redirect=${encodeURIComponent(`${stranger.origin}/back`)}`, {
      redirect: 'manual',
    });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: 'BAD_USER_INPUT', field: 'redirect' });
    // The refused attempt did not spend the link.
    const back = `${app.origin}/back?error=ACCESS_DENIED&error_description=old&keep=1`;
    const landed = remember(await consentOverHttp(`${link}?redirect=${encodeURIComponent(back)}`, { login: 'frank' }));
    expect(`${landed.origin}${landed.pathname}`).toBe(`${app.origin}/back`);
    expect([...landed.searchParams.keys()].sort()).toEqual(['connectionId', 'consent', 'keep', 'providerId']);
    await confirmAsOwner(s.t.url, landed, await s.jwtFor('frank'));
  });

  it('hands out one runtime login link per connection to a burst of 300 failing queries', async () => {
    const grace = await s.jwtFor('grace');
    const links = new Set<string>();
    for (let batch = 0; batch < 6; batch++) {
      const answers = await Promise.all(Array.from({ length: 50 }, () => s.query(GITHUB_INFO, grace)));
      for (const a of answers) {
        expect(a.body.errors![0].extensions.code).toBe('CONNECTION_NOT_CONNECTED');
        links.add(a.body.errors![0].extensions.loginUrl);
      }
    }
    expect(links.size).toBe(1);
    const db = new Database(join(s.t.dir, 'credentials.db'), { readonly: true });
    try {
      const rows = db.prepare(`SELECT count(*) AS n FROM consent_states WHERE connection_id = 'grace'`).get() as {
        n: number;
      };
      expect(rows.n).toBe(1);
    } finally {
      db.close();
    }
    // Used, it is gone: the next failing query gets a new one.
    const landed = remember(await consentOverHttp([...links][0]!, { login: 'grace' }));
    const next = await loginUrlFor(grace);
    expect(next).not.toBe([...links][0]);
    await confirmAsOwner(s.t.url, landed, grace);
  });

  it("drops the connection's other links, states and pending consents once a consent succeeds", async () => {
    const heidi = await s.jwtFor('heidi');
    // A pending consent, a state at the provider and an admin's link, all outstanding.
    const pending = remember(await consentOverHttp(await loginUrlFor(heidi), { login: 'heidi' }));
    const atProvider = new URL(
      (await fetch(await loginUrlFor(heidi), { redirect: 'manual' })).headers.get('location')!,
    );
    const adminLink = (await s.t.admin(LOGIN_LINK, { c: 'heidi', r: `${s.t.url}/oauth/done` })).body.data
      .createLoginLink.url;
    const winner = remember(await consentOverHttp(await loginUrlFor(heidi), { login: 'heidi' }));
    await confirmAsOwner(s.t.url, winner, heidi);
    expect((await confirmConsent(s.t.url, pending, heidi)).status).toBe(404);
    expect((await fetch(adminLink, { redirect: 'manual' })).status).toBe(404);
    const callback = await fetch(`${s.t.url}/oauth/callback?state=${atProvider.searchParams.get('state')}&code=x`, {
      redirect: 'manual',
    });
    expect(callback.status).toBe(400);
  });

  it('never writes a consent id or a login link token to the log', () => {
    expect(consentIds.length).toBeGreaterThanOrEqual(7);
    const log = logLines.join('\n');
    for (const id of consentIds) expect(log).not.toContain(id);
    expect(log).not.toMatch(/\/oauth\/login\/[A-Za-z0-9_-]{20,}/);
  });
});
