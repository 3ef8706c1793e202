/**
 * The demo app at /demo in real Chromium, offline (loopback only), under its strict CSP: bob's first
 * query asks for consent per provider in a popup, the kit confirms it as bob, and his data shows
 * with tokens for `sub = bob`; the second run opens no popup. A hijack of bob's loginUrl by alice
 * in another browser (no opener) connects nothing. Closing a popup reports "cancelled" and keeps
 * the other subgraph's data on screen. The tests share one demo and run in order: each says
 * which connections the ones before it left connected.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Demo } from '../src/demo/demo.js';
import { chromiumAvailable, completeConsent, launchBrowser } from './support/browser.js';
import { confirmConsent, consentIdOf } from './support/consent.js';
import { startTestDemo } from './support/demo.js';
import { consentInPopup } from './support/popupConsent.js';
import { openPage, type WebPage } from './support/web.js';

const STEP_TIMEOUT_MS = 15_000;
const QUERY = '{ githubTokenInfo { subject } graphTokenInfo { subject } }';

async function sessionJwt(demo: Demo, user: string): Promise<string> {
  const res = await fetch(`${demo.app.url}/demo/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  return ((await res.json()) as { jwt: string }).jwt;
}

async function query(demo: Demo, jwt: string): Promise<{ data?: any; errors?: any[] }> {
  const res = await fetch(`${demo.app.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
    body: JSON.stringify({ query: QUERY }),
  });
  return (await res.json()) as { data?: any; errors?: any[] };
}

const codeOf = (body: { errors?: any[] }, service: string): string | undefined =>
  body.errors?.find((e) => e.extensions?.serviceName === service)?.extensions?.code;

/** Presses the consent panel's button for `provider` and returns the popup it opened. */
async function openPopupFor(view: WebPage, provider: string, screenshot?: string): Promise<Page> {
  const button = view.page.getByRole('button', { name: `Open consent window for ${provider}` });
  await button.waitFor({ timeout: STEP_TIMEOUT_MS });
  if (screenshot !== undefined) await view.screenshot(screenshot);
  const [popup] = await Promise.all([view.page.waitForEvent('popup', { timeout: STEP_TIMEOUT_MS }), button.click()]);
  return popup;
}

const subjectIn = (view: WebPage, subgraph: string) =>
  view.page.locator(`[data-subgraph="${subgraph}"] [data-field="subject"]`);
const steps = (view: WebPage) =>
  view.page.locator('.progress li').evaluateAll((items) => items.map((li) => `${li.getAttribute('data-status')}`));

describe.runIf(process.env['CI'] === 'true' || chromiumAvailable())('the demo app in Chromium', () => {
  let demo: Demo;
  let browser: Browser;
  beforeAll(async () => {
    [demo, browser] = await Promise.all([startTestDemo(), launchBrowser()]);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await demo?.close();
  });

  it("connects nothing when alice, in another browser with no opener, consents through bob's loginUrl; alice's confirm is refused", async () => {
    const bob = await sessionJwt(demo, 'bob');
    const first = await query(demo, bob);
    const loginUrl: string = first.errors!.find((e) => e.extensions.serviceName === 'github').extensions.loginUrl;
    const landed = await completeConsent(browser, loginUrl, { login: 'alice' });
    expect(landed.pathname).toBe('/oauth/done');
    const refused = await confirmConsent(demo.app.url, consentIdOf(landed), await sessionJwt(demo, 'alice'));
    expect(refused.status).toBe(403);
    expect(refused.body['error']).toBe('ACCESS_DENIED');
    expect(codeOf(await query(demo, bob), 'github')).toBe('CONNECTION_NOT_CONNECTED');
  });

  it("runs bob's first query through a consent popup per provider, shows his data with tokens for sub = bob, and opens no popup the second time", async () => {
    const view = await openPage(browser);
    let popups = 0;
    view.page.on('popup', () => {
      popups += 1;
    });
    try {
      await view.page.goto(`${demo.app.url}/demo`);
      await view.page.getByRole('radio', { name: 'bob' }).check();
      await view.page.getByRole('button', { name: 'Run query' }).click();

      const github = await openPopupFor(view, 'Demo GitHub', 'demo-before-consent');
      await consentInPopup(github, 'bob');
      const graph = await openPopupFor(view, 'Demo Microsoft Graph');
      await consentInPopup(graph, 'bob');

      await expect.poll(() => subjectIn(view, 'graph').textContent(), { timeout: STEP_TIMEOUT_MS }).toBe('bob');
      expect(await subjectIn(view, 'github').textContent()).toBe('bob');
      expect(await steps(view)).toEqual(['waiting', 'confirmed', 'waiting', 'confirmed']);
      expect(await view.page.locator('[data-subgraph="github"] .data').textContent()).toContain('login bob');
      expect(await view.page.locator('[data-subgraph="graph"] .data').textContent()).toContain('profile Bob');
      await view.screenshot('demo-after-consent');
      expect(popups).toBe(2);

      await view.page.getByRole('button', { name: 'Run again' }).click();
      await expect
        .poll(() => view.page.getByRole('button', { name: 'Run again' }).isEnabled(), { timeout: STEP_TIMEOUT_MS })
        .toBe(true);
      expect(await subjectIn(view, 'github').textContent()).toBe('bob');
      expect(await subjectIn(view, 'graph').textContent()).toBe('bob');
      expect(await view.page.getByRole('button', { name: /Open consent window/ }).count()).toBe(0);
      expect(popups).toBe(2);
      // The JWT lived in the page's memory only: no storage, no cookie.
      const stored = await view.page.evaluate(() => {
        const g = globalThis as any;
        return { local: g.localStorage.length, session: g.sessionStorage.length, cookie: g.document.cookie };
      });
      expect(stored).toEqual({ local: 0, session: 0, cookie: '' });
      expect(view.problems()).toEqual([]);
      expect(view.blocked).toEqual([]);
    } finally {
      await view.close();
    }
  });

  it("reports 'cancelled' when alice closes the popup, and keeps the other subgraph's data on screen", async () => {
    const view = await openPage(browser);
    try {
      await view.page.goto(`${demo.app.url}/demo`);
      await view.page.getByRole('radio', { name: 'alice' }).check();
      await view.page.getByRole('button', { name: 'Run query' }).click();
      await consentInPopup(await openPopupFor(view, 'Demo GitHub'), 'alice');
      const graph = await openPopupFor(view, 'Demo Microsoft Graph');
      await graph.close();

      await expect.poll(() => subjectIn(view, 'github').textContent(), { timeout: STEP_TIMEOUT_MS }).toBe('alice');
      expect(await steps(view)).toEqual(['waiting', 'confirmed', 'waiting', 'cancelled']);
      await expect
        .poll(() => view.page.locator('[data-subgraph="graph"] .problem').textContent())
        .toContain('CONNECTION_NOT_CONNECTED');
      expect(await view.page.locator('[data-subgraph="github"] .data').textContent()).toContain('login alice');
      await view.screenshot('demo-cancelled');
      expect(view.problems()).toEqual([]);
    } finally {
      await view.close();
    }
  });

  it('can be used from the keyboard alone: named controls, visible focus, the popup opens on Enter', async () => {
    const view = await openPage(browser);
    try {
      await view.page.goto(`${demo.app.url}/demo`);
      const unnamed = await view.page
        .locator('button, input')
        .evaluateAll(
          (els) =>
            els.filter(
              (el) =>
                (el as any).labels?.length === 0 &&
                (el.textContent ?? '').trim() === '' &&
                !el.getAttribute('aria-label'),
            ).length,
        );
      expect(unnamed).toBe(0);
      const focusRing = () =>
        view.page.evaluate(() => {
          const el = (globalThis as any).document.activeElement;
          return `${el.tagName} ${el.textContent.trim()} ${(globalThis as any).getComputedStyle(el).outlineStyle}`;
        });
      // alice's graph connection still waits for consent (the test before cancelled it).
      await view.page.keyboard.press('Tab'); // the user radios, on bob
      await view.page.keyboard.press('ArrowLeft'); // alice
      expect(await view.page.getByRole('radio', { name: 'alice' }).isChecked()).toBe(true);
      await view.page.keyboard.press('Tab'); // Run query
      expect(await focusRing()).toBe('BUTTON Run query solid');
      await view.page.keyboard.press('Enter');
      const open = view.page.getByRole('button', { name: /Open consent window for/ });
      await open.waitFor({ timeout: STEP_TIMEOUT_MS });
      await expect
        .poll(() => view.page.evaluate(() => (globalThis as any).document.activeElement.textContent))
        .toMatch(/^Open consent window for/);
      const [popup] = await Promise.all([
        view.page.waitForEvent('popup', { timeout: STEP_TIMEOUT_MS }),
        view.page.keyboard.press('Enter'),
      ]);
      await popup.close();
      await expect.poll(() => steps(view), { timeout: STEP_TIMEOUT_MS }).toEqual(['waiting', 'cancelled']);
      expect(view.problems()).toEqual([]);
    } finally {
      await view.close();
    }
  });
});
