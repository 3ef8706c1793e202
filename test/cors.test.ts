/**
 * CORS on /graphql, /tokens/... and /oauth/confirm (docs/web.md): allowed
 * origins get a preflight answer and readable responses, other origins get no CORS header at all,
 * and Apollo's CSRF prevention still refuses a simple cross-site request that skips the preflight.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APOLLO_STUDIO_ORIGIN } from '../src/config/schema.js';
import { chromiumAvailable, launchBrowser } from './support/browser.js';
import { startStage, type Stage } from './support/federation.js';
import { startTestApp } from './support/app.js';
import { openPage } from './support/web.js';

const QUERY = JSON.stringify({ query: '{ githubTokenInfo { subject } }' });

/** A blank page on its own loopback port: a different origin from the gateway's. */
async function originServer(): Promise<{ origin: string; close(): Promise<void> }> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>other origin</title><p>another app');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const corsHeaders = (res: Response) => [...res.headers.keys()].filter((k) => k.startsWith('access-control-'));

describe('CORS with configured origins', () => {
  let s: Stage;
  let allowed: Awaited<ReturnType<typeof originServer>>;
  let other: Awaited<ReturnType<typeof originServer>>;
  let jwt: string;
  beforeAll(async () => {
    [allowed, other] = await Promise.all([originServer(), originServer()]);
    s = await startStage({ config: { server: { cors: { origins: [allowed.origin] } } } });
    jwt = await s.jwtFor('alice');
  }, 60_000);
  afterAll(async () => {
    await s?.close();
    await allowed?.close();
    await other?.close();
  });

  const preflight = (path: string, origin: string, method = 'POST') =>
    fetch(`${s.t.url}${path}`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': method,
        'access-control-request-headers': 'authorization, content-type',
      },
    });

  it.each(['/graphql', '/tokens/github-01/alice', '/oauth/confirm'])(
    'answers the preflight of an allowed origin on %s',
    async (path) => {
      const method = path.startsWith('/tokens') ? 'GET' : 'POST';
      const res = await preflight(path, allowed.origin, method);
      if (path === '/oauth/confirm' && res.status === 404)
        return expect.fail('/oauth/confirm is not served yet (owner-confirmed consent)');
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(allowed.origin);
      expect(res.headers.get('access-control-allow-methods')).toContain(method);
      expect(res.headers.get('access-control-allow-headers')).toBe('authorization, content-type');
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
      expect(res.headers.get('vary')).toContain('Origin');
    },
  );

  it.each(['/graphql', '/tokens/github-01/alice'])('sends no CORS header to another origin on %s', async (path) => {
    const pre = await preflight(path, other.origin, path === '/graphql' ? 'POST' : 'GET');
    expect(corsHeaders(pre)).toEqual([]);
    const res = await fetch(`${s.t.url}${path}`, {
      method: path === '/graphql' ? 'POST' : 'GET',
      headers: { origin: other.origin, 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
      ...(path === '/graphql' && { body: QUERY }),
    });
    expect(corsHeaders(res)).toEqual([]);
  });

  it('marks a cross-origin answer readable by the allowed origin only', async () => {
    const res = await fetch(`${s.t.url}/graphql`, {
      method: 'POST',
      headers: { origin: allowed.origin, 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
      body: QUERY,
    });
    expect(res.headers.get('access-control-allow-origin')).toBe(allowed.origin);
    expect(res.headers.get('vary')).toMatch(/Origin/);
  });

  it('does not answer preflights on other endpoints', async () => {
    const res = await preflight('/admin/graphql', allowed.origin);
    expect(corsHeaders(res)).toEqual([]);
  });

  it('still refuses a simple cross-site POST that skips the preflight (CSRF prevention)', async () => {
    for (const origin of [allowed.origin, other.origin]) {
      const res = await fetch(`${s.t.url}/graphql`, {
        method: 'POST',
        headers: { origin, 'content-type': 'text/plain' },
        body: QUERY,
      });
      expect(res.status).toBe(400);
      expect(await res.text()).toMatch(/Cross-Site Request Forgery/);
    }
    const get = await fetch(`${s.t.url}/graphql?query=${encodeURIComponent('{ githubTokenInfo { subject } }')}`, {
      headers: { origin: other.origin },
    });
    expect(get.status).toBe(400);
  });

  describe('in Chromium', { skip: !(process.env['CI'] === 'true' || chromiumAvailable()) }, () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchBrowser();
    }, 30_000);
    afterAll(() => browser?.close());

    /** Runs a fetch of the gateway from a page of `origin`; returns the body, or the error's name. */
    async function fetchFrom(origin: string, init: { contentType: string; authorization?: string }): Promise<string> {
      const view = await openPage(browser);
      try {
        await view.page.goto(origin);
        return await view.page.evaluate(
          async ({ url, body, init }) => {
            try {
              const headers: Record<string, string> = { 'content-type': init.contentType };
              if (init.authorization) headers['authorization'] = init.authorization;
              const res = await fetch(url, { method: 'POST', headers, body });
              return `${res.status} ${await res.text()}`;
            } catch (e) {
              return `refused: ${(e as Error).name}`;
            }
          },
          { url: `${s.t.url}/graphql`, body: QUERY, init },
        );
      } finally {
        await view.close();
      }
    }

    it('lets a page of the allowed origin query the graph with a bearer JWT', async () => {
      const answer = await fetchFrom(allowed.origin, {
        contentType: 'application/json',
        authorization: `Bearer ${jwt}`,
      });
      expect(answer).toMatch(/^200 /);
      expect(answer).toContain('"data"');
    });

    it('gives a page of another origin nothing to read', async () => {
      expect(await fetchFrom(other.origin, { contentType: 'application/json', authorization: `Bearer ${jwt}` })).toBe(
        'refused: TypeError',
      );
    });

    it('refuses a text/plain POST from the allowed origin too: no preflight, so CSRF prevention answers 400', async () => {
      const answer = await fetchFrom(allowed.origin, { contentType: 'text/plain' });
      expect(answer).toMatch(/^400 .*Cross-Site Request Forgery/);
    });
  });
});

describe('CORS defaults', () => {
  it.each([true, false])(
    'with exploration %s, Apollo Studio is allowed only when exploration is on',
    async (exploration) => {
      const t = await startTestApp({ server: { exploration } });
      try {
        const res = await fetch(`${t.url}/tokens/github-01/alice`, {
          method: 'OPTIONS',
          headers: { origin: APOLLO_STUDIO_ORIGIN, 'access-control-request-method': 'GET' },
        });
        expect(res.headers.get('access-control-allow-origin')).toBe(exploration ? APOLLO_STUDIO_ORIGIN : null);
      } finally {
        await t.close();
      }
    },
  );

  it('"*" allows any origin, still without credentials', async () => {
    const t = await startTestApp({ server: { cors: { origins: ['*'] } } });
    try {
      const res = await fetch(`${t.url}/tokens/github-01/alice`, {
        method: 'OPTIONS',
        headers: { origin: 'https://anywhere.example', 'access-control-request-method': 'GET' },
      });
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    } finally {
      await t.close();
    }
  });
});
