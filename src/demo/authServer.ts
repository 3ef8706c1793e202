/**
 * A real OpenID Connect provider on loopback: oidc-provider v9 with a small login/consent UI a
 * person or a headless browser can fill in, JWT access tokens for one resource server, rotating
 * refresh tokens, grants kept in memory (forgotten when it stops), request counters and grant
 * revocation. The demo (`npm start`) runs two of them; the tests run them on random ports, with
 * the faults of test/support/authServer.ts hooked in through `hooks`.
 *
 *   const as = await startAuthServer({ port: 4201, displayName: 'Demo GitHub' });
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
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { consentPage, loginPage, readForm, sendHtml } from './authPages.js';
import { escapeHtml } from '../values.js';
import { GrantMemory } from './grantMemory.js';

export type HookedEndpoint = 'token' | 'discovery';

/** Where a wrapper (the tests' fault injection) may step in; the demo sets none. */
export interface AuthServerHooks {
  /** Before the provider answers `endpoint`: true when the hook answered (or dropped) the request itself. */
  readonly intercept?: (endpoint: HookedEndpoint, res: ServerResponse) => boolean;
  /** Each token endpoint answer's JSON body, before it is sent; the hook may change it in place. */
  readonly tokenResponse?: (body: Record<string, unknown>) => void;
}

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
  /** TCP port on 127.0.0.1. Default: the port of `issuer` if given, else any free port. */
  readonly port?: number;
  /** Issuer identifier, an origin such as `http://127.0.0.1:4201`. Default `http://127.0.0.1:<port>`. */
  readonly issuer?: string;
  /** Heading of the login and consent pages, so a person knows where they are. */
  readonly displayName?: string;
  /** `aud` of the JWT access tokens. Default DEFAULT_API_AUDIENCE. */
  readonly audience?: string;
  readonly hooks?: AuthServerHooks;
  /** See GrantMemoryOptions: 0 (default) revokes the grant on any reuse of a rotated-out refresh token. */
  readonly refreshTokenReuseIntervalSeconds?: number;
  /** More clients, as oidc-provider client metadata (tests add one allowed a grant they register in `extend`). */
  readonly extraClients?: readonly Readonly<Record<string, unknown>>[];
  /** Called with the provider before it serves: tests register extra grant types (RFC 8693 token exchange) here. */
  readonly extend?: (provider: import('oidc-provider').Provider, errors: typeof import('oidc-provider').errors) => void;
  /** oidc-provider's `extraTokenClaims`: claims added to JWT access tokens (RFC 8693 `act` of exchanged ones). */
  readonly extraTokenClaims?: import('oidc-provider').Configuration['extraTokenClaims'];
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
  /** Issuer identifier, `http://127.0.0.1:<port>` unless given; OIDC discovery lives under it. */
  readonly issuer: string;
  /** Base URL (the same as the issuer). */
  readonly url: string;
  readonly tokenEndpoint: string;
  readonly displayName: string;
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
  /** The server goes down: it stops listening (connections are refused) and drops open ones; grants and keys stay. */
  suspend(): Promise<void>;
  /** Back on the same port after `suspend()`, with the same grants and keys. */
  resume(): Promise<void>;
  /** Deletes every grant of an account; its refresh tokens then fail with invalid_grant. Returns how many. */
  revokeGrantsOf(accountId: string): number;
  /** Deletes every grant of every account. */
  revokeAll(): number;
  close(): Promise<void>;
}

export const DEFAULT_API_AUDIENCE = 'urn:credential-gateway:test-api';
const API_SCOPES: readonly string[] = Object.freeze(['api:read', 'api:write']);
const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 60;
const DEFAULT_DISPLAY_NAME = 'Authorization server';
const DISCOVERY_PATH = '/.well-known/openid-configuration';
const REFRESH_TOKEN_TTL_SECONDS = 24 * 60 * 60;
const AUTHORIZATION_CODE_TTL_SECONDS = 60;
const ID_TOKEN_TTL_SECONDS = 3600;
const INTERACTION_TTL_SECONDS = 600;

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

/** The issuer as an origin without a trailing slash; a path would move every endpoint. */
function issuerOrigin(issuer: string): URL {
  const url = new URL(issuer);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`issuer must be an http(s) URL, got ${issuer}`);
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '')
    throw new Error(`issuer must be an origin without a path, got ${issuer}`);
  return url;
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startAuthServer(options: AuthServerOptions = {}): Promise<AuthServer> {
  const { Provider, errors } = await loadProvider();
  const givenIssuer = options.issuer === undefined ? null : issuerOrigin(options.issuer);
  const server: Server = createServer();
  const port = await listen(server, options.port ?? (givenIssuer?.port ? Number(givenIssuer.port) : 0));
  const issuer = givenIssuer === null ? `http://127.0.0.1:${port}` : givenIssuer.origin;

  try {
    return serve(server, issuer, options, Provider, errors);
  } catch (e) {
    server.close();
    throw e;
  }
}

interface ProviderParts {
  readonly clients: { readonly web: AuthServerClient; readonly service: AuthServerClient };
  readonly audience: string;
  readonly accessTokenTtlSeconds: number;
  readonly redirectUris: readonly string[];
  readonly store: GrantMemory;
  readonly errors: typeof import('oidc-provider').errors;
  readonly extraClients: readonly Readonly<Record<string, unknown>>[];
  readonly extraTokenClaims: Configuration['extraTokenClaims'] | undefined;
}

/** oidc-provider's configuration: two clients, one resource server with JWT access tokens, rotating refresh tokens. */
function providerConfiguration(parts: ProviderParts): Configuration {
  const { clients, audience, accessTokenTtlSeconds, redirectUris, store, errors, extraClients, extraTokenClaims } =
    parts;
  const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  return {
    adapter: (model: string) => store.adapterFor(model),
    clients: [
      {
        client_id: clients.web.clientId,
        client_secret: clients.web.clientSecret,
        application_type: 'native',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [...redirectUris],
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
      ...(extraClients as import('oidc-provider').ClientMetadata[]),
    ],
    jwks: { keys: [{ ...signingKey, kid: 'signing-key', alg: 'RS256', use: 'sig' }] },
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
        defaultResource: async () => audience,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (resourceIndicator !== audience) throw new errors.InvalidTarget();
          return {
            scope: API_SCOPES.join(' '),
            audience,
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
    ...(extraTokenClaims && { extraTokenClaims }),
    ttl: {
      AccessToken: accessTokenTtlSeconds,
      AuthorizationCode: AUTHORIZATION_CODE_TTL_SECONDS,
      ClientCredentials: accessTokenTtlSeconds,
      Grant: REFRESH_TOKEN_TTL_SECONDS,
      IdToken: ID_TOKEN_TTL_SECONDS,
      Interaction: INTERACTION_TTL_SECONDS,
      RefreshToken: REFRESH_TOKEN_TTL_SECONDS,
      Session: REFRESH_TOKEN_TTL_SECONDS,
    },
    renderError: async (ctx, out) => {
      ctx.type = 'text/plain';
      ctx.body = `${String(out['error'])}: ${String(out['error_description'] ?? '')}`;
    },
  };
}

type OidcProvider = InstanceType<typeof import('oidc-provider').Provider>;

/** Counts token grants by type, and hands each token answer to the `tokenResponse` hook. */
function observeTokenEndpoint(provider: OidcProvider, counts: AuthServerCounts, hooks: AuthServerHooks): void {
  provider.use(async (ctx, next) => {
    await next();
    const oidcCtx = (ctx as KoaContextWithOIDC).oidc;
    if (oidcCtx?.route !== 'token') return;
    const grantType = (oidcCtx.params as { grant_type?: unknown } | undefined)?.grant_type;
    if (grantType === 'authorization_code') counts.authorizationCode += 1;
    if (grantType === 'refresh_token') counts.refresh += 1;
    if (grantType === 'client_credentials') counts.clientCredentials += 1;
  });
  provider.use(async (ctx, next) => {
    await next();
    if (!hooks.tokenResponse || (ctx as KoaContextWithOIDC).oidc?.route !== 'token') return;
    const body: unknown = ctx.body;
    if (typeof body === 'object' && body !== null) hooks.tokenResponse(body as Record<string, unknown>);
  });
}

interface InteractionUi {
  readonly provider: OidcProvider;
  readonly displayName: string;
  readonly accounts: Readonly<Record<string, string>> | undefined;
}

/** The login and consent pages of one interaction, and what their forms post. */
async function interaction(
  ui: InteractionUi,
  req: IncomingMessage,
  res: ServerResponse,
  uid: string,
  action: string | undefined,
): Promise<void> {
  const { provider, displayName, accounts } = ui;
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return sendHtml(res, 400, 'interaction mismatch');
  const { prompt, params, session } = details;
  const login = (error: string | null) => loginPage({ uid, displayName, error, anyPassword: accounts === undefined });

  if (req.method === 'GET' && action === undefined) {
    if (prompt.name === 'login') return sendHtml(res, 200, login(null));
    const scopes = String(params['scope'] ?? '')
      .split(' ')
      .filter(Boolean);
    return sendHtml(res, 200, consentPage(uid, displayName, String(params['client_id']), scopes));
  }
  if (req.method !== 'POST') return sendHtml(res, 405, 'method not allowed');

  if (action === 'login') {
    const form = await readForm(req);
    const accountId = form.get('login') ?? '';
    const expected = accounts === undefined ? undefined : accounts[accountId];
    if (accountId === '' || (accounts !== undefined && expected !== form.get('password'))) {
      return sendHtml(res, 401, login('Invalid login or password'));
    }
    return provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
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

interface RequestParts {
  readonly issuer: string;
  readonly tokenPath: string;
  readonly counts: AuthServerCounts;
  readonly hooks: AuthServerHooks;
  readonly ui: InteractionUi;
}

/** Counts and hooks first, then the interaction pages, then oidc-provider for everything else. */
function requestHandler({
  issuer,
  tokenPath,
  counts,
  hooks,
  ui,
}: RequestParts): (req: IncomingMessage, res: ServerResponse) => void {
  const providerHandler = ui.provider.callback();
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', issuer).pathname;
    if (path === tokenPath) {
      counts.token += 1;
      if (hooks.intercept?.('token', res)) return;
    }
    if (path === DISCOVERY_PATH) {
      counts.discovery += 1;
      if (hooks.intercept?.('discovery', res)) return;
    }
    const match = /^\/interaction\/([^/]+)(?:\/(login|confirm|deny))?$/.exec(path);
    if (match !== null) {
      interaction(ui, req, res, match[1] as string, match[2]).catch((error: unknown) => {
        if (!res.headersSent) sendHtml(res, 400, `interaction failed: ${escapeHtml(String((error as Error).message))}`);
      });
      return;
    }
    void providerHandler(req, res);
  };
}

/** Forgets the grants of one account (or all): their refresh tokens stop working. Returns how many. */
function revokeGrants(store: GrantMemory, accountId?: string): number {
  const ids = store.grantIds(accountId);
  for (const id of ids) store.deleteGrant(id);
  return ids.length;
}

/** Grants in memory, forgotten when the server stops; a reuse interval for rotated refresh tokens if asked. */
function grantMemoryFor(options: AuthServerOptions): GrantMemory {
  return new GrantMemory(
    options.refreshTokenReuseIntervalSeconds === undefined
      ? {}
      : { refreshTokenReuseIntervalSeconds: options.refreshTokenReuseIntervalSeconds },
  );
}

/** The web client (code flow) and the service client (client credentials), with fresh secrets. */
function newClients() {
  return Object.freeze({
    web: Object.freeze({ clientId: 'gateway-web', clientSecret: randomBytes(24).toString('base64url') }),
    service: Object.freeze({ clientId: 'gateway-service', clientSecret: randomBytes(24).toString('base64url') }),
  });
}

function serve(
  server: Server,
  issuer: string,
  options: AuthServerOptions,
  Provider: typeof import('oidc-provider').Provider,
  errors: typeof import('oidc-provider').errors,
): AuthServer {
  const accessTokenTtlSeconds = options.accessTokenTtlSeconds ?? DEFAULT_ACCESS_TOKEN_TTL_SECONDS;
  const displayName = options.displayName ?? DEFAULT_DISPLAY_NAME;
  const audience = options.audience ?? DEFAULT_API_AUDIENCE;
  const store = grantMemoryFor(options);
  const port = (server.address() as AddressInfo).port;
  let suspended = false;
  const counts: AuthServerCounts = { discovery: 0, token: 0, authorizationCode: 0, refresh: 0, clientCredentials: 0 };
  const hooks = options.hooks ?? {};
  const clients = newClients();
  const provider = new Provider(
    issuer,
    providerConfiguration({
      clients,
      audience,
      accessTokenTtlSeconds,
      redirectUris: options.redirectUris ?? DEFAULT_REDIRECT_URIS,
      store,
      errors,
      extraClients: options.extraClients ?? [],
      extraTokenClaims: options.extraTokenClaims,
    }),
  );
  provider.silent = true;
  options.extend?.(provider, errors);
  observeTokenEndpoint(provider, counts, hooks);
  const tokenPath = new URL(`${issuer}/token`).pathname;

  server.on(
    'request',
    requestHandler({ issuer, tokenPath, counts, hooks, ui: { provider, displayName, accounts: options.accounts } }),
  );

  return {
    issuer,
    url: issuer,
    tokenEndpoint: `${issuer}${tokenPath}`,
    displayName,
    clients,
    audience,
    apiScopes: API_SCOPES,
    counts,
    resetCounts() {
      for (const name of Object.keys(counts) as (keyof AuthServerCounts)[]) counts[name] = 0;
    },
    async suspend() {
      if (suspended) return;
      suspended = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
    async resume() {
      if (!suspended) return;
      await listen(server, port);
      suspended = false;
    },
    revokeGrantsOf: (accountId) => revokeGrants(store, accountId),
    revokeAll: () => revokeGrants(store),
    close: () =>
      suspended
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            server.close((error) => (error ? reject(error) : resolve()));
            server.closeAllConnections();
          }),
  };
}
