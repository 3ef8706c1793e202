/**
 * Hostile management input through the real admin GraphQL API, on SQLite and on PostgreSQL:
 * arbitrary strings (unicode, control characters, lone surrogates, huge), wrong types, edge
 * numbers. Every response is a success whose record reads back exactly as sent, or a refusal with
 * a management code (never INTERNAL_SERVER_ERROR, never HTTP 5xx) that changed nothing. A model of
 * what was accepted is kept and compared with the store's listing at the end.
 *
 * Then the browser-facing consent endpoints: arbitrary query strings and path tokens at
 * /oauth/callback and /oauth/login/<token> end as a 4xx or as a redirect to an allowlisted origin.
 */
import { maxHeaderSize as MAX_HEADER_BYTES, request } from 'node:http';
import * as fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANAGEMENT_CODES } from '../src/errors.js';
import { IDENTITY_PROVIDER_NAMES } from '../src/providers/catalog.js';
import { startTestApp, type TestApp } from './support/app.js';
import { startAuthServer, type AuthServer } from './support/authServer.js';
import { hostileString, runProperty } from './support/fuzz.js';
import { startJwtIssuer, type JwtIssuer } from './support/jwtIssuer.js';
import { freshPgSchema, requirePgOrSkip, type PgSchema } from './support/pg.js';

const hasPg = await requirePgOrSkip('hostile management input on PostgreSQL');

const APP_ORIGIN = 'https://app.example.com';
/** Codes a refusal may carry; authentication codes would mean the test itself sent the wrong key. */
const REFUSAL_CODES: readonly string[] = MANAGEMENT_CODES.filter((c) => c !== 'UNAUTHENTICATED' && c !== 'FORBIDDEN');
/** U+0000 and lone surrogates: refused in every request string (src/graphql/limits.ts). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: U+0000 is exactly what the gateway refuses, so the test matches it
const UNSTORABLE = /\u0000|\p{Cs}/u;

const PROVIDER = `id displayName identityProvider grantType clientId hasClientSecret scopes parameters { name value } version`;
const POLICY = `id kind objectId tenantId appIds issuer`;
const CONNECTION = `id providerId displayName status clientId hasClientSecret version accessPolicies { ${POLICY} }`;

const Q = {
  createProvider: `mutation($input: CreateCredentialProviderInput!) { createCredentialProvider(input: $input) { ${PROVIDER} } }`,
  updateProvider: `mutation($id: ID!, $input: UpdateCredentialProviderInput!, $v: Int) { updateCredentialProvider(id: $id, input: $input, expectedVersion: $v) { ${PROVIDER} } }`,
  deleteProvider: `mutation($id: ID!, $v: Int) { deleteCredentialProvider(id: $id, expectedVersion: $v) }`,
  provider: `query($id: ID!) { credentialProvider(id: $id) { ${PROVIDER} } }`,
  createConnection: `mutation($p: ID!, $input: CreateConnectionInput!) { createConnection(providerId: $p, input: $input) { ${CONNECTION} } }`,
  updateConnection: `mutation($p: ID!, $id: ID!, $input: UpdateConnectionInput!, $v: Int) { updateConnection(providerId: $p, id: $id, input: $input, expectedVersion: $v) { ${CONNECTION} } }`,
  deleteConnection: `mutation($p: ID!, $id: ID!, $v: Int) { deleteConnection(providerId: $p, id: $id, expectedVersion: $v) }`,
  connection: `query($p: ID!, $id: ID!) { connection(providerId: $p, id: $id) { ${CONNECTION} } }`,
  createPolicy: `mutation($p: ID!, $c: ID!, $input: CreateAccessPolicyInput!) { createAccessPolicy(providerId: $p, connectionId: $c, input: $input) { ${POLICY} } }`,
  deletePolicy: `mutation($p: ID!, $c: ID!, $id: ID!) { deleteAccessPolicy(providerId: $p, connectionId: $c, id: $id) }`,
  page: `query($first: Int, $after: String, $cFirst: Int, $cAfter: String) {
    credentialProviders(first: $first, after: $after) { nextCursor items { id connections(first: $cFirst, after: $cAfter) { nextCursor items { id } } } } }`,
  loginLink: `mutation($p: ID!, $c: ID!, $r: String!) { createLoginLink(providerId: $p, connectionId: $c, postLoginRedirectUrl: $r) { url expiresAt } }`,
};

type Outcome = { ok: true; data: any } | { ok: false; code: string };
type View = Record<string, any>;

const storable = (s: unknown): s is string => typeof s === 'string' && !UNSTORABLE.test(s);
const keyOf = (providerId: string, connectionId: string) => `${providerId}\n${connectionId}`;

/** Mostly a plausible value, sometimes hostile, absent or null, or of the wrong type. */
function field<T>(good: fc.Arbitrary<T>, hostile: fc.Arbitrary<unknown> = hostileString()): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 6, arbitrary: good },
    { weight: 3, arbitrary: hostile },
    { weight: 1, arbitrary: fc.constantFrom(undefined, null) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        fc.integer(),
        fc.double(),
        fc.boolean(),
        fc.array(fc.string(), { maxLength: 2 }),
        fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }),
      ),
    },
  );
}

const idArb = fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/);
const urlArb = fc.constantFrom(
  'https://idp.example.com/authorize',
  'https://idp.example.com/token',
  'http://127.0.0.1:9/token',
  'https://idp.example.com',
  'https://user:pw@idp.example.com/t',
  'javascript:alert(1)',
  'https://idp.example.com/a#f',
);
const parameterName = fc.constantFrom(
  'authorizationUrl',
  'tokenUrl',
  'issuer',
  'audience',
  'resource',
  'tenantId',
  'resourceUri',
  'domain',
  'instanceName',
  'authorizationServerId',
  'boxSubjectType',
  'boxSubjectId',
  'includeGrantedScopes',
);
const parameterValue = fc.oneof(urlArb, fc.constantFrom('contoso', 'Example.COM', 'dev-123', 'true', 'default', ''));
const parameters = fc.array(
  fc.record({ name: field(parameterName), value: field(parameterValue) }, { requiredKeys: [] }),
  { maxLength: 4 },
);
const scopes = fc.array(
  field(fc.constantFrom('openid', 'read', 'write', 'repo', 'offline_access', 'a,b', 'user:email')),
  { maxLength: 4 },
);
const expectedVersion = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.integer({ min: -2, max: 5 }),
  fc.integer(),
  fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 1.5, Number.MAX_SAFE_INTEGER),
  fc.string(),
);
/** An index into the model (an existing resource) or a hostile name. */
const target = fc.oneof(
  { weight: 3, arbitrary: fc.nat().map((i) => ({ existing: i })) },
  { weight: 1, arbitrary: hostileString(24).map((s) => ({ name: s })) },
);
type Target = { existing: number } | { name: string };

const REMOVE = Symbol('remove the field');
const wrongType = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.array(fc.string(), { maxLength: 2 }),
  fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }),
);

/**
 * A valid input as is, or with one or two fields replaced by a hostile value, a wrong type, null,
 * or removed: every edge case lands next to otherwise valid input, so it meets the field's own check.
 */
function withHostileFields(
  good: fc.Arbitrary<Record<string, unknown>>,
  hostile: Record<string, fc.Arbitrary<unknown>>,
): fc.Arbitrary<Record<string, unknown>> {
  const change = fc
    .constantFrom(...Object.keys(hostile))
    .chain((name) =>
      fc.tuple(
        fc.constant(name),
        fc.oneof(
          { weight: 5, arbitrary: hostile[name]! },
          { weight: 1, arbitrary: wrongType },
          { weight: 1, arbitrary: fc.constantFrom<unknown>(null, REMOVE) },
        ),
      ),
    );
  const changed = fc.tuple(good, fc.array(change, { minLength: 1, maxLength: 2 })).map(([input, changes]) => {
    const out: Record<string, unknown> = { ...input };
    for (const [name, value] of changes) {
      if (value === REMOVE) delete out[name];
      else out[name] = value;
    }
    return out;
  });
  return fc.oneof({ weight: 2, arbitrary: good }, { weight: 3, arbitrary: changed });
}

/** Valid provider inputs of several catalog entries (no network needed to create them). */
const PROVIDER_BASES: readonly Record<string, unknown>[] = [
  { identityProvider: 'github', grantType: 'AUTHORIZATION_CODE' },
  { identityProvider: 'google', grantType: 'AUTHORIZATION_CODE', scopes: ['openid', 'email'] },
  {
    identityProvider: 'oauth2',
    grantType: 'AUTHORIZATION_CODE',
    parameters: [
      { name: 'authorizationUrl', value: 'https://idp.example.com/authorize' },
      { name: 'tokenUrl', value: 'https://idp.example.com/token' },
    ],
  },
  {
    identityProvider: 'oauth2',
    grantType: 'CLIENT_CREDENTIALS',
    parameters: [
      { name: 'authorizationUrl', value: 'https://idp.example.com/authorize' },
      { name: 'tokenUrl', value: 'https://idp.example.com/token' },
    ],
  },
  {
    identityProvider: 'oidc',
    grantType: 'AUTHORIZATION_CODE',
    parameters: [{ name: 'issuer', value: 'https://login.example.com' }],
  },
  { identityProvider: 'entra', grantType: 'CLIENT_CREDENTIALS', parameters: [{ name: 'tenantId', value: 'contoso' }] },
  {
    identityProvider: 'okta',
    grantType: 'AUTHORIZATION_CODE',
    parameters: [
      { name: 'domain', value: 'Dev-1.Okta.com' },
      { name: 'authorizationServerId', value: 'default' },
    ],
  },
  {
    identityProvider: 'servicenow',
    grantType: 'AUTHORIZATION_CODE',
    parameters: [{ name: 'instanceName', value: 'dev123' }],
  },
  {
    identityProvider: 'box',
    grantType: 'CLIENT_CREDENTIALS',
    parameters: [
      { name: 'boxSubjectType', value: 'enterprise' },
      { name: 'boxSubjectId', value: '123' },
    ],
  },
];
const goodDisplayName = fc.constantFrom(
  'GitHub',
  'Ünïcödé 名前 😀',
  'x'.repeat(256),
  'tab\there',
  '<script>alert(1)</script>',
  "Robert'); DROP TABLE providers;--",
);
const goodProvider = fc
  .record({
    id: idArb,
    displayName: fc.option(goodDisplayName, { nil: undefined }),
    base: fc.constantFrom(...PROVIDER_BASES),
    clientId: fc.constantFrom('client-1', 'Iv1.abc', 'x'.repeat(1024)),
    clientSecret: fc.constantFrom('s3cr3t', 'x'.repeat(4096), 'pässwörd with spaces'),
  })
  .map(({ base, displayName, ...rest }) => ({ ...base, ...rest, ...(displayName !== undefined && { displayName }) }));
const hostileParameters = fc.oneof(
  parameters,
  fc.array(fc.record({ name: hostileString(12), value: hostileString(40) }), { minLength: 1, maxLength: 2 }),
);
const hostileScopes = fc.oneof(
  scopes,
  fc.array(hostileString(40), { minLength: 1, maxLength: 3 }),
  fc.constant(Array.from({ length: 101 }, (_, i) => `s${i}`)),
);
const providerInput = withHostileFields(goodProvider, {
  id: hostileString(300),
  displayName: hostileString(300),
  identityProvider: fc.oneof(fc.constantFrom(...IDENTITY_PROVIDER_NAMES), hostileString(20)),
  grantType: fc.oneof(fc.constantFrom('AUTHORIZATION_CODE', 'CLIENT_CREDENTIALS'), hostileString(20)),
  clientId: hostileString(1100),
  clientSecret: hostileString(5000),
  scopes: hostileScopes,
  parameters: hostileParameters,
});
const providerPatch = withHostileFields(
  fc.record(
    {
      displayName: goodDisplayName,
      clientId: fc.constantFrom('client-2', 'Iv1.def'),
      clientSecret: fc.constantFrom('rotated'),
      scopes: fc.array(fc.constantFrom('read', 'write'), { maxLength: 2 }),
    },
    { requiredKeys: [] },
  ),
  {
    displayName: hostileString(300),
    clientId: hostileString(1100),
    clientSecret: hostileString(5000),
    scopes: hostileScopes,
    parameters: hostileParameters,
    id: hostileString(20),
    grantType: fc.constant('CLIENT_CREDENTIALS'),
  },
);
const connectionInput = withHostileFields(
  fc.record({ id: idArb, displayName: fc.option(goodDisplayName, { nil: undefined }) }, { requiredKeys: ['id'] }),
  {
    id: hostileString(300),
    displayName: hostileString(300),
    clientId: fc.oneof(fc.constant('own-client'), hostileString(1100)),
    clientSecret: fc.oneof(fc.constant('own-secret'), hostileString(5000)),
  },
);
const policyInput = withHostileFields(
  fc.record(
    {
      id: idArb,
      kind: fc.constantFrom('USER', 'GROUP', 'SERVICE_PRINCIPAL', 'MANAGED_IDENTITY'),
      objectId: fc.constantFrom('alice', '00000000-0000-0000-0000-000000000001', 'ö'.repeat(256)),
      tenantId: fc.option(fc.constantFrom('contoso', 'tenant-1'), { nil: undefined }),
      appIds: fc.option(fc.array(fc.constantFrom('app-1', 'app-2'), { maxLength: 3 }), { nil: undefined }),
      issuer: fc.option(fc.constantFrom('https://login.example.com/t1/v2.0', 'http://127.0.0.1:4555'), {
        nil: undefined,
      }),
    },
    { requiredKeys: ['id', 'kind', 'objectId'] },
  ),
  {
    id: hostileString(300),
    kind: fc.constantFrom('user', 'ADMIN', ''),
    objectId: hostileString(300),
    tenantId: hostileString(300),
    appIds: fc.oneof(
      fc.array(hostileString(300), { minLength: 1, maxLength: 3 }),
      fc.constant(Array.from({ length: 101 }, (_, i) => `app-${i}`)),
    ),
    issuer: fc.oneof(
      hostileString(300),
      fc.constantFrom('login.example.com', ' https://login.example.com', '/relative'),
    ),
  },
);

function pick<T>(items: readonly T[], t: Target, name: (item: T) => string): string {
  if ('name' in t || items.length === 0) return 'name' in t ? t.name : 'no-such-thing';
  return name(items[t.existing % items.length]!);
}

/** What a success must have kept exactly as sent (GraphQL wraps a lone value given for a list). */
function expectStoredAsSent(view: View, input: Record<string, unknown>, fallbackDisplayName: string | null): void {
  for (const k of ['id', 'clientId', 'objectId', 'tenantId', 'kind', 'issuer'] as const)
    if (typeof input[k] === 'string') expect(view[k], k).toBe(input[k]);
  if (typeof input['displayName'] === 'string') expect(view['displayName']).toBe(input['displayName']);
  else if (fallbackDisplayName !== null && 'displayName' in view) expect(view['displayName']).toBe(fallbackDisplayName);
  if (typeof input['clientSecret'] === 'string' && input['clientSecret'] !== '')
    expect(view['hasClientSecret']).toBe(true);
  const asList = (v: unknown) => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);
  // null is "keep" on updates and "none" on creates: only given lists are compared.
  if (input['scopes'] !== undefined && input['scopes'] !== null)
    expect(view['scopes']).toEqual([...new Set(asList(input['scopes']))]);
  if (input['appIds'] !== undefined && input['appIds'] !== null)
    expect(view['appIds']).toEqual(asList(input['appIds']));
  if (Array.isArray(input['parameters'])) {
    const stored = new Map((view['parameters'] as { name: string; value: string }[]).map((p) => [p.name, p.value]));
    for (const p of input['parameters'] as { name: string; value: string | null }[]) {
      if (!p.value) continue;
      // Host names are stored lower-cased; everything else as given.
      expect([p.value, p.value.toLowerCase()], `parameter ${p.name}`).toContain(stored.get(p.name));
    }
  }
}

/** An accepted update: the version it expected (if any) was current, it moved by one, it reads back as returned. */
async function expectAcceptedUpdate(
  before: View | undefined,
  updated: View,
  sent: Record<string, unknown>,
  expected: unknown,
  readBack: () => Promise<View | null>,
): Promise<void> {
  expect(before).toBeDefined();
  if (expected !== undefined && expected !== null) expect(expected).toBe(before!['version']);
  expect(updated['version']).toBe(before!['version'] + 1);
  expectStoredAsSent(updated, sent, null);
  expect(await readBack()).toEqual(updated);
}

interface Model {
  readonly providers: Map<string, View>;
  readonly connections: Map<string, View>;
  readonly seeds: ReadonlySet<string>;
}

// PostgreSQL only when reachable (requirePgOrSkip throws when CI=true and it is not).
describe.each([{ store: 'SQLite', pg: false }, ...(hasPg ? [{ store: 'PostgreSQL', pg: true }] : [])])(
  'hostile management input on $store',
  ({ pg }) => {
    let t: TestApp;
    let auth: AuthServer;
    let idp: JwtIssuer;
    let schema: PgSchema | null = null;
    const model: Model = { providers: new Map(), connections: new Map(), seeds: new Set(['fz-ac', 'fz-cc']) };
    const counts: Record<string, number> = {};

    async function call(query: string, variables: Record<string, unknown>): Promise<Outcome> {
      const res = await t.admin(query, variables);
      expect(res.status, JSON.stringify(res.body)).toBeLessThan(500);
      if (res.body.errors?.length) {
        for (const e of res.body.errors) expect(REFUSAL_CODES, JSON.stringify(e)).toContain(e.extensions?.code);
        expect([200, 400]).toContain(res.status);
        return { ok: false, code: res.body.errors[0].extensions.code };
      }
      expect(res.status).toBe(200);
      return { ok: true, data: res.body.data };
    }

    async function readProvider(id: string): Promise<View | null> {
      const r = await call(Q.provider, { id });
      if (!r.ok) throw new Error(`reading provider back failed: ${r.code}`);
      return r.data.credentialProvider;
    }

    async function readConnection(providerId: string, id: string): Promise<View | null> {
      const r = await call(Q.connection, { p: providerId, id });
      if (!r.ok) throw new Error(`reading connection back failed: ${r.code}`);
      return r.data.connection;
    }

    /** Every provider, connection and policy in the store, through the paged listing. */
    async function listEverything(): Promise<{ providers: Map<string, View>; connections: Map<string, View> }> {
      const providers = new Map<string, View>();
      const connections = new Map<string, View>();
      let after: string | null = null;
      do {
        const r = await call(
          `query($after: String) { credentialProviders(first: 500, after: $after) { nextCursor items { ${PROVIDER} connections(first: 500) { nextCursor items { ${CONNECTION} } } } } }`,
          { after },
        );
        if (!r.ok) throw new Error(r.code);
        const page = r.data.credentialProviders;
        for (const { connections: cs, ...p } of page.items) {
          providers.set(p.id, p);
          expect(cs.nextCursor).toBeNull();
          for (const c of cs.items) connections.set(keyOf(p.id, c.id), c);
        }
        after = page.nextCursor;
      } while (after !== null);
      return { providers, connections };
    }

    const providerList = () => [...model.providers.values()];
    const connectionList = () => [...model.connections.values()];

    beforeAll(async () => {
      [auth, idp] = await Promise.all([startAuthServer(), startJwtIssuer()]);
      let storeUrl: string | undefined;
      if (pg) {
        schema = await freshPgSchema('hostile_admin');
        storeUrl = `${schema.url}?options=${encodeURIComponent(`-c search_path=${schema.schema}`)}`;
      }
      t = await startTestApp(
        {
          identity: { issuers: [idp.issuerConfig()] },
          consent: { allowedRedirectOrigins: [APP_ORIGIN] },
          limits: { providersPerInstance: 400, connectionsPerProvider: 200, accessPoliciesPerConnection: 6 },
        },
        storeUrl ? { storeUrl } : {},
      );
      const seeds = [
        {
          id: 'fz-ac',
          identityProvider: 'oidc',
          grantType: 'AUTHORIZATION_CODE',
          clientId: auth.clients.web.clientId,
          clientSecret: auth.clients.web.clientSecret,
          scopes: ['openid'],
          parameters: [{ name: 'issuer', value: auth.issuer }],
        },
        {
          id: 'fz-cc',
          identityProvider: 'oidc',
          grantType: 'CLIENT_CREDENTIALS',
          clientId: auth.clients.service.clientId,
          clientSecret: auth.clients.service.clientSecret,
          parameters: [{ name: 'issuer', value: auth.issuer }],
        },
      ];
      for (const input of seeds) {
        const r = await call(Q.createProvider, { input });
        if (!r.ok) throw new Error(`seed provider: ${r.code}`);
        model.providers.set(input.id, r.data.createCredentialProvider);
      }
      for (const p of ['fz-ac', 'fz-cc']) {
        const r = await call(Q.createConnection, { p, input: { id: 'c1' } });
        if (!r.ok) throw new Error(`seed connection: ${r.code}`);
        model.connections.set(keyOf(p, 'c1'), r.data.createConnection);
      }
    }, 60_000);

    afterAll(async () => {
      console.info(`[fuzz] ${pg ? 'PostgreSQL' : 'SQLite'} outcomes: ${JSON.stringify(counts)}`);
      await t?.close();
      await auth?.close();
      await idp?.close();
      await schema?.drop();
    });

    /** PostgreSQL round trips cost about twice as much: half the cases keep each property near 3 s. */
    const runs = (n: number) => (pg ? Math.round(n / 2) : n);

    const tally = (what: string, o: Outcome) => {
      const k = `${what}:${o.ok ? 'ok' : o.code}`;
      counts[k] = (counts[k] ?? 0) + 1;
    };

    describe('text no store keeps as given (regressions)', () => {
      it('refuses a lone surrogate in a variable with BAD_USER_INPUT and stores nothing (SQLite kept three U+FFFD)', async () => {
        const res = await t.admin(Q.createProvider, {
          input: { ...PROVIDER_BASES[0], id: 'surrogate-1', displayName: 'x\ud800y', clientId: 'c', clientSecret: 's' },
        });
        expect(res.status).toBe(400);
        expect(res.body.errors![0]).toEqual({
          message: '$input.displayName contains U+0000 or an unpaired surrogate, which no text field accepts',
          extensions: { code: 'BAD_USER_INPUT' },
        });
        expect(await readProvider('surrogate-1')).toBeNull();
      });

      it('refuses U+0000 in a variable or a literal with BAD_USER_INPUT (PostgreSQL failed with INTERNAL_SERVER_ERROR)', async () => {
        const variable = await t.admin(Q.createConnection, {
          p: 'fz-ac',
          input: { id: 'nul-1', displayName: 'a\u0000b' },
        });
        expect(variable.status).toBe(400);
        expect(variable.body.errors![0]).toEqual({
          message: '$input.displayName contains U+0000 or an unpaired surrogate, which no text field accepts',
          extensions: { code: 'BAD_USER_INPUT' },
        });
        const literal = await t.admin('{ credentialProvider(id: "fz-ac\\u0000") { id } }');
        expect(literal.status).toBe(400);
        expect(literal.body.errors![0]).toEqual({
          message: 'a string in the document contains U+0000 or an unpaired surrogate, which no text field accepts',
          extensions: { code: 'BAD_USER_INPUT' },
        });
        const key = await t.admin(Q.createConnection, { p: 'fz-ac', input: { id: 'nul-2', ['a\u0000']: 1 } });
        expect(key.status).toBe(400);
        expect(key.body.errors![0].message).toBe(
          '$input contains U+0000 or an unpaired surrogate, which no text field accepts',
        );
        expect(await readConnection('fz-ac', 'nul-1')).toBeNull();
        expect(await readConnection('fz-ac', 'nul-2')).toBeNull();
      });

      it('refuses a cursor that decodes to U+0000 with BAD_USER_INPUT (PostgreSQL failed with INTERNAL_SERVER_ERROR)', async () => {
        const res = await t.admin(Q.page, { after: Buffer.from('\u0000').toString('base64url') });
        expect(res.body.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'after' });
      });

      it('answers a path parameter holding a control character with 400 (PostgreSQL failed with 500)', async () => {
        const jwt = await idp.sign({ sub: 'alice' });
        for (const path of [
          '/tokens/fz-cc/c1%00',
          '/tokens/fz-cc%00/c1',
          '/tokens/fz-cc/c%0A1',
          '/oauth/login/abc%00',
        ]) {
          const res = await fetch(`${t.url}${path}`, {
            headers: { authorization: `Bearer ${jwt}` },
            redirect: 'manual',
          });
          expect(res.status, path).toBe(400);
          expect(await res.json()).toEqual({ error: 'BAD_USER_INPUT', message: 'malformed path' });
        }
      });
    });

    describe('management API', () => {
      it('createCredentialProvider: stores exactly what it accepts, refuses the rest and stores nothing', async () => {
        await runProperty(
          `createCredentialProvider (${pg ? 'PostgreSQL' : 'SQLite'})`,
          fc.asyncProperty(providerInput, async (raw) => {
            const before = typeof raw['id'] === 'string' ? model.providers.get(raw['id']) : undefined;
            const r = await call(Q.createProvider, { input: raw });
            tally('createProvider', r);
            if (r.ok) {
              const created = r.data.createCredentialProvider;
              expect(before).toBeUndefined();
              expectStoredAsSent(created, raw, typeof raw['id'] === 'string' ? raw['id'] : null);
              expect(created.version).toBe(1);
              expect(await readProvider(created.id)).toEqual(created);
              model.providers.set(created.id, created);
            } else if (before) {
              expect(await readProvider(before['id'])).toEqual(before);
            } else if (storable(raw['id'])) {
              expect(await readProvider(raw['id'])).toBeNull();
            }
          }),
          runs(400),
        );
      });

      it('updateCredentialProvider: applies an accepted patch exactly, a refused one not at all', async () => {
        await runProperty(
          `updateCredentialProvider (${pg ? 'PostgreSQL' : 'SQLite'})`,
          fc.asyncProperty(target, providerPatch, expectedVersion, async (which, raw, v) => {
            const id = pick(providerList(), which, (p) => p['id']);
            const before = model.providers.get(id);
            const r = await call(Q.updateProvider, { id, input: raw, v });
            tally('updateProvider', r);
            if (r.ok) {
              const updated = r.data.updateCredentialProvider;
              await expectAcceptedUpdate(before, updated, raw, v, () => readProvider(id));
              model.providers.set(id, updated);
            } else if (before) {
              if (
                typeof v === 'number' &&
                Number.isInteger(v) &&
                Math.abs(v) < 2 ** 31 &&
                v !== before['version'] &&
                r.code !== 'BAD_USER_INPUT'
              )
                expect(r.code).toBe('VERSION_CONFLICT');
              expect(await readProvider(id)).toEqual(before);
            } else {
              expect(['NOT_FOUND', 'BAD_USER_INPUT']).toContain(r.code);
            }
          }),
          runs(250),
        );
      });

      it('createConnection / updateConnection: exact round trip or no change', async () => {
        await runProperty(
          `createConnection/updateConnection (${pg ? 'PostgreSQL' : 'SQLite'})`,
          fc.asyncProperty(
            fc.boolean(),
            target,
            target,
            connectionInput,
            expectedVersion,
            async (create, whichProvider, whichConnection, raw, v) => {
              if (create) {
                const p = pick(providerList(), whichProvider, (x) => x['id']);
                const before = typeof raw['id'] === 'string' ? model.connections.get(keyOf(p, raw['id'])) : undefined;
                const r = await call(Q.createConnection, { p, input: raw });
                tally('createConnection', r);
                if (r.ok) {
                  const created = r.data.createConnection;
                  expect(before).toBeUndefined();
                  expect(model.providers.has(p)).toBe(true);
                  expectStoredAsSent(created, raw, typeof raw['id'] === 'string' ? raw['id'] : null);
                  expect(created.accessPolicies).toEqual([
                    {
                      id: 'managed-identity',
                      kind: 'MANAGED_IDENTITY',
                      objectId: 'credential-gateway',
                      tenantId: null,
                      appIds: [],
                      issuer: null,
                    },
                  ]);
                  expect(await readConnection(p, created.id)).toEqual(created);
                  model.connections.set(keyOf(p, created.id), created);
                } else if (before) {
                  expect(await readConnection(p, before['id'])).toEqual(before);
                } else if (storable(p) && storable(raw['id'])) {
                  expect(await readConnection(p, raw['id'])).toBeNull();
                }
                return;
              }
              const c = connectionList();
              const key = 'name' in whichConnection || c.length === 0 ? null : c[whichConnection.existing % c.length]!;
              const p = key ? key['providerId'] : pick(providerList(), whichProvider, (x) => x['id']);
              const id = key ? key['id'] : 'name' in whichConnection ? whichConnection.name : 'c1';
              const { id: _ignored, ...patch } = raw;
              const before = model.connections.get(keyOf(p, id));
              const r = await call(Q.updateConnection, { p, id, input: patch, v });
              tally('updateConnection', r);
              if (r.ok) {
                const updated = r.data.updateConnection;
                await expectAcceptedUpdate(before, updated, patch, v, () => readConnection(p, id));
                model.connections.set(keyOf(p, id), updated);
              } else if (before) {
                expect(await readConnection(p, id)).toEqual(before);
              }
            },
          ),
          runs(400),
        );
      });

      it('createAccessPolicy / deleteAccessPolicy: exact round trip or no change', async () => {
        await runProperty(
          `createAccessPolicy/deleteAccessPolicy (${pg ? 'PostgreSQL' : 'SQLite'})`,
          fc.asyncProperty(
            fc.boolean(),
            target,
            policyInput,
            target,
            async (create, whichConnection, raw, whichPolicy) => {
              const c = connectionList();
              const conn = 'name' in whichConnection || c.length === 0 ? null : c[whichConnection.existing % c.length]!;
              const p = conn ? conn['providerId'] : 'fz-ac';
              const cid = conn ? conn['id'] : 'name' in whichConnection ? whichConnection.name : 'c1';
              if (create) {
                const r = await call(Q.createPolicy, { p, c: cid, input: raw });
                tally('createAccessPolicy', r);
                const after = storable(p) && storable(cid) ? await readConnection(p, cid) : null;
                if (r.ok) {
                  expect(conn).not.toBeNull();
                  const created = r.data.createAccessPolicy;
                  expectStoredAsSent(created, raw, null);
                  expect(after!['accessPolicies']).toContainEqual(created);
                  expect(after!['accessPolicies']).toHaveLength(conn!['accessPolicies'].length + 1);
                  model.connections.set(keyOf(p, cid), after!);
                } else if (conn) {
                  expect(after).toEqual(conn);
                }
                return;
              }
              const policyId = conn
                ? pick(conn['accessPolicies'] as View[], whichPolicy, (x) => x['id'])
                : 'managed-identity';
              const r = await call(Q.deletePolicy, { p, c: cid, id: policyId });
              tally('deleteAccessPolicy', r);
              const after = storable(p) && storable(cid) ? await readConnection(p, cid) : null;
              if (r.ok) {
                expect(conn!['accessPolicies'].map((x: View) => x['id'])).toContain(policyId);
                expect(after!['accessPolicies'].map((x: View) => x['id'])).not.toContain(policyId);
                model.connections.set(keyOf(p, cid), after!);
              } else if (conn) {
                expect(after).toEqual(conn);
              }
            },
          ),
          runs(300),
        );
      });

      it('pages (first, after) of any value: a page or BAD_USER_INPUT', async () => {
        const first = fc.oneof(
          fc.constant(undefined),
          fc.constant(null),
          fc.integer({ min: -2, max: 600 }),
          fc.integer(),
          fc.constantFrom(2 ** 31, 1.5, '10', true),
        );
        const cursor = fc.oneof(
          fc.constant(undefined),
          fc.constant(null),
          hostileString(40),
          idArb.map((id) => Buffer.from(id).toString('base64url')),
          fc.constantFrom('', '=', 'AAAA', 'Zm9v', 'Zm9v=', 'ZmE', Buffer.from('\u0000').toString('base64url')),
        );
        await runProperty(
          `credentialProviders/connections paging (${pg ? 'PostgreSQL' : 'SQLite'})`,
          fc.asyncProperty(first, cursor, first, cursor, async (f, a, cf, ca) => {
            const r = await call(Q.page, { first: f, after: a, cFirst: cf, cAfter: ca });
            tally('page', r);
            if (!r.ok) {
              expect(r.code).toBe('BAD_USER_INPUT');
              return;
            }
            const page = r.data.credentialProviders;
            expect(page.items.length).toBeLessThanOrEqual(typeof f === 'number' ? f : 50);
            for (const item of page.items) expect(model.providers.has(item.id)).toBe(true);
          }),
          runs(300),
        );
      });

      it('createLoginLink: a link only for an allowlisted post-login origin', async () => {
        const url = fc.oneof(
          fc.constantFrom(`${APP_ORIGIN}/done`, `${APP_ORIGIN}`, 'HTTPS://APP.EXAMPLE.COM/x', `${APP_ORIGIN}:443/x`),
          fc.webUrl({ withQueryParameters: true, withFragments: true }),
          fc
            .tuple(
              fc.constantFrom('https://', 'http://', '//', 'javascript:', 'data:text/html,', 'https:\\\\', ''),
              fc.constantFrom(
                'app.example.com',
                'app.example.com.',
                'app.example.com:8443',
                'evil.com',
                'app.example.com@evil.com',
                'evil.com#@app.example.com',
                'xn--pp-ola.example.com',
                'аpp.example.com',
              ),
              fc.constantFrom('', '/', '/x?y=1', '\\@evil.com'),
            )
            .map((parts) => parts.join('')),
          hostileString(80),
        );
        await runProperty(
          `createLoginLink (${pg ? 'PostgreSQL' : 'SQLite'})`,
          fc.asyncProperty(target, url, async (which, redirect) => {
            const c = connectionList();
            const conn = 'name' in which || c.length === 0 ? null : c[which.existing % c.length]!;
            const r = await call(Q.loginLink, {
              p: conn ? conn['providerId'] : 'fz-ac',
              c: conn ? conn['id'] : 'name' in which ? which.name : 'c1',
              r: redirect,
            });
            tally('createLoginLink', r);
            let origin: string | null = null;
            try {
              const u = new URL(redirect);
              if ((u.protocol === 'https:' || u.protocol === 'http:') && !u.username && !u.password) origin = u.origin;
            } catch {
              origin = null;
            }
            const allowed = origin === APP_ORIGIN || origin === new URL(t.url).origin;
            if (r.ok) {
              expect(allowed, redirect).toBe(true);
              expect(r.data.createLoginLink.url.startsWith(`${t.url}/oauth/login/`)).toBe(true);
            } else if (!allowed) {
              expect(r.code).toBe('BAD_USER_INPUT');
            }
          }),
          runs(300),
        );
      });

      it('deletes with any id and expectedVersion: removed exactly when the version matches', async () => {
        await runProperty(
          `deleteConnection/deleteCredentialProvider (${pg ? 'PostgreSQL' : 'SQLite'})`,
          fc.asyncProperty(fc.boolean(), target, expectedVersion, async (provider, which, v) => {
            if (provider) {
              // The two seeds stay: the consent property below needs them.
              const id = pick(
                providerList().filter((p) => !model.seeds.has(p['id'])),
                which,
                (p) => p['id'],
              );
              const before = model.providers.get(id);
              const r = await call(Q.deleteProvider, { id, v });
              tally('deleteProvider', r);
              if (r.ok) {
                expect(before).toBeDefined();
                if (v !== undefined && v !== null) expect(v).toBe(before!['version']);
                expect(await readProvider(id)).toBeNull();
                model.providers.delete(id);
                for (const [k, c] of model.connections) if (c['providerId'] === id) model.connections.delete(k);
              } else if (before) {
                expect(await readProvider(id)).toEqual(before);
              }
              return;
            }
            const c = connectionList().filter((x) => x['id'] !== 'c1');
            const conn = 'name' in which || c.length === 0 ? null : c[which.existing % c.length]!;
            const p = conn ? conn['providerId'] : 'fz-ac';
            const id = conn ? conn['id'] : 'name' in which ? which.name : 'no-such-connection';
            const r = await call(Q.deleteConnection, { p, id, v });
            tally('deleteConnection', r);
            if (r.ok) {
              expect(conn).not.toBeNull();
              if (v !== undefined && v !== null) expect(v).toBe(conn!['version']);
              expect(await readConnection(p, id)).toBeNull();
              model.connections.delete(keyOf(p, id));
            } else if (conn) {
              expect(await readConnection(p, id)).toEqual(conn);
            }
          }),
          runs(250),
        );
      });

      it('the store holds exactly what was accepted, nothing that was refused', async () => {
        const stored = await listEverything();
        expect([...stored.providers.keys()].sort()).toEqual([...model.providers.keys()].sort());
        for (const [id, view] of model.providers) expect(stored.providers.get(id)).toEqual(view);
        expect([...stored.connections.keys()].sort()).toEqual([...model.connections.keys()].sort());
        for (const [key, view] of model.connections) expect(stored.connections.get(key)).toEqual(view);
        // The run exercised both outcomes of every operation worth having.
        for (const op of [
          'createProvider',
          'updateProvider',
          'createConnection',
          'createAccessPolicy',
          'page',
          'createLoginLink',
        ]) {
          expect(counts[`${op}:ok`] ?? 0, `${op} accepted at least once`).toBeGreaterThan(0);
          expect(
            Object.keys(counts).some((k) => k.startsWith(`${op}:`) && !k.endsWith(':ok')),
            `${op} refused at least once`,
          ).toBe(true);
        }
      });

      // The browser-facing endpoints do not touch the store's management data: once is enough.
      if (!pg)
        it('the consent endpoints answer any query string or path token with a 4xx or an allowlisted redirect', async () => {
          const victim = await readConnection('fz-ac', 'c1');
          expect(victim!['status']).toBe('NOT_CONNECTED');
          /** Raw request (no URL normalization: `..`, `%ZZ` and friends reach the server as sent). */
          const get = (path: string, method = 'GET') =>
            new Promise<{ status: number; location: string | undefined }>((resolve, reject) => {
              const u = new URL(t.url);
              const req = request({ host: u.hostname, port: u.port, path, method }, (res) => {
                res.resume();
                res.on('end', () => resolve({ status: res.statusCode!, location: res.headers.location }));
              });
              req.on('error', (e: NodeJS.ErrnoException) => {
                // Past Node's header limit the server answers 431 and closes while a long request line
                // may still be on its way: the client then sees a reset instead. Both are refusals.
                if (e.code === 'ECONNRESET' && Buffer.byteLength(path) > MAX_HEADER_BYTES)
                  resolve({ status: 431, location: undefined });
                else reject(e);
              });
              req.end();
            });
          /** A live login link and, once opened, the state it started: the callback's one way in. */
          async function liveState(): Promise<{ link: string; state: string }> {
            const r = await call(Q.loginLink, { p: 'fz-ac', c: 'c1', r: `${APP_ORIGIN}/done` });
            if (!r.ok) throw new Error(r.code);
            const link = new URL(r.data.createLoginLink.url).pathname;
            const opened = await get(link);
            expect(opened.status).toBe(302);
            return { link, state: new URL(opened.location!).searchParams.get('state')! };
          }

          const rawChunk = fc.oneof(
            // UTF-8 percent-encoding that, unlike encodeURIComponent, takes lone surrogates too (as U+FFFD).
            hostileString(16).map((s) =>
              [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''),
            ),
            fc.constantFrom(
              '%ZZ',
              '%',
              '%0',
              '%00',
              '%0d%0a',
              '%ED%A0%80',
              '%C0%AF',
              '..',
              '%2e%2e',
              '..%2f',
              '%2F',
              '+',
              '&',
              '=',
              ';',
              '%23',
              '%3F',
            ),
            fc.stringMatching(/^[A-Za-z0-9_-]{0,50}$/),
          );
          const rawText = fc.array(rawChunk, { maxLength: 4 }).map((parts) => parts.join(''));
          const queryKey = fc.oneof(
            fc.constantFrom(
              'state',
              'code',
              'error',
              'error_description',
              'iss',
              'redirect_uri',
              'providerId',
              'connectionId',
              'postLoginRedirectUrl',
              'status',
            ),
            rawText,
          );
          const queryValue = fc.oneof(
            rawText,
            fc.constantFrom(
              'access_denied',
              'invalid_request',
              'Server_Error',
              encodeURIComponent('https://evil.example.com/'),
              encodeURIComponent(auth.issuer),
            ),
          );
          const probe = fc.oneof(
            {
              weight: 3,
              arbitrary: fc.record({
                kind: fc.constant('callback' as const),
                query: fc.array(fc.tuple(queryKey, queryValue), { maxLength: 5 }),
                live: fc.boolean(),
              }),
            },
            {
              weight: 2,
              arbitrary: fc.record({ kind: fc.constant('login' as const), token: rawText, live: fc.boolean() }),
            },
          );

          const callbacks = { redirected: 0, refused: 0 };
          await runProperty(
            'consent endpoints (/oauth/callback?…, /oauth/login/<token>)',
            fc.asyncProperty(probe, fc.constantFrom('GET', 'GET', 'GET', 'POST', 'HEAD'), async (p, method) => {
              let path: string;
              let redirectOrigins: string[];
              if (p.kind === 'callback') {
                const pairs = p.query.map(([k, v]) => `${k}=${v}`);
                if (p.live) pairs.unshift(`state=${(await liveState()).state}`);
                path = `/oauth/callback?${pairs.join('&')}`;
                redirectOrigins = [APP_ORIGIN];
              } else {
                path = `/oauth/login/${p.live ? (await liveState()).link.split('/').pop()! + p.token : p.token}`;
                redirectOrigins = [new URL(auth.issuer).origin];
              }
              const res = await get(path, method);
              expect(res.status, path).toBeLessThan(500);
              if (res.status === 302) {
                expect(method).toBe('GET');
                expect(redirectOrigins, `${path} -> ${res.location}`).toContain(new URL(res.location!).origin);
                if (p.kind === 'callback') callbacks.redirected++;
              } else {
                expect(res.status, path).toBeGreaterThanOrEqual(400);
                if (p.kind === 'callback') callbacks.refused++;
              }
            }),
            300,
          );
          console.info(`[fuzz] consent callbacks: ${JSON.stringify(callbacks)}`);
          expect(callbacks.redirected).toBeGreaterThan(0);
          expect(callbacks.refused).toBeGreaterThan(0);
          // Nothing a stranger can send there connects, or otherwise changes, the connection.
          expect(await readConnection('fz-ac', 'c1')).toEqual(victim);
        });
    });
  },
);
