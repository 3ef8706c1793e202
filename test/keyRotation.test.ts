import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Envelope } from '../src/crypto/envelope.js';
import { parseEnvKeyring } from '../src/crypto/envKeyring.js';
import { openFileKeyring } from '../src/crypto/fileKeyring.js';
import type { Keyring } from '../src/crypto/keyring.js';
import { associatedData, sealedKeyId, type Sealed, type SealedRef } from '../src/crypto/sealed.js';
import type { ConnectionRecord, ProviderRecord } from '../src/domain/model.js';
import type { GatewayError } from '../src/errors.js';
import { KeyRotation, type RotationStatus } from '../src/keys/rotation.js';
import { openStore } from '../src/store/open.js';
import type { SealedField, Store } from '../src/store/types.js';
import type { ConnectionKey } from '../src/domain/ids.js';
import { pgTestUrl, type PgTestDatabase } from './support/pg.js';
import { tempDir, type TempDir } from './support/tmp.js';
import { withOverrides } from './support/storeOverrides.js';

const MAX = 1_000_000;
const PROVIDERS = 12;
const CONNECTIONS_PER_PROVIDER = 15;
const BATCH_SIZE = 25;

const providerRef = (providerId: string): SealedRef => ({ kind: 'provider', field: 'clientSecret', providerId });
const tokensRef = (key: ConnectionKey): SealedRef => ({ kind: 'connection', field: 'tokens', ...key });
const connSecretRef = (key: ConnectionKey): SealedRef => ({ kind: 'connection', field: 'clientSecret', ...key });
const consentRef = (stateHash: string): SealedRef => ({ kind: 'consent', field: 'codeVerifier', stateHash });

const providerSecret = (p: number) => `provider-secret-${p}`;
const tokensOf = (key: ConnectionKey, generation = 0) =>
  JSON.stringify({
    accessToken: `at-${key.providerId}-${key.connectionId}-${generation}`,
    refreshToken: `rt-${generation}`,
  });
const connSecret = (key: ConnectionKey) => `conn-secret-${key.providerId}-${key.connectionId}`;

/** Seeds providers (client secret), connections (tokens; every third with its own client secret) and one consent. */
async function seed(store: Store, envelope: Envelope): Promise<{ connections: ConnectionKey[]; sealedCount: number }> {
  const now = new Date();
  const connections: ConnectionKey[] = [];
  let sealedCount = 0;
  for (let p = 0; p < PROVIDERS; p++) {
    const providerId = `prov-${String(p).padStart(2, '0')}`;
    const provider: ProviderRecord = {
      id: providerId,
      displayName: providerId,
      identityProvider: 'oauth2',
      grantType: 'AUTHORIZATION_CODE',
      clientId: `client-${p}`,
      clientSecret: envelope.seal(providerSecret(p), providerRef(providerId)),
      scopes: ['read'],
      parameters: { tokenUrl: 'https://idp.example/token' },
      version: 1,
      createdAt: now,
      updatedAt: now,
    };
    await store.insertProvider(provider, MAX);
    sealedCount += 1;
    for (let c = 0; c < CONNECTIONS_PER_PROVIDER; c++) {
      const key = { providerId, connectionId: `conn-${String(c).padStart(2, '0')}` };
      const ownClient = c % 3 === 0;
      const connection: ConnectionRecord = {
        ...key,
        id: key.connectionId,
        displayName: key.connectionId,
        state: { status: 'CONNECTED' },
        clientId: ownClient ? `cc-${c}` : null,
        clientSecret: ownClient ? envelope.seal(connSecret(key), connSecretRef(key)) : null,
        tokens: envelope.seal(tokensOf(key), tokensRef(key)),
        tokenExpiresAt: new Date(now.getTime() + 3_600_000),
        lastRefreshedAt: now,
        tokenGeneration: 1,
        version: 1,
        createdAt: now,
        updatedAt: now,
      };
      await store.insertConnection(connection, [], MAX);
      connections.push(key);
      sealedCount += ownClient ? 2 : 1;
    }
  }
  const first = connections[0]!;
  await store.insertConsentState({
    stateHash: 'state-hash-1',
    ...first,
    codeVerifier: envelope.seal('pkce-verifier-1', consentRef('state-hash-1')),
    nonce: null,
    postLoginRedirectUrl: 'https://app.example/done',
    startedBy: 'ADMIN',
    linkToken: null,
    expiresAt: new Date(now.getTime() + 600_000),
    createdAt: now,
  });
  sealedCount += 1;
  return { connections, sealedCount };
}

/** Opens every stored secret and checks it against what was sealed (`tokens` overrides the expected token texts). */
async function expectEverythingOpens(
  store: Store,
  envelope: Envelope,
  connections: ConnectionKey[],
  tokens = new Map<string, string>(),
) {
  for (let p = 0; p < PROVIDERS; p++) {
    const providerId = `prov-${String(p).padStart(2, '0')}`;
    const provider = await store.getProvider(providerId);
    expect(envelope.open(provider!.clientSecret!, providerRef(providerId))).toBe(providerSecret(p));
  }
  const records = await store.getConnections(connections);
  records.forEach((record, i) => {
    const key = connections[i]!;
    const expected = tokens.get(`${key.providerId}/${key.connectionId}`) ?? tokensOf(key);
    expect(envelope.open(record!.tokens!, tokensRef(key))).toBe(expected);
    if (record!.clientSecret) expect(envelope.open(record!.clientSecret, connSecretRef(key))).toBe(connSecret(key));
  });
}

/** What a token refresh writes: a new sealed token set, compare-and-swapped on the generation. */
async function refresh(store: Store, key: ConnectionKey, tokens: Sealed): Promise<boolean> {
  const current = await store.getConnection(key);
  const write = { tokens, tokenExpiresAt: null, lastRefreshedAt: new Date(), state: { status: 'CONNECTED' } } as const;
  return (await store.writeTokens(key, write, current!.tokenGeneration)) !== null;
}

interface Backend {
  readonly name: string;
  open(): Promise<Store>;
  cleanup(): Promise<void>;
}

const backends: { name: string; make: () => Promise<Backend | null> }[] = [
  {
    name: 'SQLite',
    make: async () => {
      let n = 0;
      return {
        name: 'SQLite',
        open: () => openStore(`sqlite:${tmp.file(`store-${++n}.db`)}`),
        cleanup: async () => {},
      };
    },
  },
  {
    name: 'PostgreSQL',
    make: async () => {
      const db: PgTestDatabase | null = await pgTestUrl('key_rotation');
      if (!db) return null;
      let n = 0;
      return {
        name: 'PostgreSQL',
        open: () => openStore(db.url, { pgSchema: `${db.schemaPrefix}_${++n}` }),
        cleanup: () => db.cleanup(),
      };
    },
  },
];

let tmp: TempDir;
beforeAll(async () => {
  tmp = await tempDir('cg-rotation-');
});
afterAll(async () => {
  await tmp.cleanup();
});

for (const { name, make } of backends) {
  describe(`key rotation on ${name}`, () => {
    let backend: Backend | null = null;
    let store: Store;
    let keyring: Keyring;
    let envelope: Envelope;
    let connections: ConnectionKey[];
    let sealedCount: number;
    let errors: unknown[];
    let keyringCount = 0;

    beforeAll(async () => {
      backend = await make();
    });
    afterAll(async () => {
      await backend?.cleanup();
    });

    beforeEach(async (ctx) => {
      if (!backend) return ctx.skip();
      keyring = await openFileKeyring(tmp.file(`keyring-${name}-${++keyringCount}.json`));
      envelope = new Envelope(keyring);
      store = await backend.open();
      ({ connections, sealedCount } = await seed(store, envelope));
      errors = [];
    });
    afterEach(async () => {
      await store?.close().catch(() => undefined);
    });

    const newRotation = (batchSize = BATCH_SIZE) =>
      new KeyRotation({ store, keyring, envelope, batchSize, onError: (e) => errors.push(e) });

    it('is IDLE before any rotation, showing the current primary', () => {
      expect(newRotation().status()).toEqual({
        state: 'IDLE',
        primaryKeyId: keyring.primary().id,
        rewrapped: 0,
        failed: 0,
        startedAt: null,
        finishedAt: null,
      });
    });

    it('re-wraps every stored secret with a new primary in the background; everything still opens', async () => {
      const old = keyring.primary().id;
      expect(await store.countSealedWrappedBy(old)).toBe(sealedCount);
      const rotation = newRotation();
      const started = await rotation.rotate();
      expect(started.state).toBe('RUNNING');
      expect(started.primaryKeyId).not.toBe(old);
      expect(started.primaryKeyId).toBe(keyring.primary().id);
      expect(started.rewrapped).toBe(0);
      expect(started.startedAt).toBeInstanceOf(Date);
      await rotation.whenIdle();
      const done = rotation.status();
      expect(done).toMatchObject({
        state: 'DONE',
        primaryKeyId: started.primaryKeyId,
        rewrapped: sealedCount,
        failed: 0,
      });
      expect(done.finishedAt!.getTime()).toBeGreaterThanOrEqual(done.startedAt!.getTime());
      expect(await store.countSealedWrappedBy(old)).toBe(0);
      expect(await store.countSealedWrappedBy(started.primaryKeyId)).toBe(sealedCount);
      expect(await store.listSealedNotWrappedBy(started.primaryKeyId, 10)).toEqual([]);
      await expectEverythingOpens(store, envelope, connections);
      const consent = await store.consumeConsentState('state-hash-1', new Date());
      expect(sealedKeyId(consent!.codeVerifier!)).toBe(started.primaryKeyId);
      expect(envelope.open(consent!.codeVerifier!, consentRef('state-hash-1'))).toBe('pkce-verifier-1');
      expect(errors).toEqual([]);
    });

    it('lists the keys with how many secrets each still wraps', async () => {
      const old = keyring.primary();
      const rotation = newRotation();
      expect(await rotation.keys()).toEqual([
        { id: old.id, primary: true, createdAt: old.createdAt, inUse: sealedCount },
      ]);
      const { primaryKeyId } = await rotation.rotate();
      await rotation.whenIdle();
      expect(await rotation.keys()).toEqual([
        { id: old.id, primary: false, createdAt: old.createdAt, inUse: 0 },
        { id: primaryKeyId, primary: true, createdAt: expect.any(Date), inUse: sealedCount },
      ]);
    });

    it('yields between batches: the status shows progress while other work keeps running', async () => {
      const rotation = newRotation(10);
      await rotation.rotate();
      const seen: RotationStatus[] = [];
      let reads = 0;
      while (rotation.status().state === 'RUNNING') {
        seen.push(rotation.status());
        await store.getProvider('prov-00');
        reads += 1;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      expect(rotation.status().state).toBe('DONE');
      expect(reads).toBeGreaterThan(sealedCount / 10 / 2);
      expect(seen.some((s) => s.rewrapped > 0 && s.rewrapped < sealedCount)).toBe(true);
    });

    it('a second rotate while one runs returns the running status without adding another key', async () => {
      const before = keyring.list().length;
      const rotation = newRotation();
      const [a, b] = await Promise.all([rotation.rotate(), rotation.rotate()]);
      const c = await rotation.rotate();
      expect(a.primaryKeyId).toBe(b.primaryKeyId);
      expect(c).toMatchObject({ state: 'RUNNING', primaryKeyId: a.primaryKeyId });
      expect(keyring.list()).toHaveLength(before + 1);
      await rotation.whenIdle();
      // Once DONE, rotating again adds the next key.
      const next = await rotation.rotate();
      expect(next.primaryKeyId).not.toBe(a.primaryKeyId);
      expect(keyring.list()).toHaveLength(before + 2);
      await rotation.whenIdle();
      expect(await store.countSealedWrappedBy(a.primaryKeyId)).toBe(0);
      expect(rotation.status()).toMatchObject({ state: 'DONE', rewrapped: sealedCount });
    });

    describe('retire', () => {
      it('refuses the primary key with BAD_USER_INPUT', async () => {
        const id = keyring.primary().id;
        await expect(newRotation().retire(id)).rejects.toMatchObject({
          name: 'GatewayError',
          code: 'BAD_USER_INPUT',
          message: `key ${id} is the primary key; rotate first`,
        });
        expect(keyring.list()).toHaveLength(1);
      });

      it('answers NOT_FOUND for a key the keyring does not hold', async () => {
        await expect(newRotation().retire('k-20200101-000000')).rejects.toMatchObject({
          name: 'GatewayError',
          code: 'NOT_FOUND',
        });
      });

      it('refuses a key that still wraps secrets, saying how many', async () => {
        const old = keyring.primary().id;
        await keyring.addPrimary(); // a new primary, but nothing re-wrapped yet
        await expect(newRotation().retire(old)).rejects.toMatchObject({
          name: 'GatewayError',
          code: 'BAD_USER_INPUT',
          message: `key ${old} still wraps ${sealedCount} secrets`,
        });
        expect(keyring.get(old)).toBeDefined();
      });

      it('refuses any retirement while a rotation is running', async () => {
        const old = keyring.primary().id;
        const rotation = newRotation(5);
        await rotation.rotate();
        expect(rotation.status().state).toBe('RUNNING');
        await expect(rotation.retire(old)).rejects.toMatchObject({
          code: 'BAD_USER_INPUT',
          message: expect.stringMatching(/rotation is running/),
        });
        await rotation.whenIdle();
        expect(keyring.get(old)).toBeDefined();
      });

      it('forgets an old key nothing uses any more; the data still opens, also after a restart', async () => {
        const old = keyring.primary().id;
        const rotation = newRotation();
        const { primaryKeyId } = await rotation.rotate();
        await rotation.whenIdle();
        await rotation.retire(old);
        expect(keyring.get(old)).toBeUndefined();
        expect((await rotation.keys()).map((k) => k.id)).toEqual([primaryKeyId]);
        await expectEverythingOpens(store, envelope, connections);
        const reopened = await openFileKeyring(tmp.file(`keyring-${name}-${keyringCount}.json`));
        expect(reopened.list().map((k) => k.id)).toEqual([primaryKeyId]);
        await expectEverythingOpens(store, new Envelope(reopened), connections);
      });
    });

    describe('writes during a rotation are not lost', () => {
      it('a token refresh landing between listing and swapping wins (the swap is skipped)', async () => {
        const target = connections[0]!;
        const written = new Map<string, string>();
        let raced = false;
        // The real store, with one refresh slipped in right after the rotation lists its first batch.
        const racing = withOverrides(store, {
          listSealedNotWrappedBy: async (
            keyId: string,
            limit: number,
            after?: SealedRef | null,
          ): Promise<SealedField[]> => {
            const batch = await store.listSealedNotWrappedBy(keyId, limit, after);
            const targetRef = associatedData(tokensRef(target));
            if (!raced && batch.some((f) => associatedData(f.ref) === targetRef)) {
              raced = true;
              const text = tokensOf(target, 2);
              expect(await refresh(store, target, envelope.seal(text, tokensRef(target)))).toBe(true);
              written.set(`${target.providerId}/${target.connectionId}`, text);
            }
            return batch;
          },
        });
        const rotation = new KeyRotation({
          store: racing,
          keyring,
          envelope,
          batchSize: BATCH_SIZE,
          onError: (e) => errors.push(e),
        });
        const { primaryKeyId } = await rotation.rotate();
        await rotation.whenIdle();
        expect(raced).toBe(true);
        expect(rotation.status()).toMatchObject({ state: 'DONE', rewrapped: sealedCount - 1, failed: 0 });
        await expectEverythingOpens(store, envelope, connections, written);
        expect(await store.countSealedWrappedBy(primaryKeyId)).toBe(sealedCount);
        expect(errors).toEqual([]);
      });

      it('a replica still sealing with the old key is caught up by the next batch', async () => {
        const old = keyring.primary();
        const oldOnly = new Envelope(parseEnvKeyring(`${old.id}:${old.material.toString('base64')}`));
        const target = connections[connections.length - 1]!;
        let raced = false;
        const racing = withOverrides(store, {
          listSealedNotWrappedBy: async (
            keyId: string,
            limit: number,
            after?: SealedRef | null,
          ): Promise<SealedField[]> => {
            const batch = await store.listSealedNotWrappedBy(keyId, limit, after);
            const hit = batch.find((f) => f.ref.kind === 'provider' && f.ref.providerId === target.providerId);
            if (!raced && hit) {
              raced = true;
              await store.updateProvider(
                target.providerId,
                { clientSecret: oldOnly.seal('rotated-by-old-replica', hit.ref) },
                null,
              );
            }
            return batch;
          },
        });
        const rotation = new KeyRotation({ store: racing, keyring, envelope, batchSize: BATCH_SIZE });
        await rotation.rotate();
        await rotation.whenIdle();
        expect(raced).toBe(true);
        expect(rotation.status()).toMatchObject({ state: 'DONE', rewrapped: sealedCount, failed: 0 });
        expect(await store.countSealedWrappedBy(old.id)).toBe(0);
        const provider = await store.getProvider(target.providerId);
        expect(envelope.open(provider!.clientSecret!, providerRef(target.providerId))).toBe('rotated-by-old-replica');
      });

      it('concurrent refreshes and admin updates all survive', async () => {
        const rotation = newRotation(7);
        const { primaryKeyId } = await rotation.rotate();
        const written = new Map<string, string>();
        const traffic = connections
          .filter((_, i) => i % 4 === 0)
          .map(async (key, i) => {
            for (let generation = 2; generation < 5; generation++) {
              await new Promise<void>((resolve) => setImmediate(resolve));
              const text = tokensOf(key, generation);
              if (await refresh(store, key, envelope.seal(text, tokensRef(key))))
                written.set(`${key.providerId}/${key.connectionId}`, text);
            }
            if (i === 0) await store.updateProvider(key.providerId, { displayName: 'renamed' }, null);
          });
        await Promise.all(traffic);
        await rotation.whenIdle();
        expect(rotation.status().state).toBe('DONE');
        expect(written.size).toBe(traffic.length);
        await expectEverythingOpens(store, envelope, connections, written);
        expect(await store.countSealedWrappedBy(primaryKeyId)).toBe(sealedCount);
        expect(errors).toEqual([]);
      });
    });

    describe('values that cannot be re-wrapped', () => {
      it('are counted as failed, reported, and do not stop the others even when more than a batch', async () => {
        const foreign = new Envelope(await openFileKeyring(tmp.file(`foreign-${name}-${keyringCount}.json`)));
        const old = keyring.primary().id;
        // Tampered under the old key (the wrapped data key no longer authenticates).
        const victim = connections[1]!;
        const parts = (await store.getConnection(victim))!.tokens!.split('.');
        const wrapped = Buffer.from(parts[2]!, 'base64url');
        wrapped[20]! ^= 0xff;
        parts[2] = wrapped.toString('base64url');
        expect(await refresh(store, victim, parts.join('.') as Sealed)).toBe(true);
        // Under a key this keyring never held, on three providers: more than a batch of 2.
        for (const p of ['prov-03', 'prov-04', 'prov-05']) {
          await store.updateProvider(p, { clientSecret: foreign.seal('lost', providerRef(p)) }, null);
        }
        const rotation = newRotation(2);
        const { primaryKeyId } = await rotation.rotate();
        await rotation.whenIdle();
        expect(rotation.status()).toMatchObject({ state: 'DONE', rewrapped: sealedCount - 4, failed: 4 });
        expect(errors).toHaveLength(4);
        for (const e of errors) expect((e as GatewayError).code).toBe('INTERNAL_SERVER_ERROR');
        expect(await store.countSealedWrappedBy(primaryKeyId)).toBe(sealedCount - 4);
        // The tampered value still names the old key, which therefore cannot be retired.
        expect(await store.countSealedWrappedBy(old)).toBe(1);
        await expect(rotation.retire(old)).rejects.toMatchObject({
          code: 'BAD_USER_INPUT',
          message: `key ${old} still wraps 1 secrets`,
        });
      });
    });

    it('an environment keyring keeps its configured primary and re-wraps to it; retiring is done outside', async () => {
      const old = keyring.primary();
      const env = parseEnvKeyring(
        `next-1:${randomBytes(32).toString('base64')},${old.id}:${old.material.toString('base64')}`,
      );
      const envEnvelope = new Envelope(env);
      const rotation = new KeyRotation({ store, keyring: env, envelope: envEnvelope, batchSize: BATCH_SIZE });
      const started = await rotation.rotate();
      expect(started.primaryKeyId).toBe('next-1');
      expect(env.list()).toHaveLength(2);
      await rotation.whenIdle();
      expect(rotation.status()).toMatchObject({ state: 'DONE', rewrapped: sealedCount, failed: 0 });
      expect(await store.countSealedWrappedBy(old.id)).toBe(0);
      await expectEverythingOpens(store, envEnvelope, connections);
      await expect(rotation.retire(old.id)).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
        message: expect.stringMatching(/keys\.key/),
      });
    });

    it('a store failure stops the rotation as FAILED and reports the cause', async () => {
      const broken = withOverrides(store, { replaceSealed: () => Promise.reject(new Error('database went away')) });
      const rotation = new KeyRotation({ store: broken, keyring, envelope, onError: (e) => errors.push(e) });
      await rotation.rotate();
      await rotation.whenIdle();
      expect(rotation.status()).toMatchObject({ state: 'FAILED', rewrapped: 0 });
      expect(rotation.status().finishedAt).toBeInstanceOf(Date);
      expect(errors).toEqual([new Error('database went away')]);
      // A new rotation over a working store finishes the job.
      const again = newRotation();
      const { primaryKeyId } = await again.rotate();
      await again.whenIdle();
      expect(await store.countSealedWrappedBy(primaryKeyId)).toBe(sealedCount);
    });

    it('stop() ends a running rotation between batches as FAILED; the next rotate() finishes the work', async () => {
      const old = keyring.primary().id;
      const rotation = newRotation(5);
      await rotation.rotate();
      await new Promise<void>((resolve) => setImmediate(resolve));
      await new Promise<void>((resolve) => setImmediate(resolve));
      await rotation.stop();
      const stopped = rotation.status();
      expect(stopped.state).toBe('FAILED');
      expect(stopped.finishedAt).toBeInstanceOf(Date);
      expect(stopped.rewrapped % 5).toBe(0);
      expect(stopped.rewrapped).toBeLessThan(sealedCount);
      expect(await store.countSealedWrappedBy(old)).toBe(sealedCount - stopped.rewrapped);
      expect(errors).toEqual([]);
      const { primaryKeyId } = await rotation.rotate();
      await rotation.whenIdle();
      expect(rotation.status()).toMatchObject({ state: 'DONE', rewrapped: sealedCount });
      expect(await store.countSealedWrappedBy(primaryKeyId)).toBe(sealedCount);
      await expectEverythingOpens(store, envelope, connections);
    });

    it('refuses a batch size that is not a positive integer', () => {
      for (const batchSize of [0, -1, 1.5]) {
        expect(() => new KeyRotation({ store, keyring, envelope, batchSize })).toThrow(RangeError);
      }
    });
  });
}
