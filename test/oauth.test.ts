import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from '../src/errors.js';
import type { ErrorCode } from '../src/errors.js';
import { OAuthClient } from '../src/oauth/client.js';
import { retryAfterSeconds, safeOAuthErrorCode } from '../src/oauth/errors.js';
import type {
  AuthorizationRequest,
  CodeExchangeParams,
  OAuthClientConfig,
  OAuthQuirks,
  TokenResult,
} from '../src/oauth/types.js';
import {
  clientConfigFor,
  consentOverHttp,
  FAULT_RETRY_AFTER_SECONDS,
  OIDC_QUIRKS,
  startAuthServer,
} from './support/authServer.js';
import type { AuthServer } from './support/authServer.js';
import { followAuthorizationRedirect, startQuirkServer } from './support/quirkServer.js';
import type { QuirkPersonality, QuirkServer } from './support/quirkServer.js';

const TIMEOUT_MS = 3_000;
/** The web client is a loopback client: any port is accepted, and nothing needs to listen here. */
const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const ACCESS_TOKEN_TTL_SECONDS = 5;

const quirksWith = (overrides: Partial<OAuthQuirks>): OAuthQuirks => Object.freeze({ ...OIDC_QUIRKS, ...overrides });

let as: AuthServer;
let quirky: QuirkServer;
let keySequence = 0;
const uniqueKey = (label: string): string => {
  keySequence += 1;
  return `${label}-${keySequence}`;
};

function webConfig(overrides: Partial<OAuthClientConfig> = {}): OAuthClientConfig {
  return clientConfigFor(as, 'web', { cacheKey: uniqueKey('web'), ...overrides });
}

function serviceConfig(overrides: Partial<OAuthClientConfig> = {}): OAuthClientConfig {
  return clientConfigFor(as, 'service', { cacheKey: uniqueKey('service'), ...overrides });
}

function quirkConfig(
  personality: QuirkPersonality,
  quirks: Partial<OAuthQuirks>,
  overrides: Partial<OAuthClientConfig> = {},
): OAuthClientConfig {
  return {
    cacheKey: uniqueKey(personality),
    issuer: null,
    discoveryUrl: null,
    authorizationUrl: quirky.endpoints[personality].authorizationUrl,
    tokenUrl: quirky.endpoints[personality].tokenUrl,
    clientId: quirky.clientId,
    clientSecret: quirky.clientSecret,
    quirks: quirksWith({ openIdConnect: false, rotatesRefreshTokens: false, ...quirks }),
    ...overrides,
  };
}

async function rejection(promise: Promise<unknown>, code: ErrorCode): Promise<GatewayError> {
  const error = await promise.then(
    () => {
      throw new Error(`expected a ${code} GatewayError, the call succeeded`);
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GatewayError);
  expect((error as GatewayError).code).toBe(code);
  return error as GatewayError;
}

/** Code exchange parameters for a callback; verifier and nonce from the request when given. */
function exchange(
  callbackUrl: URL | string,
  expectedState: string,
  request?: Pick<AuthorizationRequest, 'codeVerifier' | 'nonce'>,
): CodeExchangeParams {
  return {
    callbackUrl: typeof callbackUrl === 'string' ? new URL(callbackUrl) : callbackUrl,
    redirectUri: REDIRECT_URI,
    expectedState,
    codeVerifier: request?.codeVerifier ?? null,
    nonce: request?.nonce ?? null,
  };
}

/** Full code flow against oidc-provider, the consent driven over HTTP. */
async function consentAndExchange(client: OAuthClient, cfg: OAuthClientConfig, login: string): Promise<TokenResult> {
  const state = `state-${login}-${keySequence}`;
  const request = await client.authorizationRequest(cfg, { redirectUri: REDIRECT_URI, scopes: ['api:read'], state });
  const callbackUrl = await consentOverHttp(request.url, { login, stopAt: (url) => url.href.startsWith(REDIRECT_URI) });
  return client.exchangeCode(cfg, exchange(callbackUrl, state, request));
}

/** Code flow against the quirk server (its authorization endpoint answers with a redirect). */
async function quirkCodeFlow(
  client: OAuthClient,
  cfg: OAuthClientConfig,
  scopes: readonly string[] = ['read'],
): Promise<TokenResult> {
  const request = await client.authorizationRequest(cfg, { redirectUri: REDIRECT_URI, scopes, state: 'quirk-state' });
  return client.exchangeCode(cfg, exchange(await followAuthorizationRedirect(request.url), 'quirk-state', request));
}

const client = new OAuthClient({ timeoutMs: TIMEOUT_MS, allowInsecureHttp: true, allowPrivateNetworks: true });

beforeAll(async () => {
  [as, quirky] = await Promise.all([
    startAuthServer({ accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS }),
    startQuirkServer(),
  ]);
});

afterAll(async () => {
  await Promise.all([as?.close(), quirky?.close()]);
});

describe('authorization request', () => {
  it('carries state, redirect URI, an S256 challenge of the returned verifier, a nonce and openid', async () => {
    const request = await client.authorizationRequest(webConfig(), {
      redirectUri: REDIRECT_URI,
      scopes: ['api:read', 'offline_access'],
      state: 'the-state',
    });
    const url = new URL(request.url);
    expect(`${url.origin}${url.pathname}`).toBe(`${as.issuer}/auth`);
    const params = Object.fromEntries(url.searchParams);
    expect(params).toMatchObject({
      response_type: 'code',
      client_id: as.clients.web.clientId,
      redirect_uri: REDIRECT_URI,
      state: 'the-state',
      scope: 'openid api:read offline_access',
      code_challenge_method: 'S256',
    });
    expect(request.codeVerifier).toMatch(/^[\w-]{43,128}$/);
    expect(params['code_challenge']).toBe(
      createHash('sha256')
        .update(request.codeVerifier as string)
        .digest('base64url'),
    );
    expect(request.nonce).toMatch(/^[\w-]{32,}$/);
    expect(params['nonce']).toBe(request.nonce);
  });

  it('draws a fresh verifier and nonce for every request', async () => {
    const cfg = webConfig();
    const a = await client.authorizationRequest(cfg, { redirectUri: REDIRECT_URI, scopes: [], state: 's1' });
    const b = await client.authorizationRequest(cfg, { redirectUri: REDIRECT_URI, scopes: [], state: 's2' });
    expect(a.codeVerifier).not.toBe(b.codeVerifier);
    expect(a.nonce).not.toBe(b.nonce);
  });

  it('omits PKCE and nonce for a plain OAuth 2.0 provider and joins scopes with its separator', async () => {
    const cfg = quirkConfig('github', { scopeSeparator: ',', pkce: 'none' });
    const request = await client.authorizationRequest(cfg, {
      redirectUri: REDIRECT_URI,
      scopes: ['repo', 'read:user'],
      state: 's',
    });
    const params = new URL(request.url).searchParams;
    expect(request.codeVerifier).toBeNull();
    expect(request.nonce).toBeNull();
    expect(params.has('code_challenge')).toBe(false);
    expect(params.has('nonce')).toBe(false);
    expect(params.get('scope')).toBe('repo,read:user');
    expect(`${new URL(request.url).origin}${new URL(request.url).pathname}`).toBe(
      quirky.endpoints.github.authorizationUrl,
    );
  });

  it('adds the extra authorization parameters but never lets them replace a protocol parameter', async () => {
    const cfg = quirkConfig('google', {
      extraAuthorizationParams: {
        access_type: 'offline',
        prompt: 'consent',
        state: 'hijacked',
        redirect_uri: 'https://evil.example/',
      },
    });
    const request = await client.authorizationRequest(cfg, {
      redirectUri: REDIRECT_URI,
      scopes: ['drive'],
      state: 'mine',
    });
    await followAuthorizationRedirect(request.url);
    const received = quirky.lastAuthorization('google')?.params;
    expect(received).toMatchObject({
      access_type: 'offline',
      prompt: 'consent',
      state: 'mine',
      redirect_uri: REDIRECT_URI,
    });
  });

  it('treats an empty state or a relative redirect URI as misuse', async () => {
    await expect(
      client.authorizationRequest(webConfig(), { redirectUri: REDIRECT_URI, scopes: [], state: '' }),
    ).rejects.toThrow(TypeError);
    await expect(
      client.authorizationRequest(webConfig(), { redirectUri: '/callback', scopes: [], state: 's' }),
    ).rejects.toThrow(TypeError);
    await expect(client.exchangeCode(webConfig(), exchange(`${REDIRECT_URI}?code=c`, ''))).rejects.toThrow(TypeError);
  });

  it('refuses an http endpoint unless insecure HTTP is allowed, before any request', async () => {
    const strict = new OAuthClient({ timeoutMs: TIMEOUT_MS, allowInsecureHttp: false, allowPrivateNetworks: true });
    const discoveries = as.counts.discovery;
    const error = await rejection(
      strict.authorizationRequest(webConfig(), { redirectUri: REDIRECT_URI, scopes: [], state: 's' }),
      'PROVIDER_UNAVAILABLE',
    );
    expect(error.message).toMatch(/must use https/);
    expect(as.counts.discovery).toBe(discoveries);
  });

  it('fails clearly when a config names no endpoint at all', async () => {
    const error = await rejection(
      client.authorizationRequest(webConfig({ issuer: null }), { redirectUri: REDIRECT_URI, scopes: [], state: 's' }),
      'PROVIDER_UNAVAILABLE',
    );
    expect(error.message).toBe('identity provider configuration is invalid: no discovery URL, issuer or endpoint URL');
  });
});

describe('configuration cache', () => {
  it('discovers once per cache key and again after a change or forgetWhere()', async () => {
    const cfg = webConfig();
    const before = as.counts.discovery;
    await Promise.all(
      [1, 2, 3].map((n) => client.authorizationRequest(cfg, { redirectUri: REDIRECT_URI, scopes: [], state: `s${n}` })),
    );
    expect(as.counts.discovery).toBe(before + 1);

    await client.authorizationRequest(
      { ...cfg, clientSecret: 'rotated' },
      { redirectUri: REDIRECT_URI, scopes: [], state: 's' },
    );
    expect(as.counts.discovery).toBe(before + 2);

    client.forgetWhere((key) => key === `${cfg.cacheKey}/elsewhere`);
    await client.authorizationRequest(
      { ...cfg, clientSecret: 'rotated' },
      { redirectUri: REDIRECT_URI, scopes: [], state: 's' },
    );
    expect(as.counts.discovery).toBe(before + 2);
    client.forgetWhere((key) => key === cfg.cacheKey);
    await client.authorizationRequest(
      { ...cfg, clientSecret: 'rotated' },
      { redirectUri: REDIRECT_URI, scopes: [], state: 's' },
    );
    expect(as.counts.discovery).toBe(before + 3);
  });

  it('refuses discovery metadata whose issuer is not the configured one', async () => {
    const elsewhere = as.issuer.replace('127.0.0.1', 'localhost');
    const error = await rejection(
      client.authorizationRequest(webConfig({ issuer: elsewhere }), {
        redirectUri: REDIRECT_URI,
        scopes: [],
        state: 's',
      }),
      'PROVIDER_UNAVAILABLE',
    );
    expect(error.message).toBe('identity provider metadata does not match its configured issuer');
  });

  it('forgets a failed discovery, so the next call retries', async () => {
    const cfg = webConfig();
    as.setFault('http500', 'discovery');
    try {
      const error = await rejection(
        client.authorizationRequest(cfg, { redirectUri: REDIRECT_URI, scopes: [], state: 's' }),
        'PROVIDER_UNAVAILABLE',
      );
      expect(error.message).toBe('identity provider answered HTTP 500');
    } finally {
      as.setFault('none', 'discovery');
    }
    const request = await client.authorizationRequest(cfg, { redirectUri: REDIRECT_URI, scopes: [], state: 's' });
    expect(request.url).toContain(as.issuer);
  });
});

describe('authorization code exchange (oidc-provider)', () => {
  it('returns validated tokens: JWT access token for the resource, refresh token, ID token claims', async () => {
    const started = Date.now();
    const tokens = await consentAndExchange(client, webConfig(), 'alice');
    expect(tokens.tokenType).toBe('Bearer');
    expect(tokens.refreshToken).toEqual(expect.any(String));
    expect(tokens.idTokenClaims).toMatchObject({ sub: 'alice', iss: as.issuer, aud: as.clients.web.clientId });
    expect(decodeJwt(tokens.accessToken)).toMatchObject({ sub: 'alice', aud: as.audience, scope: 'api:read' });
    expect(tokens.expiresAt).toBeGreaterThanOrEqual(started + (ACCESS_TOKEN_TTL_SECONDS - 1) * 1000);
    expect(tokens.expiresAt).toBeLessThanOrEqual(Date.now() + ACCESS_TOKEN_TTL_SECONDS * 1000);
    expect(tokens.scope).toBe('api:read');
    expect(Object.isFrozen(tokens)).toBe(true);
  });

  it('rejects a callback whose state does not match, without calling the token endpoint', async () => {
    const cfg = webConfig();
    const request = await client.authorizationRequest(cfg, {
      redirectUri: REDIRECT_URI,
      scopes: [],
      state: 'expected',
    });
    const callbackUrl = await consentOverHttp(request.url, {
      login: 'mallory',
      stopAt: (u) => u.href.startsWith(REDIRECT_URI),
    });
    const codeGrants = as.counts.authorizationCode;
    const error = await rejection(client.exchangeCode(cfg, exchange(callbackUrl, 'other', request)), 'BAD_USER_INPUT');
    expect(error.message).toBe('state does not match this consent');
    expect(as.counts.authorizationCode).toBe(codeGrants);
  });

  it('rejects a callback without a code', async () => {
    const error = await rejection(
      client.exchangeCode(webConfig(), exchange(`${REDIRECT_URI}?state=s`, 's')),
      'BAD_USER_INPUT',
    );
    expect(error.message).toBe('authorization code is missing');
  });

  it('rejects a callback that names another issuer (RFC 9207 mix-up defence)', async () => {
    const cfg = webConfig();
    const request = await client.authorizationRequest(cfg, { redirectUri: REDIRECT_URI, scopes: [], state: 'iss' });
    const callbackUrl = await consentOverHttp(request.url, {
      login: 'ivan',
      stopAt: (u) => u.href.startsWith(REDIRECT_URI),
    });
    expect(callbackUrl.searchParams.get('iss')).toBe(as.issuer);
    callbackUrl.searchParams.set('iss', 'https://evil.example');
    const error = await rejection(client.exchangeCode(cfg, exchange(callbackUrl, 'iss', request)), 'BAD_USER_INPUT');
    expect(error.message).toBe('callback comes from a different issuer');
  });

  it('turns a denied consent into ACCESS_DENIED with the OAuth error', async () => {
    const cfg = webConfig();
    const request = await client.authorizationRequest(cfg, {
      redirectUri: REDIRECT_URI,
      scopes: [],
      state: 'deny-state',
    });
    const callbackUrl = await consentOverHttp(request.url, {
      login: 'bob',
      deny: true,
      stopAt: (u) => u.href.startsWith(REDIRECT_URI),
    });
    expect(callbackUrl.searchParams.get('error')).toBe('access_denied');
    const error = await rejection(
      client.exchangeCode(cfg, exchange(callbackUrl, 'deny-state', request)),
      'ACCESS_DENIED',
    );
    expect(error.details).toEqual({ oauthError: 'access_denied' });
  });

  it('turns any other provider error on the callback into PROVIDER_UNAVAILABLE with the OAuth error', async () => {
    const error = await rejection(
      client.exchangeCode(
        webConfig(),
        exchange(`${REDIRECT_URI}?error=invalid_scope&error_description=%3Cscript%3E&state=s`, 's'),
      ),
      'PROVIDER_UNAVAILABLE',
    );
    expect(error.message).toBe('identity provider refused the authorization request: invalid_scope');
    expect(error.details).toEqual({ oauthError: 'invalid_scope' });
  });

  it('refuses a code used twice with REAUTHORIZATION_REQUIRED', async () => {
    const cfg = webConfig();
    const request = await client.authorizationRequest(cfg, { redirectUri: REDIRECT_URI, scopes: [], state: 'twice' });
    const callbackUrl = await consentOverHttp(request.url, {
      login: 'carol',
      stopAt: (u) => u.href.startsWith(REDIRECT_URI),
    });
    const params = exchange(callbackUrl, 'twice', request);
    await client.exchangeCode(cfg, params);
    const error = await rejection(client.exchangeCode(cfg, params), 'REAUTHORIZATION_REQUIRED');
    expect(error.details).toEqual({ oauthError: 'invalid_grant' });
  });

  it('refuses a wrong PKCE verifier', async () => {
    const cfg = webConfig();
    const request = await client.authorizationRequest(cfg, { redirectUri: REDIRECT_URI, scopes: [], state: 'pkce' });
    const callbackUrl = await consentOverHttp(request.url, {
      login: 'dave',
      stopAt: (u) => u.href.startsWith(REDIRECT_URI),
    });
    await rejection(
      client.exchangeCode(cfg, exchange(callbackUrl, 'pkce', { codeVerifier: 'x'.repeat(43), nonce: request.nonce })),
      'REAUTHORIZATION_REQUIRED',
    );
  });

  it('refuses an ID token whose nonce is not the one sent', async () => {
    const cfg = webConfig();
    const request = await client.authorizationRequest(cfg, { redirectUri: REDIRECT_URI, scopes: [], state: 'nonce' });
    const callbackUrl = await consentOverHttp(request.url, {
      login: 'erin',
      stopAt: (u) => u.href.startsWith(REDIRECT_URI),
    });
    const error = await rejection(
      client.exchangeCode(
        cfg,
        exchange(callbackUrl, 'nonce', { codeVerifier: request.codeVerifier, nonce: 'a-different-nonce-0123456789' }),
      ),
      'PROVIDER_UNAVAILABLE',
    );
    expect(error.message).toBe('identity provider issued an ID token that failed validation');
  });
});

describe('refresh (oidc-provider, rotating refresh tokens)', () => {
  it('rotates ten times in a row; every refresh token differs and a used one is rejected', async () => {
    const cfg = webConfig();
    const first = await consentAndExchange(client, cfg, 'frank');
    const seen = new Set<string>([first.refreshToken as string]);
    const refreshesBefore = as.counts.refresh;
    let current = first.refreshToken as string;
    for (let i = 0; i < 10; i += 1) {
      const next = await client.refresh(cfg, current);
      expect(next.refreshToken).toEqual(expect.any(String));
      expect(seen.has(next.refreshToken as string)).toBe(false);
      expect(decodeJwt(next.accessToken)).toMatchObject({ sub: 'frank', aud: as.audience });
      seen.add(next.refreshToken as string);
      current = next.refreshToken as string;
    }
    expect(as.counts.refresh).toBe(refreshesBefore + 10);

    const error = await rejection(client.refresh(cfg, first.refreshToken as string), 'REAUTHORIZATION_REQUIRED');
    expect(error.details).toEqual({ oauthError: 'invalid_grant' });
    expect(error.message).not.toContain(first.refreshToken as string);
    expect(as.counts.refresh).toBe(refreshesBefore + 11); // refused refreshes count too
  });

  it('answers REAUTHORIZATION_REQUIRED once the grant is revoked at the provider', async () => {
    const cfg = webConfig();
    const tokens = await consentAndExchange(client, cfg, 'grace');
    expect(as.revokeGrantsOf('grace')).toBe(1);
    await rejection(client.refresh(cfg, tokens.refreshToken as string), 'REAUTHORIZATION_REQUIRED');
  });

  it('refuses an empty refresh token as misuse', async () => {
    await expect(client.refresh(webConfig(), '')).rejects.toThrow(TypeError);
  });
});

describe('client credentials (oidc-provider)', () => {
  it('obtains a JWT access token for the resource with the requested scopes', async () => {
    const before = as.counts.clientCredentials;
    const tokens = await client.clientCredentials(serviceConfig(), { scopes: ['api:read', 'api:write'] });
    expect(decodeJwt(tokens.accessToken)).toMatchObject({ client_id: as.clients.service.clientId, aud: as.audience });
    expect(tokens.scope).toBe('api:read api:write');
    expect(tokens.refreshToken).toBeNull();
    expect(tokens.idTokenClaims).toBeNull();
    expect(tokens.expiresAt).toBeGreaterThan(Date.now());
    expect(as.counts.clientCredentials).toBe(before + 1);
  });

  it('reports a refused client with its OAuth error code and without the secret', async () => {
    const secret = 'wrong-secret-value-0123456789';
    const error = await rejection(
      client.clientCredentials(serviceConfig({ clientSecret: secret }), { scopes: [] }),
      'PROVIDER_UNAVAILABLE',
    );
    expect(error.message).toBe('identity provider refused the client: invalid_client');
    expect(error.details).toEqual({ oauthError: 'invalid_client' });
    expect(JSON.stringify({ message: error.message, details: error.details })).not.toContain(secret);
  });

  it('sends the extra token parameters; an unknown resource is a rejected token request', async () => {
    const cfg = serviceConfig({ extraTokenParams: { resource: 'urn:some-other-api' } });
    const error = await rejection(client.clientCredentials(cfg, { scopes: [] }), 'PROVIDER_UNAVAILABLE');
    expect(error.message).toBe('identity provider rejected the token request: invalid_target');
  });
});

describe('token endpoint faults', () => {
  afterEach(() => {
    as.setFault('none');
  });

  it('gives up on a hanging provider within the timeout', async () => {
    const impatient = new OAuthClient({ timeoutMs: 500, allowInsecureHttp: true, allowPrivateNetworks: true });
    const cfg = serviceConfig();
    await impatient.clientCredentials(cfg, { scopes: [] }); // discovery done while healthy
    as.setFault('hang');
    const started = performance.now();
    const error = await rejection(impatient.clientCredentials(cfg, { scopes: [] }), 'PROVIDER_UNAVAILABLE');
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(error.message).toBe('identity provider did not answer within 500 ms');
  });

  it('reports HTTP 500', async () => {
    as.setFault('http500');
    const error = await rejection(client.clientCredentials(serviceConfig(), { scopes: [] }), 'PROVIDER_UNAVAILABLE');
    expect(error.message).toBe('identity provider answered HTTP 500');
  });

  it('reports HTTP 429 with the Retry-After seconds', async () => {
    as.setFault('http429');
    const error = await rejection(client.clientCredentials(serviceConfig(), { scopes: [] }), 'PROVIDER_UNAVAILABLE');
    expect(error.message).toBe('identity provider answered HTTP 429');
    expect(error.details).toEqual({ retryAfterSeconds: FAULT_RETRY_AFTER_SECONDS });
  });

  it('reports a body that is not JSON without echoing it', async () => {
    as.setFault('garbage');
    const error = await rejection(client.clientCredentials(serviceConfig(), { scopes: [] }), 'PROVIDER_UNAVAILABLE');
    expect(error.message).toBe('identity provider answered with a body that is not JSON');
    expect(error.message).not.toContain('html');
  });

  it('reports a reset connection', async () => {
    as.setFault('reset');
    const error = await rejection(client.clientCredentials(serviceConfig(), { scopes: [] }), 'PROVIDER_UNAVAILABLE');
    expect(error.message).toBe('identity provider could not be reached (connection reset)');
  });

  it('reports a refused connection', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const cfg = serviceConfig({ issuer: null, tokenUrl: `http://127.0.0.1:${port}/token` });
    const error = await rejection(client.clientCredentials(cfg, { scopes: [] }), 'PROVIDER_UNAVAILABLE');
    expect(error.message).toBe('identity provider could not be reached (connection refused)');
  });

  it('keeps the original failure as the cause', async () => {
    as.setFault('http500');
    const error = await rejection(client.clientCredentials(serviceConfig(), { scopes: [] }), 'PROVIDER_UNAVAILABLE');
    expect(error.cause).toBeInstanceOf(Error);
  });
});

describe('provider quirks (quirk server)', () => {
  it('GitHub: asks for JSON, keeps a token without expires_in as never expiring', async () => {
    const cfg = quirkConfig('github', {
      scopeSeparator: ',',
      pkce: 'none',
      tokensNeverExpire: true,
      tokenRequestAccept: 'application/json',
    });
    const tokens = await quirkCodeFlow(client, cfg, ['repo', 'read:user']);
    expect(quirky.lastTokenRequest('github')?.headers['accept']).toBe('application/json');
    expect(tokens.accessToken).toMatch(/^gho_/);
    expect(tokens.expiresAt).toBeNull();
    expect(tokens.refreshToken).toBeNull();
    expect(tokens.scope).toBe('repo,read:user');
    expect(tokens.tokenType).toBe('Bearer');
  });

  it('GitHub: understands the form-encoded answer it gives when not asked for JSON', async () => {
    const cfg = quirkConfig('github', {
      scopeSeparator: ',',
      pkce: 'none',
      tokensNeverExpire: true,
      tokenRequestAccept: '*/*',
    });
    const tokens = await quirkCodeFlow(client, cfg);
    expect(quirky.lastTokenRequest('github')?.headers['accept']).toBe('*/*');
    expect(tokens.accessToken).toMatch(/^gho_/);
  });

  it('GitHub: an error answered with HTTP 200 is still an error (bad code → REAUTHORIZATION_REQUIRED)', async () => {
    const cfg = quirkConfig('github', {
      pkce: 'none',
      tokensNeverExpire: true,
      tokenRequestAccept: 'application/json',
    });
    const error = await rejection(
      client.exchangeCode(cfg, exchange(`${REDIRECT_URI}?code=forged&state=s`, 's')),
      'REAUTHORIZATION_REQUIRED',
    );
    expect(error.details).toEqual({ oauthError: 'bad_verification_code' });
  });

  it('GitHub: wrong client secret → refused client, in its own words', async () => {
    const cfg = quirkConfig(
      'github',
      { pkce: 'none', tokenRequestAccept: 'application/json' },
      { clientSecret: 'nope-nope-nope' },
    );
    const request = await client.authorizationRequest(cfg, { redirectUri: REDIRECT_URI, scopes: [], state: 's' });
    const error = await rejection(
      client.exchangeCode(cfg, exchange(await followAuthorizationRedirect(request.url), 's')),
      'PROVIDER_UNAVAILABLE',
    );
    expect(error.message).toBe('identity provider refused the client: incorrect_client_credentials');
  });

  it('Slack: takes the user token nested under authed_user, then refreshes at the top level', async () => {
    const cfg = quirkConfig('slack', {
      scopeSeparator: ',',
      pkce: 'none',
      tokenResponsePath: 'authed_user',
      keepResponseFields: ['team.id', 'authed_user.id', 'authed_user.access_token'],
      rotatesRefreshTokens: true,
      clientAuth: 'client_secret_post',
      scopeParameter: 'user_scope',
    });
    const started = Date.now();
    const tokens = await quirkCodeFlow(client, cfg, ['search:read', 'users:read']);
    expect(quirky.lastAuthorization('slack')?.params['user_scope']).toBe('search:read,users:read');
    expect(quirky.lastAuthorization('slack')?.params['scope']).toBeUndefined();
    expect(tokens.accessToken).toMatch(/^xoxp-/);
    expect(tokens.tokenType).toBe('Bearer');
    expect(tokens.refreshToken).toMatch(/^xoxe-1-/);
    expect(tokens.scope).toBe('search:read');
    expect(tokens.expiresAt).toBeGreaterThanOrEqual(started + 43_200_000);
    expect(tokens.extra).toEqual({ 'team.id': 'T0TEAM', 'authed_user.id': 'U0USER' });

    const refreshed = await client.refresh(cfg, tokens.refreshToken as string);
    expect(refreshed.accessToken).toMatch(/^xoxe\.xoxp-/);
    expect(refreshed.refreshToken).toMatch(/^xoxe-1-/);
    expect(refreshed.refreshToken).not.toBe(tokens.refreshToken);

    // Slack says `{ok:false, error:'invalid_refresh_token'}` with HTTP 200.
    const error = await rejection(client.refresh(cfg, tokens.refreshToken as string), 'REAUTHORIZATION_REQUIRED');
    expect(error.details).toEqual({ oauthError: 'invalid_refresh_token' });
  });

  it('Google: the refresh answer carries no refresh token, so the caller keeps the old one', async () => {
    const cfg = quirkConfig('google', {
      pkce: 'S256',
      extraAuthorizationParams: { access_type: 'offline', prompt: 'consent' },
      rotatesRefreshTokens: false,
    });
    const tokens = await quirkCodeFlow(client, cfg, ['drive.readonly']);
    expect(quirky.lastAuthorization('google')?.params).toMatchObject({
      access_type: 'offline',
      prompt: 'consent',
      code_challenge_method: 'S256',
    });
    expect(quirky.lastTokenRequest('google')?.form['code_verifier']).toEqual(expect.any(String));
    expect(tokens.refreshToken).toMatch(/^1\/\//);

    const first = await client.refresh(cfg, tokens.refreshToken as string);
    expect(first.refreshToken).toBeNull();
    expect(first.accessToken).not.toBe(tokens.accessToken);
    const second = await client.refresh(cfg, tokens.refreshToken as string);
    expect(second.accessToken).not.toBe(first.accessToken);
  });

  it('Salesforce: keeps instance_url and id, never a token, and applies the default lifetime', async () => {
    const cfg = quirkConfig('salesforce', {
      defaultTokenLifetimeSeconds: 7_200,
      keepResponseFields: ['instance_url', 'id', 'access_token', 'refresh_token', 'missing_field'],
    });
    const started = Date.now();
    const tokens = await quirkCodeFlow(client, cfg);
    expect(tokens.extra).toEqual({
      instance_url: 'https://quirk.my.salesforce.com',
      id: 'https://login.salesforce.com/id/00DQUIRK/005QUIRK',
    });
    expect(tokens.expiresAt).toBeGreaterThanOrEqual(started + 7_200_000);
    expect(tokens.expiresAt).toBeLessThanOrEqual(Date.now() + 7_200_000);
  });

  it('a provider that says nothing about expiry and has no default gives a null expiry', async () => {
    const tokens = await quirkCodeFlow(client, quirkConfig('salesforce', {}));
    expect(tokens.expiresAt).toBeNull();
  });

  it('accepts an iss callback parameter from a provider configured without an issuer', async () => {
    const cfg = quirkConfig('google', {});
    const request = await client.authorizationRequest(cfg, {
      redirectUri: REDIRECT_URI,
      scopes: [],
      state: 'quirk-state',
    });
    const callbackUrl = await followAuthorizationRedirect(request.url);
    callbackUrl.searchParams.set('iss', 'https://accounts.google.com');
    const tokens = await client.exchangeCode(cfg, exchange(callbackUrl, 'quirk-state', request));
    expect(tokens.accessToken).toMatch(/^ya29\./);
    expect(quirky.lastTokenRequest('google')?.form['redirect_uri']).toBe(REDIRECT_URI);
  });

  it('client_secret_basic sends the secret only in the Authorization header', async () => {
    await quirkCodeFlow(client, quirkConfig('google', { clientAuth: 'client_secret_basic' }));
    const request = quirky.lastTokenRequest('google');
    expect(request?.clientAuth).toBe('client_secret_basic');
    expect(request?.headers['authorization']).toMatch(/^Basic /);
    expect(request?.form['client_secret']).toBeUndefined();
  });

  it('client_secret_post sends the secret only in the body', async () => {
    await quirkCodeFlow(client, quirkConfig('google', { clientAuth: 'client_secret_post' }));
    const request = quirky.lastTokenRequest('google');
    expect(request?.clientAuth).toBe('client_secret_post');
    expect(request?.headers['authorization']).toBeUndefined();
    expect(request?.form).toMatchObject({ client_id: quirky.clientId, client_secret: quirky.clientSecret });
  });

  it('sends the extra token parameters with the code exchange and the refresh', async () => {
    const cfg = quirkConfig('google', {}, { extraTokenParams: { resource: 'https://api.example/' } });
    const tokens = await quirkCodeFlow(client, cfg);
    expect(quirky.lastTokenRequest('google')?.form['resource']).toBe('https://api.example/');
    await client.refresh(cfg, tokens.refreshToken as string);
    expect(quirky.lastTokenRequest('google')?.form).toMatchObject({
      grant_type: 'refresh_token',
      resource: 'https://api.example/',
    });
  });
});

describe('token responses with null fields and array scopes (quirk server)', () => {
  it('normalises scope as an array into a space-separated string instead of refusing the response', async () => {
    const cfg = quirkConfig('sloppy', { pkce: 'S256' });
    const tokens = await quirkCodeFlow(client, cfg, ['read', 'write']);
    expect(tokens.accessToken).toMatch(/^sloppy-/);
    expect(tokens.scope).toBe('read write');
    expect(tokens.refreshToken).toMatch(/^sloppy-rt-/);
  });

  it('treats refresh_token: null on a refresh as no new refresh token instead of refusing the response', async () => {
    const cfg = quirkConfig('sloppy', { pkce: 'S256' });
    const tokens = await quirkCodeFlow(client, cfg, ['read']);
    const refreshed = await client.refresh(cfg, tokens.refreshToken as string);
    expect(quirky.lastTokenRequest('sloppy')?.form).toMatchObject({ grant_type: 'refresh_token' });
    expect(refreshed.accessToken).not.toBe(tokens.accessToken);
    expect(refreshed.refreshToken).toBeNull();
    expect(refreshed.idTokenClaims).toBeNull();
    expect(refreshed.scope).toBe('read write');
  });
});

describe('error helpers', () => {
  it('reads Retry-After as seconds or as an HTTP date, bounded', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(retryAfterSeconds('7', now)).toBe(7);
    expect(retryAfterSeconds('Tue, 01 Jan 2030 00:00:30 GMT', now)).toBe(30);
    expect(retryAfterSeconds('Mon, 31 Dec 2029 00:00:00 GMT', now)).toBe(0);
    expect(retryAfterSeconds('99999999', now)).toBe(86_400);
    expect(retryAfterSeconds('soon', now)).toBeUndefined();
    expect(retryAfterSeconds(null, now)).toBeUndefined();
  });

  it('never lets an odd OAuth error value into a message', () => {
    expect(safeOAuthErrorCode('invalid_grant')).toBe('invalid_grant');
    expect(safeOAuthErrorCode('<script>alert(1)</script>')).toBe('unrecognized_error');
    expect(safeOAuthErrorCode('x'.repeat(65))).toBe('unrecognized_error');
    expect(safeOAuthErrorCode(42)).toBe('unrecognized_error');
  });

  it('rejects a client without a usable timeout', () => {
    expect(() => new OAuthClient({ timeoutMs: 0, allowInsecureHttp: true, allowPrivateNetworks: true })).toThrow(
      TypeError,
    );
    expect(() => new OAuthClient({ timeoutMs: 1.5, allowInsecureHttp: true, allowPrivateNetworks: true })).toThrow(
      TypeError,
    );
  });
});
