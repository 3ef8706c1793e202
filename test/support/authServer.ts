/**
 * A real OpenID Connect provider for tests: oidc-provider v9 on 127.0.0.1 (random port), with a
 * small login/consent UI that a browser can fill in, refresh-token rotation on, JWT access tokens
 * for one resource server, request counters, grant revocation and token endpoint faults.
 *
 *   const as = await startAuthServer({ accessTokenTtlSeconds: 3 });
 *   // OIDC discovery at as.issuer; as.clients.web for the code flow, as.clients.service for
 *   // client credentials; as.counts.refresh counts refresh_token grants.
 *   await as.close();
 *
 * The web client is a loopback "native" client, so any 127.0.0.1 port is accepted on the
 * registered redirect paths (RFC 8252): register the path, not the port.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Adapter, AdapterPayload, KoaContextWithOIDC } from 'oidc-provider';
import type { OAuthClientConfig, OAuthQuirks } from '../../src/oauth/types.js';

export type AuthServerFault = 'none' | 'hang' | 'http500' | 'http429' | 'garbage' | 'reset';
export type FaultyEndpoint = 'token' | 'discovery';

/** Retry-After of the `http429` fault. */
export const FAULT_RETRY_AFTER_SECONDS = 7;

/** Redirect paths registered for the web client (any loopback port). */
export const DEFAULT_REDIRECT_URIS: readonly string[] = Object.freeze([
  'http://127.0.0.1/callback',
  'http://127.0.0.1/oauth/callback',
]);

export interface AuthServerOptions {
  /** Lifetime of access tokens (code flow, refresh and client credentials). Default 60. */
  readonly accessTokenTtlSeconds?: number;
  /** Loopback redirect URIs of the web client; the port is ignored. Default DEFAULT_REDIRECT_URIS. */
  readonly redirectUris?: readonly string[];
  /** login → password. Without it any login signs in with any password. */
  readonly accounts?: Readonly<Record<string, string>>;
}

export interface AuthServerClient {
  readonly clientId: string;
  readonly clientSecret: string;
}

export interface AuthServerCounts {
  /** Requests for the discovery document, faulted ones included. */
  discovery: number;
  /** Requests that reached the token endpoint, faulted ones included. */
  token: number;
  /** Grants the provider processed (successful or not), by grant type. */
  authorizationCode: number;
  refresh: number;
  clientCredentials: number;
}

export interface AuthServer {
  /** Issuer identifier, `http://127.0.0.1:<port>`; OIDC discovery lives under it. */
  readonly issuer: string;
  /** Base URL (the same as the issuer). */
  readonly url: string;
  readonly tokenEndpoint: string;
  readonly clients: {
    /** authorization_code + refresh_token, client_secret_basic, PKCE accepted. */
    readonly web: AuthServerClient;
    /** client_credentials, client_secret_basic. */
    readonly service: AuthServerClient;
  };
  /** `aud` of the JWT access tokens (the resource server every token is issued for). */
  readonly audience: string;
  /** Scopes of that resource server. */
  readonly apiScopes: readonly string[];
  /** Live counters; reset with `resetCounts()`. */
  readonly counts: AuthServerCounts;
  resetCounts(): void;
  /** Makes the token endpoint (or the discovery document) misbehave until set back to 'none'. */
  setFault(mode: AuthServerFault, endpoint?: FaultyEndpoint): void;
  /** Deletes every grant of an account; its refresh tokens then fail with invalid_grant. Returns how many. */
  revokeGrantsOf(accountId: string): number;
  /** Deletes every grant of every account. */
  revokeAll(): number;
  close(): Promise<void>;
}

/** The quirks of a standards-following OpenID Connect provider, such as this one. */
export const OIDC_QUIRKS: OAuthQuirks = Object.freeze({
  scopeSeparator: ' ',
  pkce: 'S256',
  extraAuthorizationParams: Object.freeze({}),
  tokensNeverExpire: false,
  defaultTokenLifetimeSeconds: null,
  tokenResponsePath: null,
  keepResponseFields: Object.freeze([]),
  rotatesRefreshTokens: true,
  clientAuth: 'client_secret_basic',
  openIdConnect: true,
});

/** An OAuth layer config for one of the server's clients, found by OIDC discovery. */
export function clientConfigFor(
  server: AuthServer,
  which: 'web' | 'service',
  overrides: Partial<OAuthClientConfig> = {},
): OAuthClientConfig {
  return {
    cacheKey: `auth-server:${server.issuer}:${which}`,
    issuer: server.issuer,
    discoveryUrl: null,
    authorizationUrl: null,
    tokenUrl: null,
    clientId: server.clients[which].clientId,
    clientSecret: server.clients[which].clientSecret,
    quirks: which === 'web' ? OIDC_QUIRKS : Object.freeze({ ...OIDC_QUIRKS, openIdConnect: false, pkce: 'none' as const }),
    ...overrides,
  };
}

const API_AUDIENCE = 'urn:credential-gateway:test-api';
const API_SCOPES: readonly string[] = Object.freeze(['api:read', 'api:write']);
const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 60;
const DISCOVERY_PATH = '/.well-known/openid-configuration';
const REFRESH_TOKEN_TTL_SECONDS = 24 * 60 * 60;

/** oidc-provider's storage: one Map per server, so that grants can be listed and revoked. */
class MemoryStore {
  readonly #entries = new Map<string, AdapterPayload>();

  adapterFor(model: string): Adapter {
    const key = (id: string): string => `${model}:${id}`;
    const entries = this.#entries;
    const findBy = (field: 'userCode' | 'uid', value: string): AdapterPayload | undefined => {
      for (const [k, payload] of entries) if (k.startsWith(`${model}:`) && payload[field] === value) return payload;
      return undefined;
    };
    return {
      upsert: async (id, payload) => void entries.set(key(id), { ...payload }),
      find: async (id) => entries.get(key(id)),
      findByUserCode: async (userCode) => findBy('userCode', userCode),
      findByUid: async (uid) => findBy('uid', uid),
      consume: async (id) => {
        const payload = entries.get(key(id));
        if (payload !== undefined) payload.consumed = Math.floor(Date.now() / 1000);
      },
      destroy: async (id) => void entries.delete(key(id)),
      revokeByGrantId: async (grantId) => this.deleteGrant(grantId),
    };
  }

  deleteGrant(grantId: string): void {
    for (const [k, payload] of this.#entries) if (payload.grantId === grantId) this.#entries.delete(k);
    this.#entries.delete(`Grant:${grantId}`);
  }

  /** Grant ids of an account (all accounts when undefined). */
  grantIds(accountId?: string): string[] {
    const ids: string[] = [];
    for (const [k, payload] of this.#entries) {
      if (k.startsWith('Grant:') && (accountId === undefined || payload.accountId === accountId)) ids.push(k.slice(6));
    }
    return ids;
  }
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Stable selectors for test/support/browser.ts: `data-interaction` on <body>, ids on controls. */
function page(interaction: 'login' | 'consent', body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${interaction}</title></head><body data-interaction="${interaction}">${body}</body></html>`;
}

function loginPage(uid: string, message: string | null): string {
  return page(
    'login',
    `${message === null ? '' : `<p id="error">${escapeHtml(message)}</p>`}
<form method="post" action="/interaction/${uid}/login">
  <input id="login" name="login" type="text" autocomplete="off" required>
  <input id="password" name="password" type="password" autocomplete="off">
  <button id="submit" type="submit">Sign in</button>
</form>`,
  );
}

function consentPage(uid: string, clientId: string, scopes: readonly string[]): string {
  return page(
    'consent',
    `<p>${escapeHtml(clientId)} asks for: ${escapeHtml(scopes.join(' ') || '(no scopes)')}</p>
<form method="post" action="/interaction/${uid}/confirm"><button id="confirm" type="submit">Allow</button></form>
<form method="post" action="/interaction/${uid}/deny"><button id="deny" type="submit">Deny</button></form>`,
  );
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

/** The module warns once, on load, that Node 20 is not its supported runtime; that notice is noise here. */
async function loadProvider(): Promise<typeof import('oidc-provider')> {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!String(args[0]).startsWith('oidc-provider')) warn(...args);
  };
  try {
    return await import('oidc-provider');
  } finally {
    console.warn = warn;
  }
}

export async function startAuthServer(options: AuthServerOptions = {}): Promise<AuthServer> {
  const { Provider, errors } = await loadProvider();
  const accessTokenTtlSeconds = options.accessTokenTtlSeconds ?? DEFAULT_ACCESS_TOKEN_TTL_SECONDS;
  const store = new MemoryStore();
  const counts: AuthServerCounts = { discovery: 0, token: 0, authorizationCode: 0, refresh: 0, clientCredentials: 0 };
  const faults: Record<FaultyEndpoint, AuthServerFault> = { token: 'none', discovery: 'none' };
  const clients = Object.freeze({
    web: Object.freeze({ clientId: 'gateway-web', clientSecret: randomBytes(24).toString('base64url') }),
    service: Object.freeze({ clientId: 'gateway-service', clientSecret: randomBytes(24).toString('base64url') }),
  });

  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const provider = new Provider(issuer, {
    adapter: (model: string) => store.adapterFor(model),
    clients: [
      {
        client_id: clients.web.clientId,
        client_secret: clients.web.clientSecret,
        application_type: 'native',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [...(options.redirectUris ?? DEFAULT_REDIRECT_URIS)],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: clients.service.clientId,
        client_secret: clients.service.clientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [{ ...signingKey, kid: 'test-signing-key', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    scopes: ['openid', 'offline_access', ...API_SCOPES],
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => API_AUDIENCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (resourceIndicator !== API_AUDIENCE) throw new errors.InvalidTarget();
          return {
          scope: API_SCOPES.join(' '),
          audience: API_AUDIENCE,
          accessTokenTTL: accessTokenTtlSeconds,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    // Always for the web client, not only with offline_access: the gateway needs the refresh token.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    ttl: {
      AccessToken: accessTokenTtlSeconds,
      AuthorizationCode: 60,
      ClientCredentials: accessTokenTtlSeconds,
      Grant: REFRESH_TOKEN_TTL_SECONDS,
      IdToken: 3600,
      Interaction: 600,
      RefreshToken: REFRESH_TOKEN_TTL_SECONDS,
      Session: REFRESH_TOKEN_TTL_SECONDS,
    },
    renderError: async (ctx, out) => {
      ctx.type = 'text/plain';
      ctx.body = `${String(out['error'])}: ${String(out['error_description'] ?? '')}`;
    },
  });
  provider.silent = true;
  provider.use(async (ctx, next) => {
    await next();
    const oidcCtx = (ctx as KoaContextWithOIDC).oidc;
    if (oidcCtx?.route !== 'token') return;
    const grantType = (oidcCtx.params as { grant_type?: unknown } | undefined)?.grant_type;
    if (grantType === 'authorization_code') counts.authorizationCode += 1;
    if (grantType === 'refresh_token') counts.refresh += 1;
    if (grantType === 'client_credentials') counts.clientCredentials += 1;
  });
  const providerHandler = provider.callback();
  const tokenPath = new URL(`${issuer}/token`).pathname;

  async function interaction(req: IncomingMessage, res: ServerResponse, uid: string, action: string | undefined): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) return sendHtml(res, 400, 'interaction mismatch');
    const { prompt, params, session } = details;

    if (req.method === 'GET' && action === undefined) {
      if (prompt.name === 'login') return sendHtml(res, 200, loginPage(uid, null));
      const scopes = String(params['scope'] ?? '').split(' ').filter(Boolean);
      return sendHtml(res, 200, consentPage(uid, String(params['client_id']), scopes));
    }
    if (req.method !== 'POST') return sendHtml(res, 405, 'method not allowed');

    if (action === 'login') {
      const form = await readForm(req);
      const login = form.get('login') ?? '';
      const expected = options.accounts === undefined ? undefined : options.accounts[login];
      if (login === '' || (options.accounts !== undefined && expected !== form.get('password'))) {
        return sendHtml(res, 401, loginPage(uid, 'Invalid login or password'));
      }
      return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    }
    if (action === 'deny') {
      return provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'End-User denied the request' },
        { mergeWithLastSubmission: false },
      );
    }
    if (action === 'confirm') {
      const grant =
        details.grantId === undefined
          ? new provider.Grant({ accountId: session?.accountId, clientId: String(params['client_id']) })
          : await provider.Grant.find(details.grantId);
      if (grant === undefined) return sendHtml(res, 400, 'grant not found');
      const missing = prompt.details as {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    return sendHtml(res, 404, 'not found');
  }

  function injectFault(fault: AuthServerFault, res: ServerResponse): boolean {
    switch (fault) {
      case 'none':
        return false;
      case 'hang':
        return true; // never answered; close() destroys the socket
      case 'reset':
        res.socket?.destroy();
        return true;
      case 'http500':
        res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal Server Error');
        return true;
      case 'http429':
        res
          .writeHead(429, { 'content-type': 'application/json', 'retry-after': String(FAULT_RETRY_AFTER_SECONDS) })
          .end(JSON.stringify({ error: 'slow_down', error_description: 'too many requests' }));
        return true;
      case 'garbage':
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Service temporarily moved</body></html>');
        return true;
    }
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', issuer).pathname;
    if (path === tokenPath) {
      counts.token += 1;
      if (injectFault(faults.token, res)) return;
    }
    if (path === DISCOVERY_PATH) {
      counts.discovery += 1;
      if (injectFault(faults.discovery, res)) return;
    }
    const match = /^\/interaction\/([^/]+)(?:\/(login|confirm|deny))?$/.exec(path);
    if (match !== null) {
      interaction(req, res, match[1] as string, match[2]).catch((error: unknown) => {
        if (!res.headersSent) sendHtml(res, 400, `interaction failed: ${escapeHtml(String((error as Error).message))}`);
      });
      return;
    }
    void providerHandler(req, res);
  });

  const revoke = (accountId?: string): number => {
    const ids = store.grantIds(accountId);
    for (const id of ids) store.deleteGrant(id);
    return ids.length;
  };

  return {
    issuer,
    url: issuer,
    tokenEndpoint: `${issuer}${tokenPath}`,
    clients,
    audience: API_AUDIENCE,
    apiScopes: API_SCOPES,
    counts,
    resetCounts() {
      counts.discovery = 0;
      counts.token = 0;
      counts.authorizationCode = 0;
      counts.refresh = 0;
      counts.clientCredentials = 0;
    },
    setFault(mode, endpoint = 'token') {
      faults[endpoint] = mode;
    },
    revokeGrantsOf: (accountId) => revoke(accountId),
    revokeAll: () => revoke(),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** Upper bound of redirects and form posts in one consent. */
const MAX_CONSENT_HOPS = 20;

/** A cookie jar per origin, enough for oidc-provider's interaction and session cookies. */
class CookieJar {
  readonly #byOrigin = new Map<string, Map<string, string>>();

  header(url: URL): string {
    return [...(this.#byOrigin.get(url.origin) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  store(url: URL, response: Response): void {
    const cookies = this.#byOrigin.get(url.origin) ?? new Map<string, string>();
    this.#byOrigin.set(url.origin, cookies);
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const expired = attributes.some((a) => /^\s*(?:max-age=0|expires=thu, 01 jan 1970)/i.test(a));
      if (expired) cookies.delete(name);
      else cookies.set(name, pair.slice(eq + 1).trim());
    }
  }
}

/**
 * The same consent as test/support/browser.ts `completeConsent`, over plain HTTP (no Chromium):
 * follows redirects with a cookie jar, posts the login and consent forms of this server, and
 * returns the URL the user agent ends on (after a GET to it, as a browser would, unless
 * `stopAt` says to stop before requesting it: handy when nothing listens at the redirect URI).
 */
export async function consentOverHttp(
  startUrl: string,
  options: {
    readonly login: string;
    readonly password?: string;
    readonly deny?: boolean;
    readonly stopAt?: (url: URL) => boolean;
  },
): Promise<URL> {
  const jar = new CookieJar();
  let url = new URL(startUrl);
  let form: URLSearchParams | undefined;
  for (let hop = 0; hop < MAX_CONSENT_HOPS; hop += 1) {
    if (options.stopAt?.(url) === true) return url;
    const response = await fetch(url, {
      method: form === undefined ? 'GET' : 'POST',
      headers: { cookie: jar.header(url) },
      ...(form === undefined ? {} : { body: form }),
      redirect: 'manual',
    });
    jar.store(url, response);
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location !== null) {
      await response.body?.cancel();
      url = new URL(location, url);
      form = undefined;
      continue;
    }
    const html = await response.text();
    const interaction = /<body data-interaction="(login|consent)">/.exec(html)?.[1];
    const uid = /action="\/interaction\/([^/"]+)\//.exec(html)?.[1];
    if (interaction === undefined || uid === undefined) return url;
    if (interaction === 'login') {
      if (html.includes('id="error"')) throw new Error(`login refused for ${options.login}`);
      url = new URL(`/interaction/${uid}/login`, url);
      form = new URLSearchParams({ login: options.login, password: options.password ?? options.login });
    } else {
      url = new URL(`/interaction/${uid}/${options.deny === true ? 'deny' : 'confirm'}`, url);
      form = new URLSearchParams();
    }
  }
  throw new Error(`consent did not finish within ${MAX_CONSENT_HOPS} hops; stuck at ${url.href}`);
}
