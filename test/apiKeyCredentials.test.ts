/**
 * API-key and basic credentials: a connection holds an API key (or a username and password) that
 * the catalog says how to send; subgraphs get it in that header, the token endpoint serves it like a
 * token that never expires, `testConnection` tries it at the entry's check URL when there is one,
 * and a rotation through `updateConnection` replaces it at once. Real gateway, real loopback APIs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHeaderApi, type HeaderApi } from './support/headerApi.js';
import { startStage, type Stage } from './support/federation.js';

const STRIPE_KEY = 'sk_test_51Hq7stripekey0a9b8c7d';
const INTERNAL_KEY = 'int-key-3f9e1c7b5a';
const ROTATED_KEY = 'int-key-rotated-8d2a4e';
const MAIL_USER = 'api';
const MAIL_PASSWORD = 'mail pass: 7Yc!q2';

const CREATE_PROVIDER = `mutation($input: CreateCredentialProviderInput!) { createCredentialProvider(input: $input) { id grantType clientId hasClientSecret } }`;
const CREATE_CONNECTION = `mutation($p: ID!, $input: CreateConnectionInput!) { createConnection(providerId: $p, input: $input) { id status hasCredential hasClientSecret tokenExpiresAt } }`;
const UPDATE_CONNECTION = `mutation($p: ID!, $id: ID!, $input: UpdateConnectionInput!) { updateConnection(providerId: $p, id: $id, input: $input) { status hasCredential } }`;
const TEST = `mutation($p: ID!, $c: ID!) { testConnection(providerId: $p, connectionId: $c) { ok tested status error { code message } } }`;

/** A subgraph bound to a fixed connection, for every caller (the gateway's managed identity). */
function binding(name: string, api: HeaderApi, provider: string, connection: string): string {
  return `  ${name}:
    routing_url: ${api.url}
    schema: { file: ${api.schemaFile} }
    authorization:
      provider: ${provider}
      connection: ${connection}
      identity: managed
      ignore_error: false
      header: Authorization
`;
}

describe('API-key and basic credentials', () => {
  let billing: HeaderApi;
  let internal: HeaderApi;
  let mail: HeaderApi;
  let elsewhere: HeaderApi;
  let s: Stage;
  const logLines: string[] = [];
  const responses: string[] = [];
  const admin = async (query: string, variables?: Record<string, unknown>) => {
    const res = await s.t.admin(query, variables);
    responses.push(JSON.stringify(res.body));
    return res;
  };
  const query = async (q: string) => {
    const res = await s.query(q, await s.jwtFor('alice'));
    responses.push(JSON.stringify(res.body));
    return res;
  };

  beforeAll(async () => {
    elsewhere = await startHeaderApi('elsewhere', { accepts: () => true });
    billing = await startHeaderApi('billing');
    internal = await startHeaderApi('internal', {
      accepts: (h) => h['x-api-key'] === INTERNAL_KEY || h['x-api-key'] === ROTATED_KEY,
      redirectTo: `${elsewhere.origin}/check`,
    });
    mail = await startHeaderApi('mail', {
      accepts: (h) => h.authorization === `Basic ${Buffer.from(`${MAIL_USER}:${MAIL_PASSWORD}`).toString('base64')}`,
    });
    s = await startStage({
      editSupergraph: (yaml) =>
        yaml +
        binding('billing', billing, 'stripe-01', 'shop') +
        binding('internal', internal, 'internal-01', 'ops') +
        binding('mail', mail, 'mail-01', 'sender'),
      logLines,
    });
    for (const input of [
      { id: 'stripe-01', identityProvider: 'stripe', grantType: 'API_KEY' },
      {
        id: 'internal-01',
        identityProvider: 'apikey',
        grantType: 'API_KEY',
        parameters: [
          { name: 'headerName', value: 'X-API-Key' },
          { name: 'scheme', value: 'none' },
          { name: 'checkUrl', value: `${internal.origin}/check` },
        ],
      },
      {
        id: 'mail-01',
        identityProvider: 'basic',
        grantType: 'BASIC',
        parameters: [{ name: 'checkUrl', value: `${mail.origin}/check` }],
      },
    ]) {
      const res = await admin(CREATE_PROVIDER, { input });
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data.createCredentialProvider).toMatchObject({
        clientId: null,
        hasClientSecret: false,
        grantType: input.grantType,
      });
    }
    for (const [p, input] of [
      ['stripe-01', { id: 'shop', apiKey: STRIPE_KEY }],
      ['internal-01', { id: 'ops', apiKey: INTERNAL_KEY }],
      ['mail-01', { id: 'sender', username: MAIL_USER, password: MAIL_PASSWORD }],
    ] as const) {
      const res = await admin(CREATE_CONNECTION, { p, input });
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data.createConnection).toEqual({
        id: input.id,
        status: 'CONNECTED',
        hasCredential: true,
        hasClientSecret: false,
        tokenExpiresAt: null,
      });
    }
  }, 60_000);

  afterAll(async () => {
    await s?.close();
    await Promise.all([billing?.close(), internal?.close(), mail?.close(), elsewhere?.close()]);
  });

  it('sends each subgraph its credential in the header its catalog entry names, and nothing in the binding header', async () => {
    const res = await query(
      `{ billing { authorization apiKey } internal { authorization apiKey } mail { authorization apiKey } }`,
    );
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data).toEqual({
      billing: { authorization: `Bearer ${STRIPE_KEY}`, apiKey: null },
      internal: { authorization: null, apiKey: INTERNAL_KEY },
      mail: { authorization: `Basic ${Buffer.from(`${MAIL_USER}:${MAIL_PASSWORD}`).toString('base64')}`, apiKey: null },
    });
  });

  it("serves the credential from the token endpoint like a token that never expires, under the connection's policies", async () => {
    const alice = await s.jwtFor('alice');
    const bob = await s.jwtFor('bob');
    const policy = await admin(
      `mutation { createAccessPolicy(providerId: "internal-01", connectionId: "ops", input: { id: "alice", kind: USER, objectId: "alice" }) { id } }`,
    );
    expect(policy.body.errors).toBeUndefined();
    const ok = await fetch(`${s.t.url}/tokens/internal-01/ops`, { headers: { authorization: `Bearer ${alice}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({
      access_token: INTERNAL_KEY,
      token_type: 'ApiKey',
      expires_at: null,
      header: 'X-API-Key',
    });
    const refused = await fetch(`${s.t.url}/tokens/internal-01/ops`, { headers: { authorization: `Bearer ${bob}` } });
    expect(refused.status).toBe(403);
    const refusedText = await refused.text();
    responses.push(refusedText);
    expect(refusedText).not.toContain(INTERNAL_KEY);
  });

  it('tests a credential at its check URL, and says when an entry names none', async () => {
    const internalResult = await admin(TEST, { p: 'internal-01', c: 'ops' });
    expect(internalResult.body.data.testConnection).toEqual({
      ok: true,
      tested: true,
      status: 'CONNECTED',
      error: null,
    });
    expect(internal.checks.at(-1)!['x-api-key']).toBe(INTERNAL_KEY);
    const mailResult = await admin(TEST, { p: 'mail-01', c: 'sender' });
    expect(mailResult.body.data.testConnection).toMatchObject({ ok: true, tested: true });

    const untested = await admin(CREATE_PROVIDER, {
      input: { id: 'plain-01', identityProvider: 'apikey', grantType: 'API_KEY' },
    });
    expect(untested.body.errors).toBeUndefined();
    await admin(CREATE_CONNECTION, { p: 'plain-01', input: { id: 'k', apiKey: 'plain-key-value-1' } });
    const result = await admin(TEST, { p: 'plain-01', c: 'k' });
    expect(result.body.data.testConnection).toMatchObject({
      ok: false,
      tested: false,
      status: 'CONNECTED',
      error: { code: 'NOT_TESTABLE' },
    });
    expect(result.body.data.testConnection.error.message).toContain('cannot be tested');
  });

  it('rotates a key: the next query carries the new one, a refused key is CREDENTIAL_REJECTED, and the connection stays usable', async () => {
    await query(`{ internal { apiKey } }`);
    const rotated = await admin(UPDATE_CONNECTION, { p: 'internal-01', id: 'ops', input: { apiKey: ROTATED_KEY } });
    expect(rotated.body.data.updateConnection).toEqual({ status: 'CONNECTED', hasCredential: true });
    const after = await query(`{ internal { apiKey } }`);
    expect(after.body.data.internal.apiKey).toBe(ROTATED_KEY);

    const wrong = await admin(UPDATE_CONNECTION, {
      p: 'internal-01',
      id: 'ops',
      input: { apiKey: 'int-key-wrong-000' },
    });
    expect(wrong.body.errors).toBeUndefined();
    const test = await admin(TEST, { p: 'internal-01', c: 'ops' });
    expect(test.body.data.testConnection).toMatchObject({
      ok: false,
      tested: true,
      status: 'CONNECTED',
      error: { code: 'CREDENTIAL_REJECTED' },
    });
    expect(test.body.data.testConnection.error.message).not.toContain('int-key-wrong-000');
    await admin(UPDATE_CONNECTION, { p: 'internal-01', id: 'ops', input: { apiKey: ROTATED_KEY } });
  });

  it("never follows a check URL's redirect: the credential does not reach the other host", async () => {
    const moved = await admin(
      `mutation { updateCredentialProvider(id: "internal-01", input: { parameters: [{ name: "checkUrl", value: "${internal.origin}/moved" }] }) { id } }`,
    );
    expect(moved.body.errors).toBeUndefined();
    // The check URL is where the key goes: changing it dropped the stored key, as an endpoint change drops tokens.
    const dropped = await admin(`{ connection(providerId: "internal-01", id: "ops") { status hasCredential } }`);
    expect(dropped.body.data.connection).toEqual({ status: 'NOT_CONNECTED', hasCredential: false });
    const refused = await query(`{ internal { apiKey } }`);
    expect(refused.body.errors![0].extensions.code).toBe('CONNECTION_NOT_CONNECTED');
    expect(refused.body.errors![0].extensions.loginUrl).toBeUndefined();
    expect(refused.body.errors![0].message).toContain('needs a new API key (updateConnection)');

    await admin(UPDATE_CONNECTION, { p: 'internal-01', id: 'ops', input: { apiKey: ROTATED_KEY } });
    const result = await admin(TEST, { p: 'internal-01', c: 'ops' });
    expect(result.body.data.testConnection).toMatchObject({
      ok: false,
      tested: true,
      error: { code: 'PROVIDER_UNAVAILABLE', message: 'the check URL answered HTTP 302' },
    });
    expect(elsewhere.checks).toEqual([]);
    const back = await query(`{ internal { apiKey } }`);
    expect(back.body.data.internal.apiKey).toBe(ROTATED_KEY);
  });

  it('refuses bad credential input by its path and changes nothing', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['internal-01', { id: 'x1', apiKey: 'two\r\nX-Injected: yes' }, 'input.apiKey'],
      ['internal-01', { id: 'x2' }, 'input.apiKey'],
      ['internal-01', { id: 'x3', apiKey: 'k-1', clientSecret: 's' }, 'input.clientSecret'],
      ['mail-01', { id: 'x4', username: 'a:b', password: 'p' }, 'input.username'],
      ['mail-01', { id: 'x5', username: 'a' }, 'input.password'],
      ['mail-01', { id: 'x6', apiKey: 'k-2', username: 'a', password: 'p' }, 'input.apiKey'],
      ['github-01', { id: 'x7', apiKey: 'k-3' }, 'input.apiKey'],
    ];
    for (const [p, input, field] of cases) {
      const res = await admin(CREATE_CONNECTION, { p, input });
      expect(res.body.errors?.[0]?.extensions, JSON.stringify(input)).toMatchObject({ code: 'BAD_USER_INPUT', field });
      expect(JSON.stringify(res.body)).not.toContain('X-Injected');
      const gone = await admin(`query($p: ID!, $id: ID!) { connection(providerId: $p, id: $id) { id } }`, {
        p,
        id: input['id'],
      });
      expect(gone.body.data.connection).toBeNull();
    }
    const withClient = await admin(CREATE_PROVIDER, {
      input: { id: 'bad-01', identityProvider: 'stripe', grantType: 'API_KEY', clientId: 'c' },
    });
    expect(withClient.body.errors![0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.clientId' });
    const badHeader = await admin(CREATE_PROVIDER, {
      input: {
        id: 'bad-02',
        identityProvider: 'apikey',
        grantType: 'API_KEY',
        parameters: [{ name: 'headerName', value: 'X-Key: injected' }],
      },
    });
    expect(badHeader.body.errors![0].extensions, JSON.stringify(badHeader.body.errors)).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'input.parameters.headerName',
    });
    // A key must not frame or route the request to the subgraph.
    for (const name of ['Host', 'content-length', 'Transfer-Encoding', 'traceparent']) {
      const framing = await admin(CREATE_PROVIDER, {
        input: {
          id: 'bad-03',
          identityProvider: 'apikey',
          grantType: 'API_KEY',
          parameters: [{ name: 'headerName', value: name }],
        },
      });
      expect(framing.body.errors![0].extensions, name).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'input.parameters.headerName',
      });
    }
  });

  it('lists the credential kinds in the catalog, with how each is sent', async () => {
    const res = await admin(`{ identityProviders { name grantTypes credential { header scheme checkUrl } } }`);
    const byName = new Map(res.body.data.identityProviders.map((e: any) => [e.name, e]));
    expect(byName.get('stripe')).toEqual({
      name: 'stripe',
      grantTypes: ['API_KEY'],
      credential: { header: 'Authorization', scheme: 'Bearer', checkUrl: 'https://api.stripe.com/v1/balance' },
    });
    expect(byName.get('mailgun')).toMatchObject({
      grantTypes: ['BASIC'],
      credential: { header: 'Authorization', scheme: 'Basic' },
    });
    expect(byName.get('apikey')).toMatchObject({
      grantTypes: ['API_KEY'],
      credential: { header: '{headerName}', scheme: '{scheme}', checkUrl: '{checkUrl}' },
    });
    expect(byName.get('github')).toMatchObject({ credential: null });
  });

  it('never shows a key or password in responses, logs or the store at rest', () => {
    const secrets = [
      STRIPE_KEY,
      INTERNAL_KEY,
      ROTATED_KEY,
      MAIL_PASSWORD,
      Buffer.from(`${MAIL_USER}:${MAIL_PASSWORD}`).toString('base64'),
      'plain-key-value-1',
      'int-key-wrong-000',
    ];
    const visible = responses.filter(
      (r) =>
        !r.includes('"billing"') && !r.includes('"internal"') && !r.includes('"mail"') && !r.includes('access_token'),
    );
    const db = readFileSync(join(s.t.dir, 'credentials.db'));
    for (const secret of secrets) {
      expect(
        visible.filter((r) => r.includes(secret)),
        secret.slice(0, 4),
      ).toEqual([]);
      expect(
        logLines.filter((l) => l.includes(secret)),
        secret.slice(0, 4),
      ).toEqual([]);
      expect(db.includes(Buffer.from(secret)), secret.slice(0, 4)).toBe(false);
    }
  });
});
