/**
 * Revocation on delete (RFC 7009): deleting a connection, or a provider with its connections,
 * revokes the refresh token at the provider, from a durable queue the delete writes in its own
 * transaction. The provider is a real oidc-provider with revocation enabled; "revoked" means the
 * provider itself refuses the old refresh token afterwards.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Envelope } from '../src/crypto/envelope.js';
import { parseEnvKeyring } from '../src/crypto/envKeyring.js';
import { openFileKeyring } from '../src/crypto/fileKeyring.js';
import type { StoredTokenSet } from '../src/domain/model.js';
import { isGatewayError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { OAuthClient } from '../src/oauth/client.js';
import { tokenRetirement } from '../src/registry/retirement.js';
import { openStore } from '../src/store/open.js';
import { RevocationWorker, type RevocationOutcome } from '../src/tokens/revocations.js';
import { sealTokenSet } from '../src/tokens/tokenSet.js';
import { tempDir } from './support/tmp.js';
import type { ConnectionKey } from '../src/domain/ids.js';
import { openTokenSet } from '../src/tokens/tokenSet.js';
import { startTestApp, type TestApp } from './support/app.js';
import {
  clientConfigFor,
  consentOverHttp,
  oidcProviderInput,
  startAuthServer,
  type AuthServer,
} from './support/authServer.js';
import { freshPgSchema, requirePgOrSkip, type PgSchema } from './support/pg.js';
import { pgSchemaUrl, sharedKeysKey } from './support/replicas.js';

const PROVIDER = 'idp';
const QUEUE_WAIT_MS = 20_000;
const hasPg = await requirePgOrSkip('revocation on delete on PostgreSQL');

const CREATE_PROVIDER = `mutation($input: CreateCredentialProviderInput!) { createCredentialProvider(input: $input) { id } }`;

async function consented(t: TestApp, _auth: AuthServer, envelope: Envelope, connectionId: string): Promise<string> {
  const created = await t.admin(
    `mutation($id: ID!) { createConnection(providerId: "${PROVIDER}", input: { id: $id }) { id } }`,
    { id: connectionId },
  );
  expect(created.body.errors).toBeUndefined();
  const link = await t.admin(
    `mutation($c: ID!, $r: String!) { createLoginLink(providerId: "${PROVIDER}", connectionId: $c, postLoginRedirectUrl: $r) { url } }`,
    { c: connectionId, r: `${t.url}/oauth/done` },
  );
  const landed = await consentOverHttp(link.body.data.createLoginLink.url, { login: connectionId });
  expect(landed.searchParams.get('status')).toBe('CONNECTED');
  const key: ConnectionKey = { providerId: PROVIDER, connectionId };
  const connection = await t.app.store.getConnection(key);
  const refreshToken = openTokenSet(envelope, key, connection!.tokens!).refreshToken;
  expect(refreshToken).toBeTruthy();
  return refreshToken!;
}

/** What the provider says to the refresh token now: 'accepted' or the gateway error code. */
async function providerSays(auth: AuthServer, refreshToken: string): Promise<string> {
  const client = new OAuthClient({ timeoutMs: 5_000, allowInsecureHttp: true, allowPrivateNetworks: true });
  try {
    await client.refresh(clientConfigFor(auth, 'web'), refreshToken);
    return 'accepted';
  } catch (e) {
    if (isGatewayError(e)) return e.code;
    throw e;
  }
}

async function queueEmptied(t: TestApp): Promise<void> {
  const deadline = Date.now() + QUEUE_WAIT_MS;
  while ((await t.app.store.countRevocations()) > 0) {
    if (Date.now() > deadline) throw new Error('the revocation queue was not worked off in time');
    await sleep(100);
  }
}

function metric(body: string, outcome: string): number {
  const line = body.split('\n').find((l) => l.startsWith(`cg_revocations_total{outcome="${outcome}"}`));
  return line ? Number(line.split(' ')[1]) : 0;
}

async function revocationMetric(t: TestApp, outcome: string): Promise<number> {
  return metric(await (await fetch(`${t.url}/metrics`)).text(), outcome);
}

const stores: {
  name: string;
  enabled: boolean;
  url: () => Promise<{ storeUrl?: string; drop?: () => Promise<void> }>;
}[] = [
  { name: 'SQLite', enabled: true, url: async () => ({}) },
  {
    name: 'PostgreSQL',
    enabled: hasPg,
    url: async () => {
      const schema: PgSchema = await freshPgSchema('revocation');
      return { storeUrl: pgSchemaUrl(schema), drop: () => schema.drop() };
    },
  },
];

for (const store of stores) {
  describe.skipIf(!store.enabled)(`revocation on delete (${store.name})`, () => {
    let auth: AuthServer;
    let t: TestApp;
    let envelope: Envelope;
    let drop: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      auth = await startAuthServer();
      const where = await store.url();
      drop = where.drop;
      t = await startTestApp({}, where.storeUrl === undefined ? {} : { storeUrl: where.storeUrl });
      envelope = new Envelope(await openFileKeyring(join(t.dir, 'keyring.json')));
      const created = await t.admin(CREATE_PROVIDER, { input: oidcProviderInput(PROVIDER, auth) });
      expect(created.body.errors).toBeUndefined();
    }, 60_000);

    afterAll(async () => {
      await t?.close();
      await auth?.close();
      await drop?.();
    });

    afterEach(async () => {
      if (auth) await auth.resume().catch(() => undefined);
    });

    it("a deleted connection's refresh token is refused by the provider afterwards", async () => {
      const refreshToken = await consented(t, auth, envelope, 'alice');
      const before = await revocationMetric(t, 'revoked');
      const deleted = await t.admin(`mutation { deleteConnection(providerId: "${PROVIDER}", id: "alice") }`);
      expect(deleted.body.errors).toBeUndefined();
      await queueEmptied(t);
      expect(await providerSays(auth, refreshToken)).toBe('REAUTHORIZATION_REQUIRED');
      expect(await revocationMetric(t, 'revoked')).toBe(before + 1);
    }, 60_000);

    it('a delete while the provider is down succeeds at once; the revocation is retried until the provider is back', async () => {
      const refreshToken = await consented(t, auth, envelope, 'bob');
      await auth.suspend();
      const deleted = await t.admin(`mutation { deleteConnection(providerId: "${PROVIDER}", id: "bob") }`);
      expect(deleted.body.errors).toBeUndefined();
      expect(await t.app.store.getConnection({ providerId: PROVIDER, connectionId: 'bob' })).toBeNull();
      // The failed first attempt leaves the row queued, its tokens sealed to it.
      const deadline = Date.now() + QUEUE_WAIT_MS;
      while ((await revocationMetric(t, 'retried')) === 0 && Date.now() < deadline) await sleep(100);
      expect(await revocationMetric(t, 'retried')).toBeGreaterThan(0);
      expect(await t.app.store.countRevocations()).toBe(1);
      await auth.resume();
      await queueEmptied(t);
      expect(await providerSays(auth, refreshToken)).toBe('REAUTHORIZATION_REQUIRED');
    }, 60_000);

    it("deleting a provider revokes every connection's refresh token, though the provider's record is gone", async () => {
      const carol = await consented(t, auth, envelope, 'carol');
      const dave = await consented(t, auth, envelope, 'dave');
      await auth.suspend();
      const deleted = await t.admin(`mutation { deleteCredentialProvider(id: "${PROVIDER}") }`);
      expect(deleted.body.errors).toBeUndefined();
      expect(await t.app.store.countRevocations()).toBe(2);
      await auth.resume();
      await queueEmptied(t);
      expect(await providerSays(auth, carol)).toBe('REAUTHORIZATION_REQUIRED');
      expect(await providerSays(auth, dave)).toBe('REAUTHORIZATION_REQUIRED');
    }, 90_000);
  });
}

describe.skipIf(!hasPg)('revocation by two gateways sharing PostgreSQL', () => {
  const CONNECTIONS = 6;
  let auth: AuthServer;
  let schema: PgSchema;
  const apps: TestApp[] = [];

  beforeAll(async () => {
    auth = await startAuthServer();
    schema = await freshPgSchema('revocation_replicas');
  }, 60_000);

  afterAll(async () => {
    for (const t of apps) await t.close();
    await auth?.close();
    await schema?.drop();
  });

  it("revokes every connection's refresh token once, whichever replica takes it", async () => {
    const keysKey = sharedKeysKey();
    for (let i = 0; i < 2; i++)
      apps.push(await startTestApp({ keys: { key: keysKey } }, { storeUrl: pgSchemaUrl(schema) }));
    const [a, b] = apps as [TestApp, TestApp];
    const envelope = new Envelope(parseEnvKeyring(keysKey));
    expect((await a.admin(CREATE_PROVIDER, { input: oidcProviderInput(PROVIDER, auth) })).body.errors).toBeUndefined();
    const refreshTokens: string[] = [];
    for (let i = 0; i < CONNECTIONS; i++) refreshTokens.push(await consented(a, auth, envelope, `user-${i}`));
    // Down while the delete commits: both replicas find the rows due at once when it is back.
    await auth.suspend();
    expect((await b.admin(`mutation { deleteCredentialProvider(id: "${PROVIDER}") }`)).body.errors).toBeUndefined();
    expect(await a.app.store.countRevocations()).toBe(CONNECTIONS);
    await auth.resume();
    await queueEmptied(a);
    for (const token of refreshTokens) expect(await providerSays(auth, token)).toBe('REAUTHORIZATION_REQUIRED');
    const revoked = (await revocationMetric(a, 'revoked')) + (await revocationMetric(b, 'revoked'));
    expect(revoked).toBe(CONNECTIONS);
  }, 120_000);
});

describe('a revocation that keeps failing', () => {
  it('is given up after its attempts, logged with provider and connection (no token) and counted', async () => {
    const auth = await startAuthServer();
    const dir = await tempDir('cg-revocation-');
    const store = await openStore(`sqlite:${dir.file('credentials.db')}`);
    try {
      const envelope = new Envelope(await openFileKeyring(dir.file('keyring.json')));
      const now = new Date();
      const clientSecret = envelope.seal(auth.clients.web.clientSecret, {
        kind: 'provider',
        field: 'clientSecret',
        providerId: 'p',
      });
      await store.insertProvider(
        {
          id: 'p',
          displayName: 'p',
          identityProvider: 'oidc',
          grantType: 'AUTHORIZATION_CODE',
          clientId: auth.clients.web.clientId,
          clientSecret,
          scopes: [],
          parameters: { issuer: auth.issuer },
          version: 1,
          createdAt: now,
          updatedAt: now,
        },
        10,
      );
      const key = { providerId: 'p', connectionId: 'c' };
      const secretTokens: StoredTokenSet = {
        accessToken: 'at-never-logged',
        refreshToken: 'rt-never-logged',
        tokenType: 'Bearer',
        expiresAt: null,
        scope: null,
        idTokenClaims: null,
        extra: {},
      };
      const tokens = sealTokenSet(envelope, key, secretTokens);
      await store.insertConnection(
        {
          providerId: 'p',
          id: 'c',
          displayName: 'c',
          state: { status: 'CONNECTED' },
          clientId: null,
          clientSecret: null,
          tokens,
          tokenExpiresAt: null,
          lastRefreshedAt: now,
          tokenGeneration: 1,
          version: 1,
          createdAt: now,
          updatedAt: now,
        },
        [],
        10,
      );
      await store.deleteConnection(key, null, { retire: tokenRetirement(envelope) });
      await auth.suspend();
      const lines: string[] = [];
      const outcomes: RevocationOutcome[] = [];
      const worker = new RevocationWorker({
        store,
        envelope,
        allowInsecureHttp: true,
        leaseMs: 10_000,
        maxAttempts: 3,
        retryBaseMs: 20,
        pollIntervalMs: 60_000,
        oauth: new OAuthClient({ timeoutMs: 2_000, allowInsecureHttp: true, allowPrivateNetworks: true }),
        logger: createLogger('info', { write: (line: string) => void lines.push(line) }),
        onOutcome: (o) => void outcomes.push(o),
      });
      const deadline = Date.now() + QUEUE_WAIT_MS;
      while ((await store.countRevocations()) > 0 && Date.now() < deadline) {
        await worker.drain();
        await sleep(20);
      }
      await worker.stop();
      expect(outcomes).toEqual(['retried', 'retried', 'failed']);
      const gaveUp = lines.map((l) => JSON.parse(l)).find((l) => l.level === 50);
      expect(gaveUp).toMatchObject({ provider: 'p', connection: 'c', attempt: 3, code: 'PROVIDER_UNAVAILABLE' });
      expect(lines.join('\n')).not.toMatch(/never-logged/);
    } finally {
      await store.close();
      await auth.close();
      await dir.cleanup();
    }
  }, 60_000);
});
