/**
 * A leaked admin key must not become every secret. A provider's endpoints and client id are bound
 * to its client secret and its connections' tokens; provider endpoints on private networks are
 * refused unless allowed; a client-credentials provider needs no client of its own.
 *
 * Real parts: the gateway on SQLite and on PostgreSQL, oidc-provider as the real authorization
 * server, and a hostile token server (a plain HTTP server on loopback that records every byte it
 * receives and answers like a willing authorization server).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Envelope } from '../src/crypto/envelope.js';
import { openFileKeyring } from '../src/crypto/fileKeyring.js';
import { validateConfig } from '../src/config/schema.js';
import { createLogger } from '../src/log.js';
import { OAuthClient } from '../src/oauth/client.js';
import { isPrivateAddress } from '../src/oauth/network.js';
import { ChangeFeed } from '../src/registry/changes.js';
import { createConnection } from '../src/registry/connections.js';
import type { RegistryDeps } from '../src/registry/deps.js';
import { createProvider, updateProvider } from '../src/registry/providers.js';
import { validateProviderPatch } from '../src/providers/validate.js';
import { openStore } from '../src/store/open.js';
import type { Store } from '../src/store/types.js';
import { TokenSource } from '../src/tokens/tokenSource.js';
import { connectedTokenWrite, openTokenSet } from '../src/tokens/tokenSet.js';
import { startTestApp, type TestApp } from './support/app.js';
import { consentOverHttp, oidcProviderInput, startAuthServer, type AuthServer } from './support/authServer.js';
import { startJwtIssuer, type JwtIssuer } from './support/jwtIssuer.js';
import { freshPgSchema, requirePgOrSkip, type PgSchema } from './support/pg.js';
import { pgSchemaUrl } from './support/replicas.js';

const hasPg = await requirePgOrSkip('provider endpoint binding on PostgreSQL');

interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

interface RecordingServer {
  readonly origin: string;
  readonly received: Received[];
  /** Everything received, with HTTP Basic credentials and form fields decoded: what a secret scan reads. */
  everything(): string;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Decoded forms of a request: Basic credentials and URL-encoded bodies may hide a secret from a plain scan. */
function decoded(r: Received): string {
  const parts = [r.method, r.url, JSON.stringify(r.headers), r.body];
  const basic = /^Basic (.+)$/i.exec(String(r.headers['authorization'] ?? ''))?.[1];
  if (basic !== undefined) {
    const pair = Buffer.from(basic, 'base64').toString('utf8');
    parts.push(pair, ...pair.split(':').map((p) => decodeURIComponent(p)));
  }
  for (const [k, v] of new URLSearchParams(r.body)) parts.push(k, v);
  return parts.join('\n');
}

/**
 * Answers like an authorization server that wants to be trusted: OIDC discovery naming itself, and
 * a token endpoint that hands out tokens to anyone. It keeps everything it is sent.
 */
async function startHostileServer(): Promise<RecordingServer> {
  const received: Received[] = [];
  let origin = '';
  const server: Server = createServer(async (req, res) => {
    const body = await readBody(req);
    received.push({ method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers }, body });
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      res.end(
        JSON.stringify({
          issuer: origin,
          authorization_endpoint: `${origin}/auth`,
          token_endpoint: `${origin}/token`,
          jwks_uri: `${origin}/jwks`,
        }),
      );
    } else if (req.url === '/token') {
      res.end(
        JSON.stringify({
          access_token: 'hostile-access-token',
          token_type: 'Bearer',
          expires_in: 3600,
          refresh_token: 'hostile-refresh-token',
        }),
      );
    } else if (req.url === '/jwks') {
      res.end(JSON.stringify({ keys: [] }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    received,
    everything: () => received.map(decoded).join('\n----\n'),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const PROVIDER = `id clientId hasClientSecret version parameters { name value }`;
const CONNECTION = `id status hasClientSecret tokenExpiresAt version`;
const CREATE_PROVIDER = `mutation($input: CreateCredentialProviderInput!) { createCredentialProvider(input: $input) { ${PROVIDER} } }`;
const UPDATE_PROVIDER = `mutation($id: ID!, $input: UpdateCredentialProviderInput!) { updateCredentialProvider(id: $id, input: $input) { ${PROVIDER} } }`;
const CREATE_CONNECTION = `mutation($p: ID!, $input: CreateConnectionInput!) { createConnection(providerId: $p, input: $input) { ${CONNECTION} } }`;
const UPDATE_CONNECTION = `mutation($p: ID!, $id: ID!, $input: UpdateConnectionInput!) { updateConnection(providerId: $p, id: $id, input: $input) { ${CONNECTION} clientId } }`;
const CONNECTION_QUERY = `query($p: ID!, $id: ID!) { connection(providerId: $p, id: $id) { ${CONNECTION} } }`;
const PROVIDER_QUERY = `query($id: ID!) { credentialProvider(id: $id) { ${PROVIDER} } }`;
const TEST_CONNECTION = `mutation($p: ID!, $id: ID!) { testConnection(providerId: $p, connectionId: $id) { ok status error { code message } } }`;

function refusal(body: { data?: unknown; errors?: any[] }): {
  code: string;
  field: string | undefined;
  message: string;
} {
  expect(body.errors, JSON.stringify(body)).toHaveLength(1);
  const e = body.errors![0];
  return { code: e.extensions.code, field: e.extensions.field, message: e.message };
}

/** The tokens a connection holds, opened with the app's own keyring: the secrets that must not travel. */
async function storedTokens(
  t: TestApp,
  providerId: string,
  connectionId: string,
): Promise<{ accessToken: string; refreshToken: string | null } | null> {
  const connection = await t.app.store.getConnection({ providerId, connectionId });
  if (connection?.tokens == null) return null;
  const envelope = new Envelope(await openFileKeyring(join(t.dir, 'keyring.json')));
  return openTokenSet(envelope, { providerId, connectionId }, connection.tokens);
}

describe.each([['SQLite', false], ...(hasPg ? [['PostgreSQL', true] as const] : [])] as const)(
  'provider endpoints and client id are bound to its secret and its tokens (%s)',
  (_name, postgres) => {
    let auth: AuthServer;
    let hostile: RecordingServer;
    let idp: JwtIssuer;
    let t: TestApp;
    let schema: PgSchema | null = null;
    /** The secrets the gateway held before the change: none may reach the hostile server. */
    const before: string[] = [];
    let aliceJwt: string;

    beforeAll(async () => {
      if (postgres) schema = await freshPgSchema('cg_endpoints');
      [auth, hostile, idp] = await Promise.all([
        startAuthServer({ accessTokenTtlSeconds: 60, slowFaultDelayMs: 1_000 }),
        startHostileServer(),
        startJwtIssuer(),
      ]);
      // allowPrivateNetworks stays on (test/support/app.ts): both servers live on loopback.
      // Tokens live a minute and are renewed 5 s before expiry: nothing renews them during these tests unless asked.
      t = await startTestApp(
        { identity: { issuers: [idp.issuerConfig()] }, cache: { refreshSkewSeconds: 5 } },
        schema ? { storeUrl: pgSchemaUrl(schema) } : {},
      );
      aliceJwt = await idp.sign({ sub: 'alice' });

      expect(
        (await t.admin(CREATE_PROVIDER, { input: oidcProviderInput('corp-01', auth) })).body.errors,
      ).toBeUndefined();
      expect((await t.admin(CREATE_CONNECTION, { p: 'corp-01', input: { id: 'alice' } })).body.errors).toBeUndefined();
      const policy = await t.admin(
        `mutation { createAccessPolicy(providerId: "corp-01", connectionId: "alice", input: { id: "alice", kind: USER, objectId: "alice" }) { id } }`,
      );
      expect(policy.body.errors).toBeUndefined();
      const link = await t.admin(
        `mutation($r: String!) { createLoginLink(providerId: "corp-01", connectionId: "alice", postLoginRedirectUrl: $r) { url } }`,
        {
          r: `${t.url}/after-login`,
        },
      );
      const done = await consentOverHttp(link.body.data.createLoginLink.url, {
        login: 'alice',
        stopAt: (u) => u.pathname === '/after-login',
      });
      expect(done.searchParams.get('status')).toBe('CONNECTED');
      // One refresh, so that the gateway holds a rotated refresh token and has used its secret at least twice.
      expect((await t.admin(TEST_CONNECTION, { p: 'corp-01', id: 'alice' })).body.data.testConnection).toMatchObject({
        ok: true,
        status: 'CONNECTED',
      });
      const tokens = await storedTokens(t, 'corp-01', 'alice');
      expect(tokens?.refreshToken).toBeTruthy();
      before.push(auth.clients.web.clientSecret, tokens!.accessToken, tokens!.refreshToken!);
    }, 60_000);

    afterAll(async () => {
      await t?.close();
      await Promise.all([auth?.close(), hostile?.close(), idp?.close()]);
      await schema?.drop();
    });

    const tokenEndpoint = () =>
      fetch(`${t.url}/tokens/corp-01/alice`, { headers: { authorization: `Bearer ${aliceJwt}` } });

    it('refuses an endpoint change without a new client secret, naming input.clientSecret, and changes nothing', async () => {
      const served = await tokenEndpoint();
      expect(served.status).toBe(200);
      const providerBefore = (await t.admin(PROVIDER_QUERY, { id: 'corp-01' })).body.data.credentialProvider;
      const connectionBefore = (await t.admin(CONNECTION_QUERY, { p: 'corp-01', id: 'alice' })).body.data.connection;

      for (const input of [
        { parameters: [{ name: 'issuer', value: hostile.origin }] },
        { clientId: 'another-client' },
        { displayName: 'looks harmless', parameters: [{ name: 'issuer', value: hostile.origin }], clientSecret: null },
      ]) {
        const e = refusal((await t.admin(UPDATE_PROVIDER, { id: 'corp-01', input })).body);
        expect(e.code).toBe('BAD_USER_INPUT');
        expect(e.field).toBe('input.clientSecret');
        expect(e.message).toMatch(/input\.(parameters\.issuer|clientId)/);
      }
      expect((await t.admin(PROVIDER_QUERY, { id: 'corp-01' })).body.data.credentialProvider).toEqual(providerBefore);
      expect((await t.admin(CONNECTION_QUERY, { p: 'corp-01', id: 'alice' })).body.data.connection).toEqual(
        connectionBefore,
      );
      expect((await storedTokens(t, 'corp-01', 'alice'))?.refreshToken).toBe(before[2]);
      expect(hostile.received).toEqual([]);
    });

    it('keeps tokens when nothing bound changes: a secret rotation alone, or the same issuer given again', async () => {
      const rotated = await t.admin(UPDATE_PROVIDER, {
        id: 'corp-01',
        input: { clientSecret: auth.clients.web.clientSecret, parameters: [{ name: 'issuer', value: auth.issuer }] },
      });
      expect(rotated.body.errors).toBeUndefined();
      expect((await t.admin(CONNECTION_QUERY, { p: 'corp-01', id: 'alice' })).body.data.connection.status).toBe(
        'CONNECTED',
      );
      expect((await storedTokens(t, 'corp-01', 'alice'))?.refreshToken).toBe(before[2]);
    });

    it('drops every token with an endpoint change, so nothing stored before reaches the new host', async () => {
      const held = await storedTokens(t, 'corp-01', 'alice');
      before.push(held!.accessToken, held!.refreshToken!);
      const changed = await t.admin(UPDATE_PROVIDER, {
        id: 'corp-01',
        input: { parameters: [{ name: 'issuer', value: hostile.origin }], clientSecret: 'attacker-chosen-secret' },
      });
      expect(changed.body.errors).toBeUndefined();
      expect(changed.body.data.updateCredentialProvider.parameters).toEqual([
        { name: 'issuer', value: hostile.origin },
      ]);

      const connection = (await t.admin(CONNECTION_QUERY, { p: 'corp-01', id: 'alice' })).body.data.connection;
      expect(connection).toMatchObject({ status: 'NOT_CONNECTED', tokenExpiresAt: null });
      expect(await storedTokens(t, 'corp-01', 'alice')).toBeNull();

      // Every way of using the connection: the token endpoint (its cache dropped by the change event),
      // a test, a forced renewal. None has anything to send.
      const served = await tokenEndpoint();
      expect(served.status).toBe(409);
      expect(((await served.json()) as { error: string }).error).toBe('CONNECTION_NOT_CONNECTED');
      const tested = (await t.admin(TEST_CONNECTION, { p: 'corp-01', id: 'alice' })).body.data.testConnection;
      expect(tested).toMatchObject({ ok: false, status: 'NOT_CONNECTED', error: { code: 'CONNECTION_NOT_CONNECTED' } });
      await expect(
        t.app.tokens.get({ providerId: 'corp-01', connectionId: 'alice' }, { forceRefresh: true }),
      ).rejects.toMatchObject({
        code: 'CONNECTION_NOT_CONNECTED',
      });

      const seen = hostile.everything();
      for (const secret of before)
        expect(seen.includes(secret), `${secret.slice(0, 6)}… reached the new host`).toBe(false);
    });

    it('keeps out the tokens of a consent whose code exchange began before an endpoint change', async () => {
      expect(
        (await t.admin(CREATE_PROVIDER, { input: oidcProviderInput('race-01', auth) })).body.errors,
      ).toBeUndefined();
      expect((await t.admin(CREATE_CONNECTION, { p: 'race-01', input: { id: 'bob' } })).body.errors).toBeUndefined();
      const link = await t.admin(
        `mutation($r: String!) { createLoginLink(providerId: "race-01", connectionId: "bob", postLoginRedirectUrl: $r) { url } }`,
        {
          r: `${t.url}/after-login`,
        },
      );
      const callback = await consentOverHttp(link.body.data.createLoginLink.url, {
        login: 'bob',
        stopAt: (u) => u.pathname === '/oauth/callback',
      });
      auth.resetCounts();
      auth.setFault('slow', 'token');
      try {
        // The gateway exchanges the code at the old endpoints; the answer is held back while the admin moves them.
        const landing = fetch(callback, { redirect: 'manual' });
        for (let i = 0; i < 100 && auth.counts.authorizationCode === 0; i++)
          await new Promise((r) => setTimeout(r, 20));
        expect(auth.counts.authorizationCode).toBe(1);
        const changed = await t.admin(UPDATE_PROVIDER, {
          id: 'race-01',
          input: { parameters: [{ name: 'issuer', value: hostile.origin }], clientSecret: 'another-chosen-secret' },
        });
        expect(changed.body.errors).toBeUndefined();
        const landed = new URL((await landing).headers.get('location')!);
        expect(landed.searchParams.get('error')).toBe('CONNECTION_NOT_CONNECTED');
      } finally {
        auth.setFault('none', 'token');
      }
      expect((await t.admin(CONNECTION_QUERY, { p: 'race-01', id: 'bob' })).body.data.connection.status).toBe(
        'NOT_CONNECTED',
      );
      expect(await storedTokens(t, 'race-01', 'bob')).toBeNull();
      expect((await t.admin(TEST_CONNECTION, { p: 'race-01', id: 'bob' })).body.data.testConnection.ok).toBe(false);
      expect(hostile.received.filter((r) => r.url === '/token')).toEqual([]);
    });

    it('lets a new consent start against the new endpoints only', async () => {
      const link = await t.admin(
        `mutation($r: String!) { createLoginLink(providerId: "corp-01", connectionId: "alice", postLoginRedirectUrl: $r) { url } }`,
        {
          r: `${t.url}/after-login`,
        },
      );
      expect(link.body.errors).toBeUndefined();
      const opened = await fetch(link.body.data.createLoginLink.url, { redirect: 'manual' });
      expect(opened.status).toBe(302);
      expect(new URL(opened.headers.get('location')!).origin).toBe(hostile.origin);
      const seen = hostile.everything();
      for (const secret of before) expect(seen.includes(secret)).toBe(false);
    });
  },
);

describe('which changes rebind a provider (catalog data)', () => {
  const github = {
    id: 'gh',
    identityProvider: 'github',
    grantType: 'AUTHORIZATION_CODE' as const,
    clientId: 'app',
    clientSecret: 'sealed' as never,
    parameters: {},
  };
  const pkce = {
    id: 'pk',
    identityProvider: 'oauth2pkce',
    grantType: 'AUTHORIZATION_CODE' as const,
    clientId: 'public-app',
    clientSecret: null,
    parameters: { authorizationUrl: 'https://idp.example.com/a', tokenUrl: 'https://idp.example.com/t' },
  };

  it('compares effective values: a default given explicitly is no change, another host is', () => {
    expect(validateProviderPatch(github, { parameters: { domain: 'github.com' } }).rebinds).toBeUndefined();
    expect(validateProviderPatch(github, { parameters: { domain: 'GitHub.com' } }).rebinds).toBeUndefined();
    expect(() => validateProviderPatch(github, { parameters: { domain: 'ghe.corp.example' } })).toThrow(
      /input\.clientSecret is required with a change of input\.parameters\.domain/,
    );
    expect(
      validateProviderPatch(github, { parameters: { domain: 'ghe.corp.example' }, clientSecret: 'new' }).rebinds,
    ).toEqual(['parameters.domain']);
    expect(validateProviderPatch(github, { clientId: 'app' }).rebinds).toBeUndefined();
    expect(validateProviderPatch(github, { clientId: 'app-2', clientSecret: 'new' }).rebinds).toEqual(['clientId']);
  });

  it('does not bind parameters that are only sent along (audience, resource) or that pick scopes', () => {
    const oauth2 = { ...pkce, identityProvider: 'oauth2', clientSecret: 'sealed' as never };
    expect(
      validateProviderPatch(oauth2, { parameters: { audience: 'https://api.example.com' } }).rebinds,
    ).toBeUndefined();
    const entra = { ...github, identityProvider: 'entra', parameters: { tenantId: 'contoso' } };
    expect(
      validateProviderPatch(entra, { parameters: { resourceUri: 'https://management.azure.com' } }).rebinds,
    ).toBeUndefined();
    expect(() => validateProviderPatch(entra, { parameters: { tenantId: 'fabrikam' } })).toThrow(/input\.clientSecret/);
  });

  it('needs no secret for a public client, but still rebinds it (its refresh tokens need no secret at all)', () => {
    expect(validateProviderPatch(pkce, { parameters: { tokenUrl: 'https://other.example.com/t' } }).rebinds).toEqual([
      'parameters.tokenUrl',
    ]);
  });
});

describe('a renewal racing an endpoint change', () => {
  let hostile: RecordingServer;
  let dir: string;
  let store: Store;

  beforeAll(async () => {
    hostile = await startHostileServer();
    dir = mkdtempSync(join(tmpdir(), 'cg-endpoints-'));
    store = await openStore(`sqlite:${join(dir, 'credentials.db')}`);
  });

  afterAll(async () => {
    await store?.close();
    await hostile?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('never sends tokens read before the change to the endpoints read after it', async () => {
    const envelope = new Envelope(await openFileKeyring(join(dir, 'keyring.json')));
    const now = () => new Date();
    const registry: RegistryDeps = {
      store,
      envelope,
      limits: validateConfig({}).limits,
      managedObjectId: 'gateway',
      allowInsecureHttp: true,
      allowPrivateNetworks: true,
      now,
      changes: new ChangeFeed(),
    };
    await createProvider(registry, {
      id: 'race-02',
      identityProvider: 'oauth2',
      grantType: 'AUTHORIZATION_CODE',
      clientId: 'app',
      clientSecret: 'the-old-client-secret',
      parameters: { authorizationUrl: 'http://127.0.0.1:9/authorize', tokenUrl: 'http://127.0.0.1:9/token' },
    });
    const key = { providerId: 'race-02', connectionId: 'carol' };
    await createConnection(registry, 'race-02', { id: 'carol' });
    const expired = {
      accessToken: 'the-old-access-token',
      refreshToken: 'the-old-refresh-token',
      tokenType: 'Bearer',
      expiresAt: Date.now() - 1_000,
      scope: null,
      idTokenClaims: null,
      extra: {},
    };
    expect(await store.writeTokens(key, connectedTokenWrite(envelope, key, expired, now()), 0)).not.toBeNull();

    // A fault injector around the real store: the admin's change commits just as the renewal reads the provider.
    let armed = true;
    const getProvider = async (id: string) => {
      if (armed) {
        armed = false;
        await updateProvider(
          registry,
          id,
          { parameters: { tokenUrl: `${hostile.origin}/token` }, clientSecret: 'a-new-secret' },
          null,
        );
      }
      return store.getProvider(id);
    };
    const racing = new Proxy(store, {
      get: (target, name) => {
        if (name === 'getProvider') return getProvider;
        const value: unknown = Reflect.get(target, name, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const tokens = new TokenSource({
      store: racing,
      envelope,
      oauth: new OAuthClient({ timeoutMs: 3_000, allowInsecureHttp: true, allowPrivateNetworks: true }),
      now,
      logger: createLogger('silent'),
      refreshSkewMs: 0,
      allowInsecureHttp: true,
      callerTimeoutMs: 3_000,
    });
    await expect(tokens.get(key)).rejects.toMatchObject({ code: 'CONNECTION_NOT_CONNECTED' });
    expect(armed).toBe(false);
    const seen = hostile.everything();
    for (const secret of ['the-old-client-secret', 'the-old-access-token', 'the-old-refresh-token'])
      expect(seen.includes(secret), secret).toBe(false);
  });
});

describe('client-credentials providers and connections', () => {
  let auth: AuthServer;
  let hostile: RecordingServer;
  let t: TestApp;

  beforeAll(async () => {
    [auth, hostile] = await Promise.all([startAuthServer(), startHostileServer()]);
    t = await startTestApp();
  });

  afterAll(async () => {
    await t?.close();
    await Promise.all([auth?.close(), hostile?.close()]);
  });

  const serviceProvider = (id: string, client: Record<string, string>) => ({
    id,
    identityProvider: 'oauth2',
    grantType: 'CLIENT_CREDENTIALS',
    ...client,
    scopes: [...auth.apiScopes],
    parameters: [{ name: 'tokenUrl', value: `${auth.issuer}/token` }],
  });

  it('marks in the catalog which parameters are part of the endpoints (and so bound to the secret)', async () => {
    const res = await t.admin(`{ identityProviders { name parameters { name endpoint } } }`);
    const endpointParameters = Object.fromEntries(
      (res.body.data.identityProviders as { name: string; parameters: { name: string; endpoint: boolean }[] }[]).map(
        (e) => [e.name, e.parameters.filter((p) => p.endpoint).map((p) => p.name)],
      ),
    );
    expect(endpointParameters['oauth2']).toEqual(['authorizationUrl', 'tokenUrl', 'issuer', 'revocationUrl']);
    expect(endpointParameters['oidc']).toEqual(['issuer']);
    expect(endpointParameters['entra']).toEqual(['tenantId']);
    expect(endpointParameters['github']).toEqual(['domain']);
    expect(endpointParameters['salesforce']).toEqual(['instanceName']);
    expect(endpointParameters['servicenow']).toEqual(['instanceName']);
    expect(endpointParameters['okta']).toEqual(['domain', 'authorizationServerId']);
    expect(endpointParameters['google']).toEqual([]);
  });

  it('creates a provider without a client; each connection brings its own and gets tokens end to end', async () => {
    const created = await t.admin(CREATE_PROVIDER, { input: serviceProvider('svc-bare', {}) });
    expect(created.body.errors).toBeUndefined();
    expect(created.body.data.createCredentialProvider).toMatchObject({ clientId: null, hasClientSecret: false });

    const noClient = refusal((await t.admin(CREATE_CONNECTION, { p: 'svc-bare', input: { id: 'daemon' } })).body);
    expect(noClient).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.clientId' });
    const secretOnly = refusal(
      (await t.admin(CREATE_CONNECTION, { p: 'svc-bare', input: { id: 'daemon', clientSecret: 'orphan-secret' } }))
        .body,
    );
    expect(secretOnly).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.clientId' });
    const idOnly = refusal(
      (
        await t.admin(CREATE_CONNECTION, {
          p: 'svc-bare',
          input: { id: 'daemon', clientId: auth.clients.service.clientId },
        })
      ).body,
    );
    expect(idOnly).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.clientSecret' });
    const secretOnProvider = refusal(
      (await t.admin(CREATE_PROVIDER, { input: serviceProvider('svc-odd', { clientSecret: 'x-secret' }) })).body,
    );
    expect(secretOnProvider).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.clientSecret' });

    const connection = await t.admin(CREATE_CONNECTION, {
      p: 'svc-bare',
      input: { id: 'daemon', clientId: auth.clients.service.clientId, clientSecret: auth.clients.service.clientSecret },
    });
    expect(connection.body.data.createConnection).toMatchObject({ status: 'CONNECTED', hasClientSecret: true });
    auth.resetCounts();
    expect((await t.admin(TEST_CONNECTION, { p: 'svc-bare', id: 'daemon' })).body.data.testConnection).toMatchObject({
      ok: true,
      status: 'CONNECTED',
      error: null,
    });
    expect(auth.counts.clientCredentials).toBe(1);
  });

  it("uses the provider's client as the default for connections without one", async () => {
    const provider = await t.admin(CREATE_PROVIDER, {
      input: serviceProvider('svc-default', {
        clientId: auth.clients.service.clientId,
        clientSecret: auth.clients.service.clientSecret,
      }),
    });
    expect(provider.body.errors).toBeUndefined();
    expect(
      (await t.admin(CREATE_CONNECTION, { p: 'svc-default', input: { id: 'worker' } })).body.data.createConnection
        .status,
    ).toBe('CONNECTED');
    auth.resetCounts();
    expect((await t.admin(TEST_CONNECTION, { p: 'svc-default', id: 'worker' })).body.data.testConnection).toMatchObject(
      { ok: true },
    );
    expect(auth.counts.clientCredentials).toBe(1);
  });

  it("binds a connection's own client id to its secret and tokens", async () => {
    const key = { providerId: 'svc-bare', connectionId: 'daemon' };
    expect(await t.app.store.getConnection(key).then((c) => c?.tokens)).toBeTruthy();
    const e = refusal(
      (await t.admin(UPDATE_CONNECTION, { p: 'svc-bare', id: 'daemon', input: { clientId: 'someone-else' } })).body,
    );
    expect(e).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.clientSecret' });
    expect(await t.app.store.getConnection(key).then((c) => c?.clientId)).toBe(auth.clients.service.clientId);

    const moved = await t.admin(UPDATE_CONNECTION, {
      p: 'svc-bare',
      id: 'daemon',
      input: { clientId: 'someone-else', clientSecret: 'their-secret' },
    });
    expect(moved.body.data.updateConnection).toMatchObject({ clientId: 'someone-else', tokenExpiresAt: null });
    expect(await t.app.store.getConnection(key).then((c) => c?.tokens)).toBeNull();
    // Back to the working client for the next test.
    const back = await t.admin(UPDATE_CONNECTION, {
      p: 'svc-bare',
      id: 'daemon',
      input: { clientId: auth.clients.service.clientId, clientSecret: auth.clients.service.clientSecret },
    });
    expect(back.body.errors).toBeUndefined();
    expect((await t.admin(TEST_CONNECTION, { p: 'svc-bare', id: 'daemon' })).body.data.testConnection).toMatchObject({
      ok: true,
    });
  });

  it("drops the connections' own client secrets with an endpoint change: the new host gets only what came after", async () => {
    const key = { providerId: 'svc-bare', connectionId: 'daemon' };
    const held = await t.app.store.getConnection(key);
    expect(held?.tokens).toBeTruthy();
    const envelope = new Envelope(await openFileKeyring(join(t.dir, 'keyring.json')));
    const oldAccessToken = openTokenSet(envelope, key, held!.tokens!).accessToken;

    // A provider without a client has no secret to renew: the change alone is enough, and it takes the connection's.
    const changed = await t.admin(UPDATE_PROVIDER, {
      id: 'svc-bare',
      input: { parameters: [{ name: 'tokenUrl', value: `${hostile.origin}/token` }] },
    });
    expect(changed.body.errors).toBeUndefined();
    const after = (await t.admin(CONNECTION_QUERY, { p: 'svc-bare', id: 'daemon' })).body.data.connection;
    expect(after).toMatchObject({ status: 'NOT_CONNECTED', hasClientSecret: false, tokenExpiresAt: null });
    const refused = (await t.admin(TEST_CONNECTION, { p: 'svc-bare', id: 'daemon' })).body.data.testConnection;
    expect(refused).toMatchObject({ ok: false, error: { code: 'CONNECTION_NOT_CONNECTED' } });
    expect(refused.error.message).toContain('needs a new client secret');
    expect(hostile.received).toEqual([]);

    // The admin gives the connection a client for the new host; only that is ever sent there.
    const renewed = await t.admin(UPDATE_CONNECTION, {
      p: 'svc-bare',
      id: 'daemon',
      input: { clientSecret: 'secret-for-the-new-host' },
    });
    expect(renewed.body.data.updateConnection).toMatchObject({ status: 'CONNECTED', hasClientSecret: true });
    expect((await t.admin(TEST_CONNECTION, { p: 'svc-bare', id: 'daemon' })).body.data.testConnection).toMatchObject({
      ok: true,
    });
    const seen = hostile.everything();
    expect(seen).toContain('secret-for-the-new-host');
    for (const secret of [auth.clients.service.clientSecret, oldAccessToken]) expect(seen.includes(secret)).toBe(false);
  });
});

describe('private networks', () => {
  let internal: RecordingServer;
  let t: TestApp;
  let port: string;

  beforeAll(async () => {
    internal = await startHostileServer();
    port = new URL(internal.origin).port;
    t = await startTestApp({ oauth: { allowPrivateNetworks: false } });
  });

  afterAll(async () => {
    await t?.close();
    await internal?.close();
  });

  const provider = (id: string, parameters: { name: string; value: string }[], identityProvider = 'oauth2') => ({
    id,
    identityProvider,
    grantType: identityProvider === 'github' ? 'AUTHORIZATION_CODE' : 'CLIENT_CREDENTIALS',
    clientId: 'internal-probe',
    clientSecret: 'internal-probe-secret',
    parameters,
  });

  it('classifies loopback, private, shared, link-local, unique-local, mapped and unspecified addresses', () => {
    for (const a of [
      '127.0.0.1',
      '127.255.0.9',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '[::1]',
      '::',
      'fc00::1',
      'fd12:3456::1',
      'fe80::1',
      '::ffff:127.0.0.1',
      '[::ffff:7f00:1]',
      '::ffff:8.8.8.8',
    ]) {
      expect(isPrivateAddress(a), a).toBe(true);
    }
    for (const a of [
      '8.8.8.8',
      '172.32.0.1',
      '100.128.0.1',
      '192.169.0.1',
      '2001:4860:4860::8888',
      'idp.example.com',
      'localhost',
    ]) {
      expect(isPrivateAddress(a), a).toBe(false);
    }
  });

  it('refuses literal private addresses at create and at update, naming the parameter', async () => {
    const literals = [
      `http://127.0.0.1:${port}/token`,
      `http://[::1]:${port}/token`,
      'http://10.0.0.1/token',
      'http://169.254.169.254/latest/meta-data',
      `http://[::ffff:127.0.0.1]:${port}/token`,
      `http://2130706433:${port}/token`,
      `http://0x7f.1:${port}/token`,
      'http://0.0.0.0/token',
    ];
    for (const [i, url] of literals.entries()) {
      const e = refusal(
        (await t.admin(CREATE_PROVIDER, { input: provider(`lit-${i}`, [{ name: 'tokenUrl', value: url }]) })).body,
      );
      expect(e, url).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.parameters.tokenUrl' });
      expect(e.message).toContain('oauth.allowPrivateNetworks');
    }
    const host = refusal(
      (
        await t.admin(CREATE_PROVIDER, {
          input: provider('gh-internal', [{ name: 'domain', value: '192.168.0.10' }], 'github'),
        })
      ).body,
    );
    expect(host).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.parameters.domain' });

    expect(
      (
        await t.admin(CREATE_PROVIDER, {
          input: provider('public-01', [{ name: 'tokenUrl', value: 'https://idp.example.com/token' }]),
        })
      ).body.errors,
    ).toBeUndefined();
    const moved = refusal(
      (
        await t.admin(UPDATE_PROVIDER, {
          id: 'public-01',
          input: {
            parameters: [{ name: 'tokenUrl', value: `http://127.0.0.1:${port}/token` }],
            clientSecret: 'new-secret',
          },
        })
      ).body,
    );
    expect(moved).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.parameters.tokenUrl' });
    expect(internal.received).toEqual([]);
  });

  it('refuses at connect time a name that resolves to loopback: testConnection reports a refusal, not an HTTP status', async () => {
    for (const [id, identityProvider, parameters] of [
      ['name-01', 'oauth2', [{ name: 'tokenUrl', value: `http://localhost:${port}/token` }]],
      ['name-02', 'oidc', [{ name: 'issuer', value: `http://localhost:${port}` }]],
    ] as const) {
      const created = await t.admin(CREATE_PROVIDER, { input: provider(id, [...parameters], identityProvider) });
      expect(created.body.errors).toBeUndefined();
      expect((await t.admin(CREATE_CONNECTION, { p: id, input: { id: 'probe' } })).body.errors).toBeUndefined();
      const tested = (await t.admin(TEST_CONNECTION, { p: id, id: 'probe' })).body.data.testConnection;
      expect(tested.ok).toBe(false);
      expect(tested.error.code).toBe('PROVIDER_UNAVAILABLE');
      expect(tested.error.message).toMatch(/refused.*oauth\.allowPrivateNetworks is off/);
      expect(tested.error.message).not.toMatch(/HTTP|\d{3}/);
    }
    expect(internal.received).toEqual([]);
  });

  it('refuses at connect time a literal address that reached the store by another path', async () => {
    await t.app.store.updateProvider('public-01', { parameters: { tokenUrl: `http://127.0.0.1:${port}/token` } }, null);
    expect((await t.admin(CREATE_CONNECTION, { p: 'public-01', input: { id: 'probe' } })).body.errors).toBeUndefined();
    const tested = (await t.admin(TEST_CONNECTION, { p: 'public-01', id: 'probe' })).body.data.testConnection;
    expect(tested).toMatchObject({ ok: false, error: { code: 'PROVIDER_UNAVAILABLE' } });
    expect(tested.error.message).toMatch(/oauth\.allowPrivateNetworks is off/);
    expect(internal.received).toEqual([]);
  });
});
