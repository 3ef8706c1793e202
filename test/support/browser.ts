/**
 * Real headless Chromium (Debian's /usr/bin/chromium, never a downloaded one) driving a consent:
 *
 *   const browser = await launchBrowser();
 *   const landed = await completeConsent(browser, loginLink, { login: 'alice' });
 *   // landed: the URL the browser ended on after every redirect (e.g. the post-login URL)
 *   await browser.close();
 *
 * It fills in the login and consent pages of test/support/authServer.ts, recognised by
 * `<body data-interaction="login|consent">`. Tests skip when `chromiumAvailable()` is false,
 * except under CI=true, where a missing browser must fail the run.
 */
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

const CHROMIUM_ARGS: readonly string[] = Object.freeze([
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]);

/** Upper bound of one page transition (a form post and its redirects). */
const STEP_TIMEOUT_MS = 15_000;
/** A consent takes login + consent; more steps mean the pages are looping. */
const MAX_INTERACTION_STEPS = 6;

/** True when browser tests can run; under CI=true they must run, so absence is then an error. */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM_PATH)) return true;
  if (process.env['CI'] === 'true') throw new Error(`CI=true but ${CHROMIUM_PATH} is missing`);
  console.warn(`browser tests skipped: ${CHROMIUM_PATH} is not installed`);
  return false;
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS], timeout: 30_000 });
}

export interface ConsentOptions {
  readonly login: string;
  /** Default: the login itself. */
  readonly password?: string;
  /** Sign in, then press Deny instead of Allow on the consent page. */
  readonly deny?: boolean;
}

async function interactionOf(page: Page): Promise<string | null> {
  const body = page.locator('body[data-interaction]');
  return (await body.count()) === 0 ? null : body.getAttribute('data-interaction');
}

/** Clicks and waits for the next document (after any redirects) to finish loading. */
async function submit(page: Page, selector: string): Promise<void> {
  const loaded = page.waitForEvent('load', { timeout: STEP_TIMEOUT_MS });
  await page.click(selector, { timeout: STEP_TIMEOUT_MS });
  await loaded;
}

/**
 * Signs in and allows (or denies) on `page`, which is on its way to the authorization server, and
 * returns the URL it ended on once no interaction page is left (a popup's page too).
 */
export async function driveConsent(page: Page, options: ConsentOptions): Promise<URL> {
  for (let step = 0; step < MAX_INTERACTION_STEPS; step += 1) {
    const interaction = await interactionOf(page);
    if (interaction === 'login') {
      if ((await page.locator('#error').count()) > 0) throw new Error(`login refused for ${options.login}`);
      await page.fill('#login', options.login);
      await page.fill('#password', options.password ?? options.login);
      await submit(page, '#submit');
    } else if (interaction === 'consent') {
      await submit(page, options.deny === true ? '#deny' : '#confirm');
    } else {
      return new URL(page.url());
    }
  }
  throw new Error(`consent did not finish within ${MAX_INTERACTION_STEPS} pages; stuck at ${page.url()}`);
}

/**
 * Opens `startUrl` in a fresh browser context (no cookies from earlier consents), signs in,
 * allows (or denies) and returns the URL the browser ended on once no interaction page is left.
 */
export async function completeConsent(browser: Browser, startUrl: string, options: ConsentOptions): Promise<URL> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(startUrl, { waitUntil: 'load', timeout: STEP_TIMEOUT_MS });
    return await driveConsent(page, options);
  } finally {
    await context.close();
  }
}
