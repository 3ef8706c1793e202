/**
 * RFC 8693 token exchange for the company's own subgraphs (`identity: exchange`): each subgraph
 * receives a token the authorization server issued for its own audience, derived from the caller's
 * JWT and naming the caller, never the caller's JWT itself. A refused exchange fails that
 * subgraph's fields only. Real gateway, real oidc-provider with a registered token-exchange grant.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/schema.js';
import { parseSupergraphConfig } from '../src/gateway/supergraphConfig.js';
import { startTestApp, type TestApp } from './support/app.js';
import { startAuthServer, type AuthServer } from './support/authServer.js';
import { startHeaderApi, type HeaderApi } from './support/headerApi.js';
import { startJwtIssuer, type JwtIssuer } from './support/jwtIssuer.js';
import { tokenExchange, type TokenExchangeSetup } from './support/tokenExchangeGrant.js';

const ORDERS = 'urn:corp:orders';
const LEDGER = 'urn:corp:ledger';
const QUERY = `{ orders { authorization } ledger { authorization } }`;

function exchangeBinding(name: string, api: HeaderApi, audience: string, extra = ''): string {
  return `  ${name}:
    routing_url: ${api.url}
    schema: { file: ${api.schemaFile} }
    authorization:
      provider: corp-01
      identity: exchange
      audience: "${audience}"
${extra}`;
}

describe('token exchange for internal subgraphs', () => {
  let idp: JwtIssuer;
  let auth: AuthServer;
  let exchange: TokenExchangeSetup;
  let orders: HeaderApi;
  let ledger: HeaderApi;
  let t: TestApp;
  let verifyAtAuth: (token: string, audience: string) => Promise<Record<string, unknown>>;
  const logLines: string[] = [];
  const seenSecrets = new Set<string>();

  const query = async (jwt: string | null) => {
    const res = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(jwt ? { authorization: `Bearer ${jwt}` } : {}) },
      body: JSON.stringify({ query: QUERY }),
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  beforeAll(async () => {
    idp = await startJwtIssuer();
    exchange = tokenExchange({
      subjectIssuer: idp,
      audiences: [ORDERS, LEDGER],
      refuse: (sub, audience) => sub === 'mallory' && audience === LEDGER,
    });
    auth = await startAuthServer({
      extraClients: exchange.extraClients,
      extend: exchange.extend,
      extraTokenClaims: exchange.extraTokenClaims,
    });
    [orders, ledger] = await Promise.all([startHeaderApi('orders'), startHeaderApi('ledger')]);
    const dir = join(orders.schemaFile, '..');
    const supergraph = join(dir, 'supergraph.yaml');
    writeFileSync(
      supergraph,
      `federation_version: =2.9.0\nsubgraphs:\n${exchangeBinding('orders', orders, ORDERS, '      scope: "orders:read"\n')}${exchangeBinding('ledger', ledger, LEDGER)}`,
    );
    t = await startTestApp({ supergraph, identity: { issuers: [idp.issuerConfig()] } }, { logLines });
    const created = await t.admin(
      `mutation($input: CreateCredentialProviderInput!) { createCredentialProvider(input: $input) { id } }`,
      {
        input: {
          id: 'corp-01',
          identityProvider: 'oidc',
          grantType: 'CLIENT_CREDENTIALS',
          clientId: exchange.client.clientId,
          clientSecret: exchange.client.clientSecret,
          parameters: [{ name: 'issuer', value: auth.issuer }],
        },
      },
    );
    expect(created.body.errors).toBeUndefined();
    const discovery = (await (await fetch(`${auth.issuer}/.well-known/openid-configuration`)).json()) as {
      jwks_uri: string;
    };
    const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
    verifyAtAuth = async (token, audience) =>
      (await jwtVerify(token, jwks, { issuer: auth.issuer, audience })).payload as Record<string, unknown>;
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await Promise.all([orders?.close(), ledger?.close(), auth?.close()]);
    await idp?.close();
  });

  it("gives each subgraph a token for its own audience that names the caller (sub) and the gateway (act), never the caller's JWT", async () => {
    const alice = await idp.sign({ sub: 'alice' });
    seenSecrets.add(alice);
    const res = await query(alice);
    expect(res.body.errors).toBeUndefined();
    const ordersToken = String(res.body.data.orders.authorization).replace(/^Bearer /, '');
    const ledgerToken = String(res.body.data.ledger.authorization).replace(/^Bearer /, '');
    seenSecrets.add(ordersToken).add(ledgerToken);
    for (const token of [ordersToken, ledgerToken]) expect(token).not.toBe(alice);
    const ordersClaims = await verifyAtAuth(ordersToken, ORDERS);
    expect(ordersClaims).toMatchObject({
      iss: auth.issuer,
      aud: ORDERS,
      sub: 'alice',
      act: { sub: exchange.client.clientId },
      scope: 'orders:read',
    });
    const ledgerClaims = await verifyAtAuth(ledgerToken, LEDGER);
    expect(ledgerClaims).toMatchObject({ aud: LEDGER, sub: 'alice', act: { sub: exchange.client.clientId } });
    // Each audience's token is only that audience's.
    await expect(verifyAtAuth(ordersToken, LEDGER)).rejects.toThrow();
  });

  it('exchanges once per caller and audience while the token stays fresh; another caller gets their own', async () => {
    const alice = await idp.sign({ sub: 'alice' });
    const before = exchange.counts.exchanges;
    const first = await query(alice);
    const again = await query(alice);
    expect(exchange.counts.exchanges).toBe(before);
    expect(again.body.data).toEqual(first.body.data);

    const bob = await idp.sign({ sub: 'bob' });
    seenSecrets.add(bob);
    const bobs = await query(bob);
    expect(exchange.counts.exchanges).toBe(before + 2);
    expect(decodeJwt(String(bobs.body.data.orders.authorization).replace(/^Bearer /, '')).sub).toBe('bob');
  });

  it("turns a refused exchange into ACCESS_DENIED on that subgraph's fields only", async () => {
    const mallory = await idp.sign({ sub: 'mallory' });
    seenSecrets.add(mallory);
    ledger.seen.length = 0;
    const res = await query(mallory);
    expect(decodeJwt(String(res.body.data.orders.authorization).replace(/^Bearer /, '')).sub).toBe('mallory');
    expect(res.body.data.ledger).toBeNull();
    expect(res.body.errors).toHaveLength(1);
    expect(res.body.errors[0].extensions).toMatchObject({ code: 'ACCESS_DENIED', serviceName: 'ledger' });
    expect(res.body.errors[0].message).toContain('access_denied');
    // Nothing reached the ledger: not the caller's JWT, not a token.
    expect(ledger.seen).toEqual([]);
  });

  it('refuses anonymous callers on exchange fields', async () => {
    const res = await query(null);
    expect(res.body.errors.map((e: any) => e.extensions.code)).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED']);
  });

  it('never writes the caller JWTs or the exchanged tokens to the logs or the store', () => {
    expect(seenSecrets.size).toBeGreaterThanOrEqual(5);
    const db = readFileSync(join(t.dir, 'credentials.db'));
    for (const secret of seenSecrets) {
      expect(logLines.filter((l) => l.includes(secret))).toEqual([]);
      expect(db.includes(Buffer.from(secret))).toBe(false);
    }
  });

  it('refuses an exchange binding without an audience, or with a connection, at start', () => {
    const parse = (authorization: string) => () =>
      parseSupergraphConfig(
        `subgraphs:\n  s:\n    routing_url: http://127.0.0.1:1/graphql\n    schema: { file: ${orders.schemaFile} }\n    authorization:\n${authorization}`,
        join(t.dir, 'sg.yaml'),
      );
    expect(parse('      provider: corp-01\n      identity: exchange\n')).toThrow(
      /subgraphs\.s\.authorization\.audience must be/,
    );
    expect(
      parse('      provider: corp-01\n      identity: exchange\n      audience: a\n      connection: c\n'),
    ).toThrow(/authorization\.connection is not used with identity exchange/);
    expect(parse('      provider: corp-01\n      connection: c\n      audience: a\n')).toThrow(ConfigError);
  });
});
