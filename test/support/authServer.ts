/**
 * The OpenID Connect provider of the tests is the demo's (src/demo/authServer.ts, one
 * implementation), with the fault injection only tests need hooked in (`setFault`), an OAuth layer
 * config for its clients and a consent driven over plain HTTP.
 *
 *   const as = await startAuthServer({ accessTokenTtlSeconds: 3 });
 *   const config = clientConfigFor(as, 'web');
 *   await as.close();
 */
import type { ServerResponse } from 'node:http';
import type { OAuthClientConfig, OAuthQuirks } from '../../src/oauth/types.js';
import {
  startAuthServer as startDemoAuthServer,
  type AuthServer as DemoAuthServer,
  type AuthServerOptions as DemoAuthServerOptions,
  type HookedEndpoint,
} from '../../src/demo/authServer.js';

export { DEFAULT_REDIRECT_URIS, type AuthServerClient, type AuthServerCounts } from '../../src/demo/authServer.js';

/**
 * `slow`: answered normally, but only after `slowFaultDelayMs` (the grant is processed first, so a
 * refresh token is already rotated while the answer is held back). `noExpiresIn`: token responses
 * leave out `expires_in` (token endpoint only).
 */
export type AuthServerFault = 'none' | 'hang' | 'http500' | 'http429' | 'garbage' | 'reset' | 'slow' | 'noExpiresIn';
export type FaultyEndpoint = HookedEndpoint;

/** Retry-After of the `http429` fault. */
export const FAULT_RETRY_AFTER_SECONDS = 7;

/** How long the `slow` fault holds an answer back unless `slowFaultDelayMs` says otherwise. */
export const DEFAULT_SLOW_FAULT_DELAY_MS = 1000;

export interface AuthServerOptions extends Omit<DemoAuthServerOptions, 'hooks'> {
  /** Delay of the `slow` fault. Default DEFAULT_SLOW_FAULT_DELAY_MS. */
  readonly slowFaultDelayMs?: number;
}

export interface AuthServer extends DemoAuthServer {
  /** Makes the token endpoint (or the discovery document) misbehave until set back to 'none'. */
  setFault(mode: AuthServerFault, endpoint?: FaultyEndpoint): void;
}

/** Answers (or drops) the request as `fault` says; false when the provider should answer it. */
function injectFault(fault: AuthServerFault, res: ServerResponse, slowFaultDelayMs: number): boolean {
  switch (fault) {
    case 'none':
    case 'noExpiresIn':
      return false;
    case 'slow': {
      // Holds back the end of the answer, which the provider writes after it has done its work.
      const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
      res.end = ((...args: unknown[]) => {
        setTimeout(() => end(...args), slowFaultDelayMs);
        return res;
      }) as typeof res.end;
      return false;
    }
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

/** The demo's auth server with fault injection on its token and discovery endpoints. */
export async function startAuthServer(options: AuthServerOptions = {}): Promise<AuthServer> {
  const { slowFaultDelayMs = DEFAULT_SLOW_FAULT_DELAY_MS, ...rest } = options;
  const faults: Record<FaultyEndpoint, AuthServerFault> = { token: 'none', discovery: 'none' };
  const server = await startDemoAuthServer({
    ...rest,
    hooks: {
      intercept: (endpoint, res) => injectFault(faults[endpoint], res, slowFaultDelayMs),
      tokenResponse: (body) => {
        if (faults.token === 'noExpiresIn') delete body['expires_in'];
      },
    },
  });
  return Object.assign(server, {
    setFault(mode: AuthServerFault, endpoint: FaultyEndpoint = 'token'): void {
      faults[endpoint] = mode;
    },
  });
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
    quirks:
      which === 'web' ? OIDC_QUIRKS : Object.freeze({ ...OIDC_QUIRKS, openIdConnect: false, pkce: 'none' as const }),
    ...overrides,
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

/**
 * Input of `createCredentialProvider` for a generic OpenID Connect provider backed by this server's
 * web client (authorization code, refresh tokens, the API scopes).
 */
export function oidcProviderInput(id: string, auth: AuthServer) {
  return {
    id,
    identityProvider: 'oidc',
    grantType: 'AUTHORIZATION_CODE',
    clientId: auth.clients.web.clientId,
    clientSecret: auth.clients.web.clientSecret,
    scopes: ['openid', 'offline_access', ...auth.apiScopes],
    parameters: [{ name: 'issuer', value: auth.issuer }],
  } as const;
}
