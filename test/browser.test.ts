import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from '../src/errors.js';
import { OAuthClient } from '../src/oauth/client.js';
import type { OAuthClientConfig } from '../src/oauth/types.js';
import { clientConfigFor, startAuthServer } from './support/authServer.js';
import type { AuthServer } from './support/authServer.js';
import { chromiumAvailable, completeConsent, launchBrowser } from './support/browser.js';

const ACCOUNTS = Object.freeze({ alice: 'alice-password', bob: 'bob-password' });

describe.skipIf(!chromiumAvailable())('consent in a real browser (Chromium + oidc-provider)', () => {
  let as: AuthServer;
  let browser: Browser;
  let callbackServer: Server;
  let redirectUri: string;
  const callbacksReceived: string[] = [];
  const client = new OAuthClient({ timeoutMs: 3_000, allowInsecureHttp: true, allowPrivateNetworks: true });
  let config: OAuthClientConfig;

  beforeAll(async () => {
    // Stands in for the gateway's callback endpoint: the browser must really arrive here.
    callbackServer = createServer((req, res) => {
      callbacksReceived.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'text/plain' }).end('callback received');
    });
    await new Promise<void>((resolve) => callbackServer.listen(0, '127.0.0.1', () => resolve()));
    redirectUri = `http://127.0.0.1:${(callbackServer.address() as AddressInfo).port}/oauth/callback`;
    [as, browser] = await Promise.all([startAuthServer({ accounts: ACCOUNTS }), launchBrowser()]);
    config = clientConfigFor(as, 'web');
  });

  afterAll(async () => {
    await browser?.close();
    await as?.close();
    await new Promise<void>((resolve) => (callbackServer ? callbackServer.close(() => resolve()) : resolve()));
  });

  it('logs in, consents, lands on the callback and exchanges the code for working tokens', async () => {
    const request = await client.authorizationRequest(config, {
      redirectUri,
      scopes: ['api:read'],
      state: 'browser-state',
    });
    const landed = await completeConsent(browser, request.url, { login: 'alice', password: ACCOUNTS.alice });

    expect(`${landed.origin}${landed.pathname}`).toBe(redirectUri);
    expect(landed.searchParams.get('state')).toBe('browser-state');
    expect(callbacksReceived).toContain(`${landed.pathname}${landed.search}`);

    const tokens = await client.exchangeCode(config, {
      callbackUrl: landed,
      redirectUri,
      expectedState: 'browser-state',
      codeVerifier: request.codeVerifier,
      nonce: request.nonce,
    });
    expect(tokens.idTokenClaims).toMatchObject({ sub: 'alice', nonce: request.nonce });
    expect(decodeJwt(tokens.accessToken)).toMatchObject({ sub: 'alice', aud: as.audience });

    const refreshed = await client.refresh(config, tokens.refreshToken as string);
    expect(refreshed.refreshToken).not.toBe(tokens.refreshToken);
    expect(decodeJwt(refreshed.accessToken)).toMatchObject({ sub: 'alice' });
  });

  it('brings a denied consent back as access_denied, which the exchange reports as ACCESS_DENIED', async () => {
    const request = await client.authorizationRequest(config, {
      redirectUri,
      scopes: ['api:read'],
      state: 'deny-state',
    });
    const landed = await completeConsent(browser, request.url, { login: 'bob', password: ACCOUNTS.bob, deny: true });

    expect(`${landed.origin}${landed.pathname}`).toBe(redirectUri);
    expect(landed.searchParams.get('error')).toBe('access_denied');
    expect(landed.searchParams.has('code')).toBe(false);

    const codeGrants = as.counts.authorizationCode;
    const error = await client
      .exchangeCode(config, {
        callbackUrl: landed,
        redirectUri,
        expectedState: 'deny-state',
        codeVerifier: request.codeVerifier,
        nonce: request.nonce,
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).code).toBe('ACCESS_DENIED');
    expect((error as GatewayError).details).toEqual({ oauthError: 'access_denied' });
    expect(as.counts.authorizationCode).toBe(codeGrants);
  });

  it('does not get past the login page with a wrong password', async () => {
    const request = await client.authorizationRequest(config, { redirectUri, scopes: [], state: 'wrong-password' });
    await expect(
      completeConsent(browser, request.url, { login: 'alice', password: 'not-her-password' }),
    ).rejects.toThrow('login refused for alice');
  });
});
