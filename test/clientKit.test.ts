/**
 * The consent kit (`credential-gateway/client`) in real Chromium, loaded by an app on another
 * origin than the gateway's (CORS and the done page's allowlisted opener origins in play), against
 * the real gateway and authorization servers. Trust: only the gateway's done page, in the popup
 * the kit opened, can hand it a consent id; the JWT goes to the gateway's origin only. Also: the
 * core's size budget.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailable, launchBrowser } from './support/browser.js';
import { startStage, type Stage } from './support/federation.js';
import { bundle } from './support/kitBundle.js';
import { consentInPopup } from './support/popupConsent.js';
import { openPage, type WebPage } from './support/web.js';

/** The page's global inside page.evaluate callbacks (this project's Node typings have no DOM). */
declare const window: any;

/** Budget of the framework-free core (src/client/consent.ts), minified and gzipped. */
const CORE_GZIP_BUDGET_BYTES = 2048;
const STEP_TIMEOUT_MS = 15_000;
const KIT_CORE = fileURLToPath(new URL('../src/client/consent.ts', import.meta.url));
const HARNESS = fileURLToPath(new URL('./browser/kitHarness.ts', import.meta.url));
const QUERY = '{ __typename githubTokenInfo { subject } }';
const FORGED = { type: 'credential-gateway:consent', consent: 'forged-consent-id-0123456789', status: 'pending' };

describe('the consent kit core', () => {
  it(`stays within ${CORE_GZIP_BUDGET_BYTES} bytes minified and gzipped`, async () => {
    const code = await bundle(KIT_CORE, { minify: true, format: 'es' });
    const gzipped = gzipSync(code, { level: 9 }).length;
    console.info(
      `[size] credential-gateway/client core: ${code.length} bytes minified, ${gzipped} bytes gzipped (budget ${CORE_GZIP_BUDGET_BYTES})`,
    );
    expect(gzipped).toBeLessThanOrEqual(CORE_GZIP_BUDGET_BYTES);
  });
});

/** The app: a blank page and the bundled harness, on its own loopback origin. */
async function startAppOrigin(script: string): Promise<{ origin: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/kit.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      return void res.end(script);
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(
      '<!doctype html><html><head><title>app</title><script src="/kit.js"></script></head><body><h1>An app on another origin</h1></body></html>',
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe.runIf(process.env['CI'] === 'true' || chromiumAvailable())(
  'the consent kit in Chromium, from another origin',
  () => {
    let app: Awaited<ReturnType<typeof startAppOrigin>>;
    let s: Stage;
    let browser: Browser;
    beforeAll(async () => {
      app = await startAppOrigin(await bundle(HARNESS, { minify: false, format: 'iife' }));
      [s, browser] = await Promise.all([
        startStage({
          config: { server: { cors: { origins: [app.origin] } }, consent: { allowedRedirectOrigins: [app.origin] } },
        }),
        launchBrowser(),
      ]);
    }, 60_000);
    afterAll(async () => {
      await browser?.close();
      await s?.close();
      await app?.close();
    });

    /** The app page, with `jwt` in page memory, and a count of the kit's confirm calls. */
    async function appPage(jwt: string): Promise<{ view: WebPage; confirms: () => number }> {
      const view = await openPage(browser);
      let confirms = 0;
      view.page.on('request', (r) => {
        if (r.url().endsWith('/oauth/confirm') && r.method() === 'POST') confirms += 1;
      });
      await view.page.goto(app.origin);
      await view.page.evaluate(
        ({ jwt, gateway }) => {
          const w = window as any;
          w.steps = [];
          w.options = {
            gatewayOrigin: gateway,
            getToken: () => jwt,
            onProgress: (p: any) => w.steps.push(p.code ? `${p.status}:${p.code}` : p.status),
          };
        },
        { jwt, gateway: s.t.url },
      );
      return { view, confirms: () => confirms };
    }

    const loginUrlFor = async (jwt: string): Promise<string> =>
      (await s.query(QUERY, jwt)).body.errors![0].extensions.loginUrl;
    const steps = (page: Page): Promise<string[]> => page.evaluate(() => (window as any).steps);

    it('ignores consent messages from other origins and other windows, then confirms the real one as the owner', async () => {
      const jwt = await s.jwtFor('kit-owner');
      const loginUrl = await loginUrlFor(jwt);
      const { view, confirms } = await appPage(jwt);
      try {
        const [popup] = await Promise.all([
          view.page.waitForEvent('popup'),
          view.page.evaluate((url) => {
            (window as any).outcome = (window as any).harness.kit.openConsent(url, (window as any).options);
          }, loginUrl),
        ]);
        await popup.waitForSelector('body[data-interaction="login"]', { timeout: STEP_TIMEOUT_MS });
        // The authorization server's page (not the gateway's origin) forges the done page's message.
        await popup.evaluate((msg) => window.opener.postMessage(msg, '*'), FORGED);
        // So does the app page itself, and another window that is at the gateway's origin but is not the popup.
        await view.page.evaluate((msg) => window.postMessage(msg, '*'), FORGED);
        const [other] = await Promise.all([
          view.page.waitForEvent('popup'),
          view.page.evaluate((url) => void window.open(url), `${s.t.url}/healthz`),
        ]);
        await other.waitForLoadState();
        await other.evaluate((msg) => window.opener.postMessage(msg, '*'), FORGED);
        await other.close();
        await view.page.waitForTimeout(300);
        expect(confirms()).toBe(0);
        expect(await steps(view.page)).toEqual(['waiting']);

        await consentInPopup(popup, 'kit-owner');
        const outcome = await view.page.evaluate(() => (window as any).outcome);
        expect(outcome).toMatchObject({ status: 'confirmed', providerId: 'github-01', connectionId: 'kit-owner' });
        expect(confirms()).toBe(1);
        expect((await s.query(QUERY, jwt)).body.data.githubTokenInfo.subject).toBe('kit-owner');
        expect(view.problems()).toEqual([]);
        expect(view.blocked).toEqual([]);
      } finally {
        await view.close();
      }
    });

    it('fails cleanly on a blocked popup, a login link of another origin, and a timeout, without calling confirm', async () => {
      const jwt = await s.jwtFor('kit-failures');
      const loginUrl = await loginUrlFor(jwt);
      const { view, confirms } = await appPage(jwt);
      try {
        const blocked = await view.page.evaluate(async (url) => {
          const w = window as any;
          const open = window.open;
          window.open = () => null;
          try {
            return await w.harness.kit.openConsent(url, w.options);
          } finally {
            window.open = open;
          }
        }, loginUrl);
        expect(blocked).toMatchObject({ status: 'failed', code: 'POPUP_BLOCKED' });

        const elsewhere = await view.page.evaluate(
          (url) => (window as any).harness.kit.openConsent(url, (window as any).options),
          loginUrl.replace(s.t.url, app.origin),
        );
        expect(elsewhere).toMatchObject({ status: 'failed', code: 'UNTRUSTED_LOGIN_URL' });

        const [popup, timedOut] = await Promise.all([
          view.page.waitForEvent('popup'),
          view.page.evaluate(
            (url) => (window as any).harness.kit.openConsent(url, { ...(window as any).options, timeoutMs: 500 }),
            loginUrl,
          ),
        ]);
        expect(timedOut).toMatchObject({ status: 'failed', code: 'TIMEOUT' });
        await expect.poll(() => popup.isClosed()).toBe(true);
        expect(await steps(view.page)).toEqual([
          'failed:POPUP_BLOCKED',
          'failed:UNTRUSTED_LOGIN_URL',
          'waiting',
          'failed:TIMEOUT',
        ]);
        expect(confirms()).toBe(0);
      } finally {
        await view.close();
      }
    });

    /** Runs `count` watch queries through ApolloClient + the consent link; records every emission. */
    const startQueries = (page: Page, count: number, windowOpen: 'real' | 'blocked') =>
      page.evaluate(
        ({ count, gateway, query, windowOpen }) => {
          const w = window as any;
          const { kit, ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } = w.harness;
          w.opens = 0;
          const open = window.open.bind(window);
          window.open = (...args: unknown[]) => {
            w.opens += 1;
            return windowOpen === 'blocked' ? null : open(...args);
          };
          const bearer = new ApolloLink((operation: any, forward: any) => {
            operation.setContext({ headers: { authorization: `Bearer ${w.options.getToken()}` } });
            return forward(operation);
          });
          const client = new ApolloClient({
            cache: new InMemoryCache(),
            link: ApolloLink.from([
              kit.createConsentLink(w.options),
              bearer,
              new HttpLink({ uri: `${gateway}/graphql` }),
            ]),
          });
          w.emissions = Array.from({ length: count }, () => []);
          w.completed = Array.from({ length: count }, () => false);
          // Distinct operations (Apollo Client itself would merge identical ones into one request).
          for (let i = 0; i < count; i += 1)
            client
              .watchQuery({
                query: gql(query.replace('subject', i === 0 ? 'subject' : `subject n${i}: issuer`)),
                fetchPolicy: 'no-cache',
                errorPolicy: 'all',
              })
              .subscribe((r: any) => {
                if (r.loading) return;
                w.emissions[i].push({
                  subject: r.data?.githubTokenInfo?.subject ?? null,
                  typename: r.data?.__typename ?? null,
                  codes: (r.error?.errors ?? []).map((e: any) => e.extensions.code),
                });
              });
        },
        { count, gateway: s.t.url, query: QUERY, windowOpen },
      );

    it('Apollo Link: delivers the partial result first, joins two operations on one consent (one popup), confirms and retries each once', async () => {
      const jwt = await s.jwtFor('kit-link');
      const { view, confirms } = await appPage(jwt);
      try {
        const [popup] = await Promise.all([
          view.page.waitForEvent('popup', { timeout: STEP_TIMEOUT_MS }),
          startQueries(view.page, 2, 'real'),
        ]);
        const firsts = await view.page.evaluate(() => (window as any).emissions.map((e: any[]) => e[0]));
        for (const first of firsts)
          expect(first).toEqual({ subject: null, typename: 'Query', codes: ['CONNECTION_NOT_CONNECTED'] });
        await consentInPopup(popup, 'kit-link');
        await expect
          .poll(() => view.page.evaluate(() => (window as any).emissions.map((e: any[]) => e.at(-1).subject)), {
            timeout: STEP_TIMEOUT_MS,
          })
          .toEqual(['kit-link', 'kit-link']);
        expect(await view.page.evaluate(() => (window as any).opens)).toBe(1);
        expect(confirms()).toBe(1);
        expect(await steps(view.page)).toEqual(['waiting', 'confirmed']);
        expect(view.problems()).toEqual([]);
      } finally {
        await view.close();
      }
    });

    it('Apollo Link: a blocked popup is reported once, opens nothing more, and leaves the first result standing', async () => {
      const jwt = await s.jwtFor('kit-blocked');
      const { view, confirms } = await appPage(jwt);
      try {
        await startQueries(view.page, 1, 'blocked');
        await expect.poll(() => steps(view.page), { timeout: STEP_TIMEOUT_MS }).toEqual(['failed:POPUP_BLOCKED']);
        await view.page.waitForTimeout(300);
        expect(await view.page.evaluate(() => (window as any).opens)).toBe(1);
        expect(await view.page.evaluate(() => (window as any).emissions[0])).toEqual([
          { subject: null, typename: 'Query', codes: ['CONNECTION_NOT_CONNECTED'] },
        ]);
        expect(confirms()).toBe(0);
      } finally {
        await view.close();
      }
    });
  },
);
