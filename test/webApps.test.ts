/**
 * The browser apps built from web/ and served by the gateway itself: strict headers, hashed assets
 * cached for good, nothing served from outside web/dist, no inline code in the build, and the demo
 * page running in real Chromium offline with no console error or CSP violation.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoBanner } from '../src/demo/banner.js';
import type { Demo } from '../src/demo/demo.js';
import { DEMO_SESSION_JWT_SECONDS, DEMO_SESSION_PATH } from '../src/demo/demoWeb.js';
import { createLogger } from '../src/log.js';
import { createRouter } from '../src/server/router.js';
import { WEB_CONTENT_SECURITY_POLICY, WEB_DIST_DIR, webAppRoutes, webAssetRoute } from '../src/server/webApps.js';
import { startTestApp, type TestApp } from './support/app.js';
import { chromiumAvailable, launchBrowser } from './support/browser.js';
import { startTestDemo } from './support/demo.js';
import { tempDir } from './support/tmp.js';
import { openPage } from './support/web.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const STRICT_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

function htmlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? htmlFiles(join(dir, d.name)) : d.name.endsWith('.html') ? [join(dir, d.name)] : [],
  );
}

const assetPaths = (html: string): string[] =>
  [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);

describe('the built web apps', () => {
  it('contain no inline script, inline style or outside URL', () => {
    const files = htmlFiles(WEB_DIST_DIR);
    expect(files.map((f) => f.slice(WEB_DIST_DIR.length))).toContain('demo/index.html');
    for (const file of files) {
      const html = readFileSync(file, 'utf8');
      for (const tag of html.match(/<script\b[^>]*>/g) ?? []) expect(tag).toMatch(/\ssrc="\/assets\//);
      expect(html).not.toMatch(/<script\b[^>]*>[^<\s]/);
      expect(html).not.toMatch(/<style\b|\sstyle=/);
      expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
    }
  });
});

describe('the demo page on the demo gateway', () => {
  let demo: Demo;
  let base: string;
  beforeAll(async () => {
    demo = await startTestDemo();
    base = demo.app.url;
  }, 60_000);
  afterAll(() => demo?.close());

  it('is served with the strict Content-Security-Policy and the security headers', async () => {
    const res = await fetch(`${base}/demo`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(WEB_CONTENT_SECURITY_POLICY.startsWith(STRICT_CSP)).toBe(true);
    expect(res.headers.get('content-security-policy')).toBe(WEB_CONTENT_SECURITY_POLICY);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('cache-control')).toBe('no-cache');
  });

  it('serves its hashed assets with their content type, cached for good', async () => {
    const html = await (await fetch(`${base}/demo`)).text();
    const assets = assetPaths(html);
    expect(assets.some((a) => a.endsWith('.js'))).toBe(true);
    expect(assets.some((a) => a.endsWith('.css'))).toBe(true);
    for (const asset of assets) {
      const res = await fetch(`${base}${asset}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(
        asset.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8',
      );
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  it.each([
    '/assets/..%2Fdemo%2Findex.html',
    '/assets/..%2F..%2F..%2Fpackage.json',
    '/assets/%2e%2e%2f%2e%2e%2fvite.config.ts',
    '/assets/..%5C..%5Cpackage.json',
    '/assets/.vite',
    '/assets/..',
    '/assets/missing-0000.js',
    '/assets/demo.exe',
    '/demo/../package.json',
    '/demo/index.html',
  ])('serves nothing outside the built assets: %s', async (path) => {
    const res = await fetch(`${base}${path}`);
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain('"name": "credential-gateway"');
  });

  it('is the first address in the demo banner', () => {
    const banner = demoBanner(demo);
    expect(banner).toContain(`Demo app (start here)      ${demo.app.publicUrl}/demo`);
    expect(banner.indexOf('/demo ')).toBeLessThan(banner.indexOf('/graphql'));
  });

  it('mints a short-lived JWT for a demo user only', async () => {
    const post = (body: string, type = 'application/json') =>
      fetch(`${base}${DEMO_SESSION_PATH}`, { method: 'POST', headers: { 'content-type': type }, body });
    const res = await post(JSON.stringify({ user: 'bob' }));
    expect(res.status).toBe(200);
    const session = (await res.json()) as { user: string; jwt: string; issuer: string };
    const claims = decodeJwt(session.jwt);
    expect(claims.sub).toBe('bob');
    expect(claims.iss).toBe(demo.callerIssuer);
    expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(DEMO_SESSION_JWT_SECONDS);
    expect((await post(JSON.stringify({ user: 'mallory' }))).status).toBe(400);
    expect((await post('user=bob', 'application/x-www-form-urlencoded')).status).toBe(400);
  });
});

describe('outside the demo', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  }, 60_000);
  afterAll(() => t?.close());

  it('has no demo page and no JWT minting', async () => {
    expect((await fetch(`${t.url}/demo`)).status).toBe(404);
    const res = await fetch(`${t.url}${DEMO_SESSION_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"user":"bob"}',
    });
    expect(res.status).toBe(404);
  });

  it('says how to build an app page that is not built', async () => {
    const dir = await tempDir();
    const server = createServer(
      createRouter(
        [...webAppRoutes('demo', { distDir: dir.path }), webAssetRoute({ distDir: dir.path })],
        createLogger('silent'),
      ),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/demo`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { message: string }).message).toContain('npm run build:web');
    } finally {
      server.close();
      await dir.cleanup();
    }
  });
});

describe.runIf(process.env['CI'] === 'true' || chromiumAvailable())('the demo page in Chromium', () => {
  let demo: Demo;
  let browser: Browser;
  beforeAll(async () => {
    [demo, browser] = await Promise.all([startTestDemo(), launchBrowser()]);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await demo?.close();
  });

  it('loads offline from the gateway alone, with no console error or CSP violation', async () => {
    const view = await openPage(browser);
    try {
      await view.page.goto(`${demo.app.url}/demo`, { waitUntil: 'networkidle' });
      await expect(view.page.getByRole('heading', { level: 1 }).textContent()).resolves.toContain('demo');
      await view.screenshot('demo-loaded');
      expect(view.problems()).toEqual([]);
      expect(view.blocked).toEqual([]);
    } finally {
      await view.close();
    }
  });
});
