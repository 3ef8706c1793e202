import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, startTestApp, type TestApp } from './support/app.js';

const SECRET = 'provider-client-secret-7f3c9e1a5b';
const CC_SECRET = 'connection-client-secret-a91b2c3d';

const PROVIDER_FIELDS = `id displayName identityProvider grantType clientId hasClientSecret scopes
  parameters { name value } redirectUrl version createdAt updatedAt`;

const CREATE_PROVIDER = `mutation($input: CreateCredentialProviderInput!) {
  createCredentialProvider(input: $input) { ${PROVIDER_FIELDS} } }`;

const CREATE_CONNECTION = `mutation($p: ID!, $input: CreateConnectionInput!) {
  createConnection(providerId: $p, input: $input) {
    id providerId displayName status error { code message } hasClientSecret clientId version
    accessPolicies { id kind objectId tenantId appIds } } }`;

const LIST = `query($first: Int, $after: String) {
  credentialProviders(first: $first, after: $after) {
    nextCursor
    items { id hasClientSecret connections(first: 10) { nextCursor items { id status accessPolicies { id kind objectId } } } }
  } }`;

function genericProvider(id: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    displayName: `Provider ${id}`,
    identityProvider: 'oauth2',
    grantType: 'AUTHORIZATION_CODE',
    clientId: `client-${id}`,
    clientSecret: SECRET,
    scopes: ['read', 'write'],
    parameters: [
      { name: 'authorizationUrl', value: 'https://idp.example.com/authorize' },
      { name: 'tokenUrl', value: 'https://idp.example.com/token' },
    ],
    ...extra,
  };
}

function codeOf(body: { errors?: any[] }): string | undefined {
  return body.errors?.[0]?.extensions?.code;
}

describe('management API', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({
      limits: { providersPerInstance: 8, connectionsPerProvider: 3, accessPoliciesPerConnection: 2 },
      server: { publicUrl: 'https://gateway.example.com' },
    });
  });
  afterAll(() => t?.close());

  describe('authentication', () => {
    it('refuses a request without credentials with 401 UNAUTHENTICATED', async () => {
      const res = await t.admin('{ credentialProviders { items { id } } }', {}, {});
      expect(res.status).toBe(401);
      expect(codeOf(res.body)).toBe('UNAUTHENTICATED');
      expect(res.body.data).toBeUndefined();
    });

    it('refuses a wrong API key with 401 UNAUTHENTICATED', async () => {
      const res = await t.admin('{ credentialProviders { items { id } } }', {}, { 'x-api-key': `${ADMIN_KEY}x` });
      expect(res.status).toBe(401);
      expect(codeOf(res.body)).toBe('UNAUTHENTICATED');
    });

    it('serves introspection without credentials so Sandbox can draw the schema', async () => {
      const res = await t.admin('{ __schema { queryType { name } } }', {}, {});
      expect(res.status).toBe(200);
      expect(res.body.data.__schema.queryType.name).toBe('Query');
    });

    it('does not let a mutation ride along with introspection', async () => {
      const res = await t.admin('mutation { __typename deleteCredentialProvider(id: "x") }', {}, {});
      expect(res.status).toBe(401);
      expect(codeOf(res.body)).toBe('UNAUTHENTICATED');
    });
  });

  it('lists the identity provider catalog', async () => {
    const res = await t.admin(
      '{ identityProviders { name grantTypes parameters { name type level required } quirks { pkce scopeSeparator } } }',
    );
    const names = res.body.data.identityProviders.map((p: any) => p.name);
    expect(names.length).toBeGreaterThanOrEqual(20);
    expect(names).toEqual(
      expect.arrayContaining(['oauth2', 'oauth2pkce', 'oidc', 'entra', 'github', 'google', 'slack']),
    );
    const entra = res.body.data.identityProviders.find((p: any) => p.name === 'entra');
    expect(entra.parameters).toContainEqual({ name: 'tenantId', type: 'STRING', level: 'PROVIDER', required: true });
  });

  describe('credential providers', () => {
    it('creates a provider and never returns its secret', async () => {
      const res = await t.admin(CREATE_PROVIDER, { input: genericProvider('github-01') });
      expect(res.body.errors).toBeUndefined();
      const p = res.body.data.createCredentialProvider;
      expect(p).toMatchObject({
        id: 'github-01',
        displayName: 'Provider github-01',
        identityProvider: 'oauth2',
        grantType: 'AUTHORIZATION_CODE',
        clientId: 'client-github-01',
        hasClientSecret: true,
        scopes: ['read', 'write'],
        redirectUrl: 'https://gateway.example.com/oauth/callback',
        version: 1,
      });
      expect(p.parameters).toEqual(
        expect.arrayContaining([{ name: 'tokenUrl', value: 'https://idp.example.com/token' }]),
      );
      expect(JSON.stringify(res.body)).not.toContain(SECRET);
    });

    it('refuses a duplicate id with ALREADY_EXISTS', async () => {
      const res = await t.admin(CREATE_PROVIDER, { input: genericProvider('github-01') });
      expect(codeOf(res.body)).toBe('ALREADY_EXISTS');
    });

    it.each([
      ['an id with a slash', { id: 'a/b' }, 'input.id'],
      ['an unknown identity provider', { identityProvider: 'nope' }, 'input.identityProvider'],
      [
        'a missing required parameter',
        { parameters: [{ name: 'authorizationUrl', value: 'https://idp.example.com/a' }] },
        'input.parameters.tokenUrl',
      ],
      [
        'a token URL that is not http(s)',
        {
          parameters: [
            { name: 'authorizationUrl', value: 'https://idp.example.com/a' },
            { name: 'tokenUrl', value: 'javascript:alert(1)' },
          ],
        },
        'input.parameters.tokenUrl',
      ],
    ])('refuses %s with BAD_USER_INPUT naming the field, and stores nothing', async (_name, change, field) => {
      const input = genericProvider('bad-01', change);
      const res = await t.admin(CREATE_PROVIDER, { input });
      expect(codeOf(res.body)).toBe('BAD_USER_INPUT');
      expect(res.body.errors![0].extensions.field).toBe(field);
      expect(res.body.errors![0].message.startsWith(field)).toBe(true);
      const after = await t.admin('query($id: ID!) { credentialProvider(id: $id) { id } }', { id: input.id });
      expect(after.body.data.credentialProvider).toBeNull();
    });

    it('does not echo a value typed into the wrong field back in the error', async () => {
      const res = await t.admin(CREATE_PROVIDER, {
        input: genericProvider('echo-01', { grantType: 'secret-typed-here-42' }),
      });
      expect(res.status).toBe(400);
      expect(codeOf(res.body)).toBe('BAD_USER_INPUT');
      expect(JSON.stringify(res.body)).not.toContain('secret-typed-here-42');
      expect(res.body.errors![0].message).toContain('input.grantType');
    });

    it('refuses a parameter given twice', async () => {
      const input = genericProvider('dup-param', {
        parameters: [
          { name: 'authorizationUrl', value: 'https://idp.example.com/a' },
          { name: 'tokenUrl', value: 'https://idp.example.com/t' },
          { name: 'tokenUrl', value: 'https://idp.example.com/u' },
        ],
      });
      const res = await t.admin(CREATE_PROVIDER, { input });
      expect(codeOf(res.body)).toBe('BAD_USER_INPUT');
      expect(res.body.errors![0].extensions.field).toBe('input.parameters[2].name');
    });

    it('updates with the expected version and refuses a stale one with VERSION_CONFLICT', async () => {
      const update = `mutation($v: Int) { updateCredentialProvider(id: "github-01", input: { displayName: "GitHub", clientSecret: "rotated-secret-123" }, expectedVersion: $v) { displayName version hasClientSecret } }`;
      const stale = await t.admin(update, { v: 7 });
      expect(codeOf(stale.body)).toBe('VERSION_CONFLICT');
      const ok = await t.admin(update, { v: 1 });
      expect(ok.body.data.updateCredentialProvider).toEqual({
        displayName: 'GitHub',
        version: 2,
        hasClientSecret: true,
      });
      const again = await t.admin(update, { v: 1 });
      expect(codeOf(again.body)).toBe('VERSION_CONFLICT');
    });

    it('refuses to change the identity provider or grant type of an existing provider', async () => {
      const res = await t.admin(
        `mutation { updateCredentialProvider(id: "github-01", input: { scopes: ["has space"] }) { id } }`,
      );
      expect(codeOf(res.body)).toBe('BAD_USER_INPUT');
    });

    it('answers NOT_FOUND for updates and deletes of a missing provider', async () => {
      const upd = await t.admin(
        `mutation { updateCredentialProvider(id: "missing", input: { displayName: "x" }) { id } }`,
      );
      expect(codeOf(upd.body)).toBe('NOT_FOUND');
      const del = await t.admin(`mutation { deleteCredentialProvider(id: "missing") }`);
      expect(codeOf(del.body)).toBe('NOT_FOUND');
    });
  });

  describe('connections and access policies', () => {
    it("creates a NOT_CONNECTED connection with the gateway's managed identity policy", async () => {
      const res = await t.admin(CREATE_CONNECTION, {
        p: 'github-01',
        input: { id: 'auth-01', displayName: 'Team bot' },
      });
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data.createConnection).toEqual({
        id: 'auth-01',
        providerId: 'github-01',
        displayName: 'Team bot',
        status: 'NOT_CONNECTED',
        error: null,
        hasClientSecret: false,
        clientId: null,
        version: 1,
        accessPolicies: [
          {
            id: 'managed-identity',
            kind: 'MANAGED_IDENTITY',
            objectId: 'credential-gateway',
            tenantId: null,
            appIds: [],
          },
        ],
      });
    });

    it('refuses a client secret on an authorization-code connection', async () => {
      const res = await t.admin(CREATE_CONNECTION, {
        p: 'github-01',
        input: { id: 'auth-x', clientSecret: 's3cr3t-value' },
      });
      expect(codeOf(res.body)).toBe('BAD_USER_INPUT');
      expect(res.body.errors![0].extensions.field).toBe('input.clientSecret');
      expect(JSON.stringify(res.body)).not.toContain('s3cr3t-value');
    });

    it('answers NOT_FOUND for a connection of a missing provider', async () => {
      const res = await t.admin(CREATE_CONNECTION, { p: 'nope', input: { id: 'c' } });
      expect(codeOf(res.body)).toBe('NOT_FOUND');
    });

    it('adds access policies up to the limit, then LIMIT_EXCEEDED', async () => {
      const add = `mutation($id: ID!) { createAccessPolicy(providerId: "github-01", connectionId: "auth-01", input: { id: $id, kind: USER, objectId: "alice", tenantId: "t1", appIds: ["app-1"] }) { id kind objectId tenantId appIds } }`;
      const first = await t.admin(add, { id: 'alice' });
      expect(first.body.data.createAccessPolicy).toEqual({
        id: 'alice',
        kind: 'USER',
        objectId: 'alice',
        tenantId: 't1',
        appIds: ['app-1'],
      });
      const dup = await t.admin(add, { id: 'alice' });
      expect(codeOf(dup.body)).toBe('ALREADY_EXISTS');
      const over = await t.admin(add, { id: 'bob' });
      expect(codeOf(over.body)).toBe('LIMIT_EXCEEDED');
    });

    it('deletes an access policy, then NOT_FOUND for it', async () => {
      const del = `mutation { deleteAccessPolicy(providerId: "github-01", connectionId: "auth-01", id: "alice") }`;
      expect((await t.admin(del)).body.data.deleteAccessPolicy).toBe(true);
      expect(codeOf((await t.admin(del)).body)).toBe('NOT_FOUND');
    });

    it('caps connections per provider with LIMIT_EXCEEDED', async () => {
      await t.admin(CREATE_PROVIDER, { input: genericProvider('cap-01') });
      for (const id of ['c1', 'c2', 'c3']) {
        const ok = await t.admin(CREATE_CONNECTION, { p: 'cap-01', input: { id } });
        expect(ok.body.errors).toBeUndefined();
      }
      const over = await t.admin(CREATE_CONNECTION, { p: 'cap-01', input: { id: 'c4' } });
      expect(codeOf(over.body)).toBe('LIMIT_EXCEEDED');
    });

    it("keeps a client credentials connection's own secret write-only", async () => {
      const provider = genericProvider('cc-01', {
        grantType: 'CLIENT_CREDENTIALS',
        parameters: [{ name: 'tokenUrl', value: 'https://idp.example.com/token' }],
      });
      expect((await t.admin(CREATE_PROVIDER, { input: provider })).body.errors).toBeUndefined();
      const res = await t.admin(CREATE_CONNECTION, {
        p: 'cc-01',
        input: { id: 'daemon', clientId: 'daemon-app', clientSecret: CC_SECRET },
      });
      expect(res.body.data.createConnection).toMatchObject({
        status: 'CONNECTED',
        hasClientSecret: true,
        clientId: 'daemon-app',
      });
      expect(JSON.stringify(res.body)).not.toContain(CC_SECRET);
    });

    it.each([
      [
        'a control character in displayName',
        'github-01',
        { id: 'ctl-1', displayName: 'Team\u0007bot' },
        'input.displayName',
      ],
      [
        'a control character in clientId',
        'cc-01',
        { id: 'ctl-2', clientId: 'daemon\u001bapp', clientSecret: CC_SECRET },
        'input.clientId',
      ],
      [
        'whitespace in clientId',
        'cc-01',
        { id: 'ctl-3', clientId: 'daemon app', clientSecret: CC_SECRET },
        'input.clientId',
      ],
    ])('refuses %s of a connection as it does for a provider, and stores nothing', async (_name, p, input, field) => {
      const res = await t.admin(CREATE_CONNECTION, { p, input });
      expect(codeOf(res.body)).toBe('BAD_USER_INPUT');
      expect(res.body.errors![0].extensions.field).toBe(field);
      const read = await t.admin(`query($p: ID!, $id: ID!) { connection(providerId: $p, id: $id) { id } }`, {
        p,
        id: input.id,
      });
      expect(read.body.data?.connection ?? null).toBeNull();
    });

    it('refuses a control character in an updated connection displayName', async () => {
      const upd = `mutation { updateConnection(providerId: "github-01", id: "auth-01", input: { displayName: "Re\\u0007named" }) { displayName version } }`;
      const res = await t.admin(upd);
      expect(codeOf(res.body)).toBe('BAD_USER_INPUT');
      expect(res.body.errors![0].extensions.field).toBe('input.displayName');
    });

    it('updates a connection with version checks', async () => {
      const upd = `mutation($v: Int) { updateConnection(providerId: "github-01", id: "auth-01", input: { displayName: "Renamed" }, expectedVersion: $v) { displayName version } }`;
      expect(codeOf((await t.admin(upd, { v: 5 })).body)).toBe('VERSION_CONFLICT');
      expect((await t.admin(upd, { v: 1 })).body.data.updateConnection).toEqual({ displayName: 'Renamed', version: 2 });
    });
  });

  describe('listing', () => {
    it('pages providers with nextCursor until the end', async () => {
      const seen: string[] = [];
      let after: string | null = null;
      do {
        const res: any = await t.admin(LIST, { first: 2, after });
        expect(res.body.errors).toBeUndefined();
        const page: any = res.body.data.credentialProviders;
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((p: any) => p.id));
        after = page.nextCursor;
      } while (after);
      expect(seen).toEqual([...seen].sort());
      expect(seen).toEqual(expect.arrayContaining(['cap-01', 'cc-01', 'github-01']));
    });

    it('refuses a page size out of range with BAD_USER_INPUT', async () => {
      const res = await t.admin(LIST, { first: 0 });
      expect(codeOf(res.body)).toBe('BAD_USER_INPUT');
    });

    it('costs the same number of store queries for a page of 1 and a page of 5 providers', async () => {
      for (const id of ['list-a', 'list-b', 'list-c']) {
        await t.admin(CREATE_PROVIDER, { input: genericProvider(id) });
        await t.admin(CREATE_CONNECTION, { p: id, input: { id: 'x1' } });
        await t.admin(CREATE_CONNECTION, { p: id, input: { id: 'x2' } });
      }
      const count = async (first: number) => {
        const before = t.app.store.stats.queries;
        const res = await t.admin(LIST, { first });
        expect(res.body.errors).toBeUndefined();
        expect(res.body.data.credentialProviders.items).toHaveLength(first);
        return t.app.store.stats.queries - before;
      };
      const one = await count(1);
      const five = await count(5);
      expect(five).toBe(one);
      expect(five).toBeLessThanOrEqual(3);
    });
  });

  it('deletes a provider with its connections and policies', async () => {
    const del = await t.admin(`mutation { deleteCredentialProvider(id: "cap-01", expectedVersion: 1) }`);
    expect(del.body.data.deleteCredentialProvider).toBe(true);
    const res = await t.admin(
      `{ credentialProvider(id: "cap-01") { id } connection(providerId: "cap-01", id: "c1") { id } }`,
    );
    expect(res.body.data).toEqual({ credentialProvider: null, connection: null });
  });

  it('keeps client secrets out of the SQLite file', async () => {
    await t.app.store.close().catch(() => {});
    const bytes = readFileSync(join(t.dir, 'credentials.db'));
    const wal = (() => {
      try {
        return readFileSync(join(t.dir, 'credentials.db-wal'));
      } catch {
        return Buffer.alloc(0);
      }
    })();
    for (const secret of [SECRET, CC_SECRET, 'rotated-secret-123']) {
      expect(bytes.includes(Buffer.from(secret))).toBe(false);
      expect(wal.includes(Buffer.from(secret))).toBe(false);
    }
    // Sanity: the file does hold what is not secret.
    expect(bytes.includes(Buffer.from('client-github-01')) || wal.includes(Buffer.from('client-github-01'))).toBe(true);
  });
});
