/**
 * The catalog's quirk data, not hand-written quirks, drives the OAuth layer: each provider is
 * resolved from its catalog entry exactly as the gateway does it (sealed client secret included),
 * and only its endpoints are moved onto the quirk server's matching personality.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Envelope } from '../src/crypto/envelope.js';
import { openFileKeyring } from '../src/crypto/fileKeyring.js';
import type { ProviderRecord } from '../src/domain/model.js';
import { GatewayError, toGraphQLExtensions, toHttpBody } from '../src/errors.js';
import type { ErrorCode } from '../src/errors.js';
import { OAuthClient } from '../src/oauth/client.js';
import type { AuthorizationRequest, OAuthClientConfig, TokenResult } from '../src/oauth/types.js';
import { findIdentityProvider } from '../src/providers/catalog.js';
import type { IdentityProviderEntry } from '../src/providers/catalog.js';
import { resolveClient } from '../src/tokens/clientConfig.js';
import type { ResolvedClient } from '../src/tokens/clientConfig.js';
import { tokenSetFrom } from '../src/tokens/tokenSet.js';
import { followAuthorizationRedirect, GOOGLE_ISSUER, startQuirkServer } from './support/quirkServer.js';
import type { QuirkPersonality, QuirkServer } from './support/quirkServer.js';
import { tempDir } from './support/tmp.js';
import type { TempDir } from './support/tmp.js';

const TIMEOUT_MS = 3_000;
/** Nothing listens here: the quirk server's UI-less authorization endpoint redirects and we read the Location. */
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

let quirky: QuirkServer;
let tmp: TempDir;
let envelope: Envelope;
let providerSequence = 0;

const client = new OAuthClient({ timeoutMs: TIMEOUT_MS, allowInsecureHttp: true, allowPrivateNetworks: true });

beforeAll(async () => {
  [quirky, tmp] = await Promise.all([startQuirkServer(), tempDir('cg-catalog-quirks-')]);
  envelope = new Envelope(await openFileKeyring(tmp.file('keyring.json')));
});

afterAll(async () => {
  await Promise.all([quirky?.close(), tmp?.cleanup()]);
});

function catalogEntry(name: QuirkPersonality): IdentityProviderEntry {
  const entry = findIdentityProvider(name);
  if (entry === undefined) throw new Error(`catalog has no entry ${name}`);
  return entry;
}

interface ProviderOptions {
  readonly scopes?: readonly string[];
  readonly clientSecret?: string;
}

/** A stored provider as the registry writes it: the client secret sealed to this record. */
function providerRecord(identityProvider: QuirkPersonality, options: ProviderOptions = {}): ProviderRecord {
  providerSequence += 1;
  const id = `${identityProvider}-${providerSequence}`;
  const now = new Date();
  return Object.freeze({
    id,
    displayName: `${identityProvider} (quirk server)`,
    identityProvider,
    grantType: 'AUTHORIZATION_CODE',
    clientId: quirky.clientId,
    clientSecret: envelope.seal(options.clientSecret ?? quirky.clientSecret, {
      kind: 'provider',
      field: 'clientSecret',
      providerId: id,
    }),
    scopes: Object.freeze([...(options.scopes ?? [])]),
    parameters: Object.freeze({}),
    version: 1,
    createdAt: now,
    updatedAt: now,
  });
}

interface QuirkClient {
  /** What the catalog produced, public endpoints included. */
  readonly resolved: ResolvedClient;
  /** The same, with only the endpoints moved onto the quirk server (no discovery: nothing public is reachable). */
  readonly config: OAuthClientConfig;
}

function quirkClient(personality: QuirkPersonality, options: ProviderOptions = {}): QuirkClient {
  const resolved = resolveClient(envelope, providerRecord(personality, options), { allowInsecureHttp: true });
  const config: OAuthClientConfig = {
    ...resolved.config,
    authorizationUrl: quirky.endpoints[personality].authorizationUrl,
    tokenUrl: quirky.endpoints[personality].tokenUrl,
    discoveryUrl: null,
  };
  return { resolved, config };
}

interface CodeFlow {
  readonly request: AuthorizationRequest;
  readonly authorization: Readonly<Record<string, string>>;
  readonly tokens: TokenResult;
}

/** Authorization request with the catalog's scopes → provider redirect → code exchange. */
async function codeFlow({ resolved, config }: QuirkClient, personality: QuirkPersonality): Promise<CodeFlow> {
  const state = randomBytes(16).toString('base64url');
  const request = await client.authorizationRequest(config, {
    redirectUri: REDIRECT_URI,
    scopes: resolved.scopes,
    state,
  });
  const callbackUrl = await followAuthorizationRedirect(request.url);
  const authorization = quirky.lastAuthorization(personality)?.params ?? {};
  const tokens = await client.exchangeCode(config, {
    callbackUrl,
    redirectUri: REDIRECT_URI,
    expectedState: state,
    codeVerifier: request.codeVerifier,
    nonce: request.nonce,
  });
  return { request, authorization, tokens };
}

/** The GatewayError a call fails with, its code checked (a call that succeeds fails the test). */
async function rejection(promise: Promise<unknown>, code: ErrorCode): Promise<GatewayError> {
  const outcome: unknown = await promise.then(
    (value: unknown) => ({ resolvedWith: value }),
    (e: unknown) => e,
  );
  expect(outcome).toBeInstanceOf(GatewayError);
  expect(outcome).toHaveProperty('code', code);
  return outcome as GatewayError;
}

/** Every text a caller or a log line could see: public message, details, wire forms, and the messages of the causes. */
function visibleTexts(error: GatewayError): string[] {
  const texts = [
    error.message,
    JSON.stringify(error.details),
    JSON.stringify(toHttpBody(error)),
    JSON.stringify(toGraphQLExtensions(error)),
  ];
  let cause: unknown = error.cause;
  for (let depth = 0; depth < 8 && cause instanceof Error; depth += 1) {
    texts.push(cause.message);
    cause = cause.cause;
  }
  return texts;
}

function expectNoSecretsIn(error: GatewayError, secrets: readonly (string | null)[]): void {
  const texts = visibleTexts(error);
  for (const secret of secrets) {
    if (secret === null || secret === '') continue;
    for (const text of texts) expect(text).not.toContain(secret);
  }
}

describe('catalog endpoints are resolved before the quirk server takes their place', () => {
  it.each([
    ['github', 'https://github.com/login/oauth/authorize', 'https://github.com/login/oauth/access_token', null],
    ['slack', 'https://slack.com/oauth/v2/authorize', 'https://slack.com/api/oauth.v2.access', null],
    [
      'google',
      'https://accounts.google.com/o/oauth2/v2/auth',
      'https://oauth2.googleapis.com/token',
      'https://accounts.google.com/.well-known/openid-configuration',
    ],
    [
      'salesforce',
      'https://login.salesforce.com/services/oauth2/authorize',
      'https://login.salesforce.com/services/oauth2/token',
      null,
    ],
  ] as const)(
    '%s: the catalog template yields the public endpoints and opens the sealed secret',
    (personality, authorizationUrl, tokenUrl, discoveryUrl) => {
      const { resolved, config } = quirkClient(personality);
      expect(resolved.config).toMatchObject({
        authorizationUrl,
        tokenUrl,
        discoveryUrl,
        clientId: quirky.clientId,
        clientSecret: quirky.clientSecret,
      });
      expect(resolved.config.quirks).toEqual({
        ...catalogEntry(personality).quirks,
        extraAuthorizationParams: expect.any(Object),
      });
      // Only the endpoints differ: quirks, issuer, client and extra parameters are the catalog's.
      expect({ ...config, authorizationUrl, tokenUrl, discoveryUrl }).toEqual(resolved.config);
    },
  );
});

describe('GitHub from the catalog', () => {
  it('asks for JSON, authenticates as the catalog says and keeps the token as never expiring', async () => {
    const entry = catalogEntry('github');
    const github = quirkClient('github');
    const { request, authorization, tokens } = await codeFlow(github, 'github');

    // Default scopes of the entry, with the entry's separator; PKCE because the entry says S256.
    expect(authorization['scope']).toBe('read:user user:email');
    expect(authorization['code_challenge_method']).toBe('S256');
    expect(request.nonce).toBeNull();

    const sent = quirky.lastTokenRequest('github');
    expect(sent?.headers['accept']).toBe('application/json');
    expect(sent?.clientAuth).toBe(entry.quirks.clientAuth);
    expect(sent?.clientAuth).toBe('client_secret_post');
    expect(sent?.headers['authorization']).toBeUndefined();
    expect(sent?.form).toMatchObject({
      client_id: quirky.clientId,
      client_secret: quirky.clientSecret,
      code_verifier: request.codeVerifier,
    });

    expect(tokens.accessToken).toMatch(/^gho_/);
    expect(tokens.expiresAt).toBeNull();
    expect(tokens.refreshToken).toBeNull();
    expect(tokens.tokenType).toBe('Bearer');
    expect(tokens.scope).toBe('repo,read:user');
    expect(tokens.extra).toEqual({});
  });

  it('reports a code answered with an HTTP 200 error as a lost grant, without the code', async () => {
    const { config } = quirkClient('github');
    const forged = `gho-forged-${randomBytes(8).toString('hex')}`;
    const error = await rejection(
      client.exchangeCode(config, {
        callbackUrl: new URL(`${REDIRECT_URI}?code=${forged}&state=s`),
        redirectUri: REDIRECT_URI,
        expectedState: 's',
        codeVerifier: null,
        nonce: null,
      }),
      'REAUTHORIZATION_REQUIRED',
    );
    expect(error.details).toEqual({ oauthError: 'bad_verification_code' });
    expectNoSecretsIn(error, [forged, quirky.clientSecret]);
  });
});

describe('Slack from the catalog', () => {
  it('asks for user scopes comma-joined as user_scope and returns the user token under authed_user', async () => {
    const slack = quirkClient('slack', { scopes: ['search:read', 'users:read'] });
    const started = Date.now();
    const { request, authorization, tokens } = await codeFlow(slack, 'slack');

    expect(authorization['user_scope']).toBe('search:read,users:read');
    expect(authorization['scope']).toBeUndefined();
    expect(authorization['code_challenge']).toBeUndefined();
    expect(request.codeVerifier).toBeNull();
    expect(quirky.lastTokenRequest('slack')?.clientAuth).toBe(catalogEntry('slack').quirks.clientAuth);

    expect(tokens.accessToken).toMatch(/^xoxp-/);
    expect(tokens.refreshToken).toMatch(/^xoxe-1-/);
    expect(tokens.scope).toBe('search:read');
    expect(tokens.tokenType).toBe('Bearer');
    expect(tokens.extra).toEqual({ 'team.id': 'T0TEAM', 'authed_user.id': 'U0USER' });
    expect(tokens.expiresAt).toBeGreaterThanOrEqual(started + 43_200_000);
    expect(tokens.expiresAt).toBeLessThanOrEqual(Date.now() + 43_200_000);
  });

  it('refreshes at the top level with a rotated refresh token; the used one is refused without being echoed', async () => {
    const slack = quirkClient('slack');
    const { authorization, tokens } = await codeFlow(slack, 'slack');
    expect(authorization['user_scope']).toBe('users:read');
    const first = tokens.refreshToken as string;

    const refreshed = await client.refresh(slack.config, first);
    expect(refreshed.accessToken).toMatch(/^xoxe\.xoxp-/);
    expect(refreshed.refreshToken).toMatch(/^xoxe-1-/);
    expect(refreshed.refreshToken).not.toBe(first);
    // Rotation: the new refresh token replaces the old one.
    expect(tokenSetFrom(refreshed, first).refreshToken).toBe(refreshed.refreshToken);

    const error = await rejection(client.refresh(slack.config, first), 'REAUTHORIZATION_REQUIRED');
    expect(error.details).toEqual({ oauthError: 'invalid_refresh_token' });
    expectNoSecretsIn(error, [
      first,
      refreshed.refreshToken,
      tokens.accessToken,
      refreshed.accessToken,
      quirky.clientSecret,
    ]);
  });
});

describe('Google from the catalog', () => {
  it('asks for offline access with forced consent and validates the ID token against the catalog issuer', async () => {
    const google = quirkClient('google');
    expect(google.config.issuer).toBe(GOOGLE_ISSUER);
    const { request, authorization, tokens } = await codeFlow(google, 'google');

    expect(authorization).toMatchObject({
      access_type: 'offline',
      prompt: 'consent',
      include_granted_scopes: 'false',
      scope: 'openid profile email',
      code_challenge_method: 'S256',
      nonce: request.nonce,
    });
    expect(tokens.accessToken).toMatch(/^ya29\./);
    expect(tokens.refreshToken).toMatch(/^1\/\//);
    expect(tokens.idTokenClaims).toMatchObject({ iss: GOOGLE_ISSUER, aud: quirky.clientId, nonce: request.nonce });
  });

  it('a refresh without a new refresh token yields null, and the stored set keeps the old one', async () => {
    const google = quirkClient('google');
    const { tokens } = await codeFlow(google, 'google');
    const previous = tokens.refreshToken as string;

    const started = Date.now();
    const refreshed = await client.refresh(google.config, previous);
    expect(quirky.lastTokenRequest('google')?.form).toMatchObject({
      grant_type: 'refresh_token',
      refresh_token: previous,
    });
    expect(refreshed.refreshToken).toBeNull();
    expect(refreshed.accessToken).not.toBe(tokens.accessToken);
    expect(refreshed.expiresAt).toBeGreaterThanOrEqual(started + 3_599_000);

    const stored = tokenSetFrom(refreshed, previous);
    expect(stored.refreshToken).toBe(previous);
    expect(stored.accessToken).toBe(refreshed.accessToken);
  });

  it('refuses an unknown refresh token with REAUTHORIZATION_REQUIRED, without echoing it', async () => {
    const google = quirkClient('google');
    const unknown = `1//${randomBytes(12).toString('hex')}`;
    const error = await rejection(client.refresh(google.config, unknown), 'REAUTHORIZATION_REQUIRED');
    expect(error.details).toEqual({ oauthError: 'invalid_grant' });
    expectNoSecretsIn(error, [unknown, quirky.clientSecret]);
  });
});

describe('Salesforce from the catalog', () => {
  it('keeps instance_url and id with the tokens and assumes the catalog lifetime', async () => {
    const entry = catalogEntry('salesforce');
    const lifetimeMs = (entry.quirks.defaultTokenLifetimeSeconds as number) * 1000;
    const salesforce = quirkClient('salesforce');
    const started = Date.now();
    const { authorization, tokens } = await codeFlow(salesforce, 'salesforce');

    expect(authorization['scope']).toBe('api refresh_token');
    expect(tokens.accessToken).toMatch(/^00D!/);
    expect(tokens.extra).toEqual({
      instance_url: 'https://quirk.my.salesforce.com',
      id: 'https://login.salesforce.com/id/00DQUIRK/005QUIRK',
    });
    expect(tokens.expiresAt).toBeGreaterThanOrEqual(started + lifetimeMs);
    expect(tokens.expiresAt).toBeLessThanOrEqual(Date.now() + lifetimeMs);
  });

  it('keeps instance_url and the old refresh token across a refresh', async () => {
    const salesforce = quirkClient('salesforce');
    const { tokens } = await codeFlow(salesforce, 'salesforce');
    const refreshed = await client.refresh(salesforce.config, tokens.refreshToken as string);
    expect(refreshed.refreshToken).toBeNull();
    expect(refreshed.extra['instance_url']).toBe('https://quirk.my.salesforce.com');
    expect(tokenSetFrom(refreshed, tokens.refreshToken).refreshToken).toBe(tokens.refreshToken);
  });
});

describe('a wrong client secret', () => {
  it.each([
    ['github', 'incorrect_client_credentials'],
    ['slack', 'invalid_client_id'],
    ['google', 'invalid_client'],
    ['salesforce', 'invalid_client'],
  ] as const)(
    '%s: refused client (%s), and neither secret nor code appears in the error',
    async (personality, oauthError) => {
      const wrongSecret = `wrong-${randomBytes(18).toString('base64url')}`;
      const wrong = quirkClient(personality, { clientSecret: wrongSecret });
      expect(wrong.config.clientSecret).toBe(wrongSecret);

      const state = 'wrong-secret-state';
      const request = await client.authorizationRequest(wrong.config, {
        redirectUri: REDIRECT_URI,
        scopes: wrong.resolved.scopes,
        state,
      });
      const callbackUrl = await followAuthorizationRedirect(request.url);
      const error = await rejection(
        client.exchangeCode(wrong.config, {
          callbackUrl,
          redirectUri: REDIRECT_URI,
          expectedState: state,
          codeVerifier: request.codeVerifier,
          nonce: request.nonce,
        }),
        'PROVIDER_UNAVAILABLE',
      );
      expect(error.message).toBe(`identity provider refused the client: ${oauthError}`);
      expect(error.details).toEqual({ oauthError });
      // The secret did reach the provider, the way the catalog says, so its absence below means something.
      const sent = quirky.lastTokenRequest(personality);
      expect(sent?.clientAuth).toBe(catalogEntry(personality).quirks.clientAuth);
      expect(sent?.form['client_secret']).toBe(wrongSecret);
      expectNoSecretsIn(error, [
        wrongSecret,
        quirky.clientSecret,
        callbackUrl.searchParams.get('code'),
        request.codeVerifier,
      ]);
    },
  );
});

describe('misuse', () => {
  it('a client secret sealed for another provider does not open, and nothing reaches the provider', async () => {
    const other = providerRecord('github');
    const stolen: ProviderRecord = { ...providerRecord('github'), clientSecret: other.clientSecret };
    const requestsBefore = quirky.tokenRequests.length;
    const error = await rejection(
      Promise.resolve().then(() => resolveClient(envelope, stolen, { allowInsecureHttp: true })),
      'INTERNAL_SERVER_ERROR',
    );
    expect(error.message).toBe('stored secret cannot be decrypted');
    expectNoSecretsIn(error, [quirky.clientSecret]);
    expect(quirky.tokenRequests.length).toBe(requestsBefore);
  });

  it('a Slack code replayed after its exchange is a lost grant, not a second token', async () => {
    const slack = quirkClient('slack');
    const state = 'replay-state';
    const request = await client.authorizationRequest(slack.config, {
      redirectUri: REDIRECT_URI,
      scopes: slack.resolved.scopes,
      state,
    });
    const callbackUrl = await followAuthorizationRedirect(request.url);
    const params = {
      callbackUrl,
      redirectUri: REDIRECT_URI,
      expectedState: state,
      codeVerifier: request.codeVerifier,
      nonce: request.nonce,
    };
    const tokens = await client.exchangeCode(slack.config, params);
    const error = await rejection(client.exchangeCode(slack.config, params), 'REAUTHORIZATION_REQUIRED');
    expect(error.details).toEqual({ oauthError: 'invalid_code' });
    expectNoSecretsIn(error, [
      callbackUrl.searchParams.get('code'),
      tokens.accessToken,
      tokens.refreshToken,
      quirky.clientSecret,
    ]);
  });
});
