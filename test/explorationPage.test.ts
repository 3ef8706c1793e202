/**
 * The landing page of both graphs in real Chromium, with every request to an outside host stopped
 * in the browser: Sandbox is started with the settings we intend (this endpoint, not editable, no
 * cookies, no telemetry), and when its CDN cannot be reached the page says why and what to do
 * instead of staying blank. (Introspection on and off: test/exploration.test.ts.)
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OFFLINE_HELP_ID } from '../src/graphql/landingPage.js';
import { chromiumAvailable, launchBrowser } from './support/browser.js';
import { startStage, type Stage } from './support/federation.js';
import { openPage } from './support/web.js';

const SANDBOX_SCRIPT = /^https:\/\/embeddable-sandbox\.cdn\.apollographql\.com\//;
/** Stands in for Apollo's script: records the configuration the page starts Sandbox with. */
const SANDBOX_STUB =
  'window.EmbeddedSandbox = function (config) { document.body.setAttribute("data-sandbox-config", JSON.stringify(config)); };';
/** Apollo's fallback fades in after a second. */
const FALLBACK_WAIT_MS = 5_000;

describe.runIf(process.env['CI'] === 'true' || chromiumAvailable())('the exploration landing page in Chromium', () => {
  let s: Stage;
  let browser: Browser;
  beforeAll(async () => {
    [s, browser] = await Promise.all([startStage({ config: { server: { exploration: true } } }), launchBrowser()]);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it.each(['/graphql', '/admin/graphql'])(
    'starts Sandbox on %s with this endpoint, no cookies and no telemetry',
    async (path) => {
      const view = await openPage(browser);
      try {
        await view.page.route(SANDBOX_SCRIPT, (route) =>
          route.fulfill({ status: 200, contentType: 'text/javascript', body: SANDBOX_STUB }),
        );
        await view.page.goto(`${s.t.url}${path}`);
        const body = view.page.locator('body[data-sandbox-config]');
        await body.waitFor({ state: 'attached', timeout: FALLBACK_WAIT_MS });
        const config = JSON.parse((await body.getAttribute('data-sandbox-config'))!);
        expect(config).toMatchObject({
          target: '#embeddableSandbox',
          initialEndpoint: `${s.t.url}${path}`,
          initialState: { includeCookies: false },
          endpointIsEditable: false,
          runTelemetry: false,
        });
        // Only Apollo's and Google's CDNs were asked for, and nothing got through.
        for (const url of view.blocked)
          expect(new URL(url).hostname).toMatch(/(^|\.)(apollographql\.com|googleapis\.com|gstatic\.com)$/);
      } finally {
        await view.close();
      }
    },
  );

  it.each([
    ['/graphql', 'authorization: Bearer', 'sandbox-offline'],
    ['/admin/graphql', 'x-api-key:', 'sandbox-offline-admin'],
  ])('says on %s, offline, why Sandbox is missing and how to query the gateway instead', async (path, header, shot) => {
    const view = await openPage(browser);
    try {
      await view.page.goto(`${s.t.url}${path}`);
      const help = view.page.locator(`#${OFFLINE_HELP_ID}`);
      await expect
        .poll(() => help.evaluate((el) => (globalThis as any).getComputedStyle(el.parentElement).opacity as string), {
          timeout: FALLBACK_WAIT_MS,
        })
        .toBe('1');
      expect(await view.page.locator('.fallback').textContent()).toContain('Apollo Sandbox cannot be loaded');
      const text = await help.textContent();
      expect(text).toContain('cannot reach');
      expect(text).toContain('curl -X POST');
      expect(text).toContain(header);
      expect(view.blocked.some((url) => SANDBOX_SCRIPT.test(url))).toBe(true);
      await view.screenshot(shot);
    } finally {
      await view.close();
    }
  });
});
