/** Client credentials connections: their own client, no consent, tokens on demand and on expiry. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.js';
import { startAuthServer, type AuthServer } from './support/authServer.js';
import { startJwtIssuer, type JwtIssuer } from './support/jwtIssuer.js';

const TEST = `mutation { testConnection(providerId: "svc-01", connectionId: "daemon") { ok status tokenExpiresAt error { code message } } }`;

describe('client credentials', () => {
  let auth: AuthServer;
  let idp: JwtIssuer;
  let t: TestApp;

  beforeAll(async () => {
    [auth, idp] = await Promise.all([startAuthServer({ accessTokenTtlSeconds: 2 }), startJwtIssuer()]);
    t = await startTestApp({ identity: { issuers: [idp.issuerConfig()] }, cache: { refreshSkewSeconds: 1 } });
    const provider = await t.admin(
      `mutation($input: CreateCredentialProviderInput!) { createCredentialProvider(input: $input) { id } }`,
      {
        input: {
          id: 'svc-01',
          identityProvider: 'oidc',
          grantType: 'CLIENT_CREDENTIALS',
          clientId: 'provider-level-client',
          clientSecret: 'provider-level-secret',
          scopes: [...auth.apiScopes],
          parameters: [{ name: 'issuer', value: auth.issuer }],
        },
      },
    );
    expect(provider.body.errors).toBeUndefined();
    const conn = await t.admin(
      `mutation($id: String!, $secret: String!) { createConnection(providerId: "svc-01", input: { id: "daemon", clientId: $id, clientSecret: $secret }) { status } }`,
      { id: auth.clients.service.clientId, secret: auth.clients.service.clientSecret },
    );
    expect(conn.body.data.createConnection.status).toBe('CONNECTED');
    await t.admin(
      `mutation { createAccessPolicy(providerId: "svc-01", connectionId: "daemon", input: { id: "worker", kind: SERVICE_PRINCIPAL, objectId: "worker", appIds: ["worker-app"] }) { id } }`,
    );
  });

  afterAll(async () => {
    await t?.close();
    await Promise.all([auth?.close(), idp?.close()]);
  });

  it("acquires a token with the connection's own client, without consent", async () => {
    auth.resetCounts();
    const res = await t.admin(TEST);
    expect(res.body.data.testConnection).toMatchObject({ ok: true, status: 'CONNECTED', error: null });
    expect(auth.counts.clientCredentials).toBe(1);
  });

  it('serves a service principal through the token endpoint, and fetches a new token when the cached one expires', async () => {
    const jwt = await idp.sign({ sub: 'worker', azp: 'worker-app' });
    const get = () => fetch(`${t.url}/tokens/svc-01/daemon`, { headers: { authorization: `Bearer ${jwt}` } });
    auth.resetCounts();
    const first = (await (await get()).json()) as { access_token: string };
    const again = (await (await get()).json()) as { access_token: string };
    expect(again.access_token).toBe(first.access_token);
    await new Promise((r) => setTimeout(r, 2_100));
    const later = (await (await get()).json()) as { access_token: string };
    expect(later.access_token).not.toBe(first.access_token);
    // The first token came from the store (acquired by the test above); only the expiry cost a call.
    expect(auth.counts.clientCredentials).toBe(1);
  });

  it('reports a wrong client secret as PROVIDER_UNAVAILABLE without the secret in the message', async () => {
    const upd = await t.admin(
      `mutation { updateConnection(providerId: "svc-01", id: "daemon", input: { clientSecret: "wrong-secret-value-77" }) { hasClientSecret } }`,
    );
    expect(upd.body.data.updateConnection.hasClientSecret).toBe(true);
    const res = await t.admin(TEST);
    expect(res.body.data.testConnection.ok).toBe(false);
    expect(res.body.data.testConnection.error.code).toBe('PROVIDER_UNAVAILABLE');
    expect(JSON.stringify(res.body)).not.toContain('wrong-secret-value-77');
  });
});
