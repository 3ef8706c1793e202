/**
 * Browser pages under test: a fresh Chromium context that can reach loopback only (any other host
 * is aborted and recorded, so a test proves it works offline), that records console errors, page
 * errors and Content-Security-Policy violations, and saves screenshots as test artefacts under
 * test/artifacts/ (ignored by git; the path is printed).
 *
 *   const view = await openPage(browser);
 *   await view.page.goto(`${url}/demo`);
 *   await view.screenshot('demo-before');
 *   expect(view.problems()).toEqual([]);
 *   expect(view.blocked).toEqual([]);
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core';

export const ARTIFACTS_DIR = fileURLToPath(new URL('../artifacts/', import.meta.url));

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

export interface WebPage {
  readonly context: BrowserContext;
  readonly page: Page;
  /** URLs of requests to non-loopback hosts, aborted. */
  readonly blocked: string[];
  /** Console errors, uncaught page errors and CSP violations, from every page of the context. */
  problems(): string[];
  /** Saves a full-page PNG of `page` (default: the first page) as test/artifacts/<name>.png and returns its path. */
  screenshot(name: string, page?: Page): Promise<string>;
  close(): Promise<void>;
}

export function isLoopback(url: string): boolean {
  try {
    const u = new URL(url);
    return (
      u.protocol === 'data:' ||
      u.protocol === 'about:' ||
      u.protocol === 'blob:' ||
      LOOPBACK_HOSTS.has(u.hostname) ||
      LOOPBACK_HOSTS.has(`[${u.hostname}]`)
    );
  } catch {
    return false;
  }
}

function watch(page: Page, problems: string[]): void {
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
}

export async function openPage(browser: Browser, options: BrowserContextOptions = {}): Promise<WebPage> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 }, ...options });
  const blocked: string[] = [];
  const problems: string[] = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isLoopback(url)) return route.continue();
    blocked.push(url);
    return route.abort('internetdisconnected');
  });
  context.on('page', (p) => watch(p, problems));
  const page = await context.newPage();
  return {
    context,
    page,
    blocked,
    problems: () => [...problems],
    async screenshot(name, target = page) {
      mkdirSync(ARTIFACTS_DIR, { recursive: true });
      const path = join(ARTIFACTS_DIR, `${name}.png`);
      await target.screenshot({ path, fullPage: true });
      console.info(`[artefact] ${path}`);
      return path;
    },
    close: () => context.close(),
  };
}
