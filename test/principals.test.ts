/**
 * Principals are issuer-scoped (docs/trust-model.md): two trusted issuers whose users share a
 * `sub` are two people. Real issuers, real authorization servers, real subgraphs; consent over HTTP.
 * The github binding renders `{jwt.sub}` (the same id for both users), the graph binding
 * `{issuer}.{jwt.sub}` (one id each).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.js';
import { startAuthServer, type AuthServer } from './support/authServer.js';
import { consentToAll, createOidcProviders, startBackends, type Backends } from './support/backends.js';
import { startJwtIssuer, type JwtIssuer } from './support/jwtIssuer.js';

const TOKEN_INFO = `{ githubTokenInfo { issuer subject } graphTokenInfo { issuer subject } }`;
const POLICIES = `query($p: ID!, $c: ID!) { connection(providerId: $p, id: $c) { accessPolicies { id kind objectId issuer } } }`;

function errorsByService(errors: any[] | undefined): Record<string, any> {
  return Object.fromEntries((errors ?? []).map((e) => [e.extensions?.serviceName, e]));
}

describe('two trusted issuers whose users share a sub', () => {
  let b: Backends;
  let partner: JwtIssuer;
  let t: TestApp;
  const logLines: string[] = [];
  let corpAlice: string;
  let partnerAlice: string;

  async function query(jwt: string): Promise<{ data?: any; errors?: any[] }> {
    const res = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
      body: JSON.stringify({ query: TOKEN_INFO }),
    });
    return (await res.json()) as any;
  }

  const tokenEndpoint = (path: string, jwt: string) =>
    fetch(`${t.url}/tokens/${path}`, { headers: { authorization: `Bearer ${jwt}` } });

  beforeAll(async () => {
    b = await startBackends({
      accessTokenTtlSeconds: 60,
      // graph: one connection per (issuer, subject).
      editSupergraph: (yaml) => yaml.replace(/(graph-01\n\s+connection: )"\{jwt\.sub\}"/, '$1"{issuer}.{jwt.sub}"'),
    });
    partner = await startJwtIssuer();
    t = await startTestApp(
      {
        supergraph: b.supergraphFile,
        identity: { issuers: [b.idp.issuerConfig({ name: 'corp' }), partner.issuerConfig({ name: 'partner' })] },
      },
      { logLines },
    );
    await createOidcProviders(async (q, v) => (await t.admin(q, v)).body, b);
    corpAlice = await b.idp.sign({ sub: 'alice' });
    partnerAlice = await partner.sign({ sub: 'alice' });

    // alice of corp consents to both subgraphs and gets her own tokens.
    const first = await query(corpAlice);
    expect(await consentToAll(first.errors, 'alice', corpAlice)).toBe(2);
    const ready = await query(corpAlice);
    expect(ready.errors).toBeUndefined();
    expect(ready.data).toEqual({
      githubTokenInfo: { issuer: b.authGithub.issuer, subject: 'alice' },
      graphTokenInfo: { issuer: b.authGraph.issuer, subject: 'alice' },
    });
  }, 90_000);

  afterAll(async () => {
    await t?.close();
    await Promise.all([b?.close(), partner?.close()]);
  });

  it("records the owner's issuer in the policy of a connection created on first use", async () => {
    const github = await t.admin(POLICIES, { p: 'github-01', c: 'alice' });
    expect(github.body.data.connection.accessPolicies).toEqual([
      { id: 'owner', kind: 'USER', objectId: 'alice', issuer: b.idp.issuer },
    ]);
    const graph = await t.admin(POLICIES, { p: 'graph-01', c: 'corp.alice' });
    expect(graph.body.data.connection.accessPolicies).toEqual([
      { id: 'owner', kind: 'USER', objectId: 'alice', issuer: b.idp.issuer },
    ]);
  });

  it("never gives the other issuer's alice the first one's token through a federated query", async () => {
    b.github.seen.length = 0;
    b.graph.seen.length = 0;
    const res = await query(partnerAlice);
    const errors = errorsByService(res.errors);
    // {jwt.sub}: the same id, someone else's connection.
    expect(errors['github']?.extensions.code).toBe('ACCESS_DENIED');
    expect(res.data?.githubTokenInfo ?? null).toBeNull();
    expect(b.github.seen).toHaveLength(0);
    // {issuer}.{jwt.sub}: her own connection, created for her and waiting for her consent.
    expect(errors['graph']?.extensions.code).toBe('CONNECTION_NOT_CONNECTED');
    expect(errors['graph'].extensions.loginUrl).toMatch(/\/oauth\/login\//);
    expect(b.graph.seen).toHaveLength(0);
    const hers = await t.admin(POLICIES, { p: 'graph-01', c: 'partner.alice' });
    expect(hers.body.data.connection.accessPolicies).toEqual([
      { id: 'owner', kind: 'USER', objectId: 'alice', issuer: partner.issuer },
    ]);
  });

  it("never gives the other issuer's alice the first one's token from the token endpoint", async () => {
    for (const path of ['github-01/alice', 'graph-01/corp.alice']) {
      const refused = await tokenEndpoint(path, partnerAlice);
      expect(refused.status, path).toBe(403);
      expect(await refused.json()).toMatchObject({ error: 'ACCESS_DENIED' });
      const served = await tokenEndpoint(path, corpAlice);
      expect(served.status, path).toBe(200);
    }
  });

  it('gives each alice her own token once the second one consents to her own connection', async () => {
    const first = await query(partnerAlice);
    // She signs in at the SaaS as someone else: the token she gets shows whose it is.
    expect(await consentToAll([errorsByService(first.errors)['graph']], 'mallory', partnerAlice)).toBe(1);
    const hers = await query(partnerAlice);
    expect(hers.data.graphTokenInfo).toEqual({ issuer: b.authGraph.issuer, subject: 'mallory' });
    const corp = await query(corpAlice);
    expect(corp.data.graphTokenInfo).toEqual({ issuer: b.authGraph.issuer, subject: 'alice' });
    const theirs = await tokenEndpoint('graph-01/partner.alice', corpAlice);
    expect(theirs.status).toBe(403);
  });

  it('warns at start about the template without {issuer}, and only that one', () => {
    const warnings = logLines.map((l) => JSON.parse(l)).filter((l) => /has no \{issuer\}/.test(l.msg ?? ''));
    expect(warnings.map((w) => [w.subgraph, w.connection, w.issuers])).toEqual([['github', '{jwt.sub}', 2]]);
  });
});

describe('service principal policies', () => {
  let auth: AuthServer;
  let idp: JwtIssuer;
  let other: JwtIssuer;
  let t: TestApp;

  async function policy(input: Record<string, unknown>): Promise<void> {
    const res = await t.admin(
      `mutation($input: CreateAccessPolicyInput!) { createAccessPolicy(providerId: "svc-01", connectionId: "daemon", input: $input) { id issuer } }`,
      { input },
    );
    expect(res.body.errors).toBeUndefined();
  }

  const get = async (jwt: string) =>
    (await fetch(`${t.url}/tokens/svc-01/daemon`, { headers: { authorization: `Bearer ${jwt}` } })).status;

  beforeAll(async () => {
    [auth, idp, other] = await Promise.all([
      startAuthServer({ accessTokenTtlSeconds: 60 }),
      startJwtIssuer(),
      startJwtIssuer(),
    ]);
    t = await startTestApp({ identity: { issuers: [idp.issuerConfig(), other.issuerConfig()] } });
    const provider = await t.admin(
      `mutation($input: CreateCredentialProviderInput!) { createCredentialProvider(input: $input) { id } }`,
      {
        input: {
          id: 'svc-01',
          identityProvider: 'oidc',
          grantType: 'CLIENT_CREDENTIALS',
          clientId: auth.clients.service.clientId,
          clientSecret: auth.clients.service.clientSecret,
          scopes: [...auth.apiScopes],
          parameters: [{ name: 'issuer', value: auth.issuer }],
        },
      },
    );
    expect(provider.body.errors).toBeUndefined();
    const conn = await t.admin(
      `mutation { createConnection(providerId: "svc-01", input: { id: "daemon" }) { status } }`,
    );
    expect(conn.body.data.createConnection.status).toBe('CONNECTED');
    await policy({
      id: 'worker',
      kind: 'SERVICE_PRINCIPAL',
      objectId: 'worker-sp-oid',
      appIds: ['worker-app'],
      issuer: idp.issuer,
    });
    // As an admin wrote it when objectId meant the app id.
    await policy({ id: 'legacy', kind: 'SERVICE_PRINCIPAL', objectId: 'legacy-app' });
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await Promise.all([auth?.close(), idp?.close(), other?.close()]);
  });

  it("admits the service principal's app-only token", async () => {
    expect(
      await get(await idp.sign({ sub: 'worker-sp-oid', oid: 'worker-sp-oid', azp: 'worker-app', idtyp: 'app' })),
    ).toBe(200);
  });

  it('refuses a user token carrying the same azp', async () => {
    expect(await get(await idp.sign({ sub: 'bob', oid: 'bob-oid', azp: 'worker-app', idtyp: 'user' }))).toBe(403);
  });

  it('refuses a user token issued through an app named by an old-style policy (objectId = app id)', async () => {
    expect(await get(await idp.sign({ sub: 'bob', oid: 'bob-oid', azp: 'legacy-app' }))).toBe(403);
    expect(await get(await idp.sign({ sub: 'carol', appid: 'legacy-app' }))).toBe(403);
  });

  it("refuses the principal's own id through another app, or from another issuer", async () => {
    expect(await get(await idp.sign({ sub: 'worker-sp-oid', oid: 'worker-sp-oid', azp: 'other-app' }))).toBe(403);
    expect(await get(await other.sign({ sub: 'worker-sp-oid', oid: 'worker-sp-oid', azp: 'worker-app' }))).toBe(403);
  });

  it('validates the issuer of a new policy: an absolute URL or a configured issuer, exactly as given', async () => {
    for (const issuer of ['login.example.com', 'not a url', '', ' https://x.example.com', '/relative']) {
      const res = await t.admin(
        `mutation($i: String) { createAccessPolicy(providerId: "svc-01", connectionId: "daemon", input: { id: "bad", kind: USER, objectId: "u", issuer: $i }) { id } }`,
        { i: issuer },
      );
      expect(res.body.errors?.[0]?.extensions, issuer).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.issuer' });
    }
    const managed = await t.admin(
      `mutation($i: String) { createAccessPolicy(providerId: "svc-01", connectionId: "daemon", input: { id: "bad", kind: MANAGED_IDENTITY, objectId: "u", issuer: $i }) { id } }`,
      { i: idp.issuer },
    );
    expect(managed.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.issuer' });
    const listed = await t.admin(`{ connection(providerId: "svc-01", id: "daemon") { accessPolicies { id issuer } } }`);
    expect(listed.body.data.connection.accessPolicies.map((p: any) => p.id).sort()).toEqual([
      'legacy',
      'managed-identity',
      'worker',
    ]);
    expect(listed.body.data.connection.accessPolicies.find((p: any) => p.id === 'worker').issuer).toBe(idp.issuer);
  });
});
