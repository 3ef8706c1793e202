/**
 * One behaviour, two databases: every case runs against SQLite and PostgreSQL, each case on a
 * fresh file or schema. PostgreSQL cases skip with a notice when the server is unreachable, and
 * fail instead when CI=true.
 */
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Sealed, SealedRef } from '../src/crypto/sealed.js';
import type {
  AccessPolicyRecord,
  ConnectionRecord,
  ConnectionState,
  ConsentStateRecord,
  PendingConsentRecord,
  ProviderRecord,
} from '../src/domain/model.js';
import { GatewayError } from '../src/errors.js';
import { decodeCursor, encodeCursor } from '../src/store/cursor.js';
import { KeyedMutex } from '../src/store/keyedMutex.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS } from '../src/store/migrations.js';
import { openStore } from '../src/store/open.js';
import type { LifecycleEventType, SealedField, Store, TokenWrite } from '../src/store/types.js';
import type { ConnectionKey } from '../src/domain/ids.js';
import { connectionRecord } from './support/connectionRecord.js';
import { freshPgSchema, pgUrl, requirePgOrSkip, withPgClient } from './support/pg.js';
import { tempDir } from './support/tmp.js';

const hasPg = await requirePgOrSkip('the PostgreSQL store conformance suite');

// Fixtures ------------------------------------------------------------------------------------

const T0 = new Date('2024-05-01T10:00:00.000Z');
const T1 = new Date('2024-05-01T11:00:00.000Z');

/** Stores never decrypt, so any well-formed sealed string will do. */
const sealed = (keyId: string, tag: string): Sealed => `v1.${keyId}.${tag}.iv.ct.tag` as Sealed;

function provider(id: string, over: Partial<ProviderRecord> = {}): ProviderRecord {
  return {
    id,
    displayName: `Provider ${id}`,
    identityProvider: 'github',
    grantType: 'AUTHORIZATION_CODE',
    clientId: `client-${id}`,
    clientSecret: sealed('k1', `ps-${id}`),
    scopes: ['repo', 'read:user'],
    parameters: { tokenUrl: 'https://idp.example/token', tenantId: 'tenant-1' },
    version: 1,
    createdAt: T0,
    updatedAt: T0,
    ...over,
  };
}

const connection = (providerId: string, id: string, over: Partial<ConnectionRecord> = {}): ConnectionRecord =>
  connectionRecord(providerId, id, T0, over);

function policy(
  providerId: string,
  connectionId: string,
  id: string,
  over: Partial<AccessPolicyRecord> = {},
): AccessPolicyRecord {
  return {
    providerId,
    connectionId,
    id,
    kind: 'USER',
    objectId: `user-${id}`,
    tenantId: 'tenant-1',
    appIds: ['app-a', 'app-b'],
    issuer: 'https://issuer.example.com',
    createdAt: T0,
    ...over,
  };
}

function consent(stateHash: string, key: ConnectionKey, over: Partial<ConsentStateRecord> = {}): ConsentStateRecord {
  return {
    stateHash,
    providerId: key.providerId,
    connectionId: key.connectionId,
    codeVerifier: sealed('k1', `cv-${stateHash}`),
    nonce: `nonce-${stateHash}`,
    postLoginRedirectUrl: 'https://app.example/done',
    startedBy: 'ADMIN',
    linkToken: null,
    expiresAt: T1,
    createdAt: T0,
    ...over,
  };
}

const key = (providerId: string, connectionId: string): ConnectionKey => ({ providerId, connectionId });

function pending(
  consentHash: string,
  key: ConnectionKey,
  over: Partial<PendingConsentRecord> = {},
): PendingConsentRecord {
  return { consentHash, ...key, tokens: sealed('k1', `tokens-${consentHash}`), expiresAt: T1, createdAt: T0, ...over };
}

/** Provider `providerId` with plain connections `connectionIds`. */
async function seedConnections(store: Store, providerId: string, connectionIds: readonly string[]): Promise<void> {
  await store.insertProvider(provider(providerId), 10);
  for (const id of connectionIds) await store.insertConnection(connection(providerId, id), [], 10);
}

const tokenWrite = (tag: string, state: ConnectionState = { status: 'CONNECTED' }): TokenWrite => ({
  tokens: sealed('k1', `tok-${tag}`),
  tokenExpiresAt: new Date('2024-05-01T12:00:00.000Z'),
  lastRefreshedAt: new Date('2024-05-01T10:30:00.000Z'),
  state,
});

/** The GatewayError `promise` rejects with (fails the test if it resolves or throws anything else). */
async function failure(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayError);
    return e as GatewayError;
  }
  throw new Error('expected a GatewayError, but the call succeeded');
}

async function queriesOf(store: Store, fn: () => Promise<unknown>): Promise<number> {
  const before = store.stats.queries;
  await fn();
  return store.stats.queries - before;
}

/** Records that the concurrent callers of `track` never overlap more than `limit` at once. */
function overlapMeter() {
  let active = 0;
  let peak = 0;
  return {
    get peak() {
      return peak;
    },
    async track<T>(fn: () => Promise<T>): Promise<T> {
      active++;
      peak = Math.max(peak, active);
      try {
        return await fn();
      } finally {
        active--;
      }
    },
  };
}

// Targets -------------------------------------------------------------------------------------

/** One database (a file or a schema) that several stores may open, like replicas. */
interface Place {
  open(): Promise<Store>;
  /** Raw SQL on the same database, outside any store (to inspect or to damage it). */
  sql(text: string): Promise<Record<string, unknown>[]>;
  cleanup(): Promise<void>;
}

interface Target {
  readonly name: 'sqlite' | 'postgres';
  place(): Promise<Place>;
}

function tracking(open: () => Promise<Store>) {
  const stores: Store[] = [];
  return {
    open: async () => {
      const store = await open();
      stores.push(store);
      return store;
    },
    closeAll: () => Promise.all(stores.map((s) => s.close().catch(() => undefined))),
  };
}

const SQLITE: Target = {
  name: 'sqlite',
  async place() {
    const dir = await tempDir('cg-store-');
    const file = dir.file('nested', 'dir', 'store.db');
    const stores = tracking(() => openStore(`sqlite:${file}`));
    return {
      open: stores.open,
      async sql(text) {
        const db = new Database(file);
        try {
          const statement = db.prepare(text);
          if (statement.reader) return statement.all() as Record<string, unknown>[];
          statement.run();
          return [];
        } finally {
          db.close();
        }
      },
      async cleanup() {
        await stores.closeAll();
        await dir.cleanup();
      },
    };
  },
};

const POSTGRES: Target = {
  name: 'postgres',
  async place() {
    const { schema, drop } = await freshPgSchema('store_conformance');
    const stores = tracking(() => openStore(pgUrl(), { pgSchema: schema }));
    return {
      open: stores.open,
      sql: (text) =>
        withPgClient(async (c) => {
          await c.query(`SET search_path TO "${schema}"`);
          return (await c.query(text)).rows as Record<string, unknown>[];
        }),
      async cleanup() {
        await stores.closeAll();
        await drop();
      },
    };
  },
};

const TARGETS: Target[] = hasPg ? [SQLITE, POSTGRES] : [SQLITE];

if (!hasPg)
  describe.skip('postgres store', () => {
    it('runs when PostgreSQL is reachable', () => {});
  });

// The suite -----------------------------------------------------------------------------------

describe.each(TARGETS.map((t) => [t.name, t] as const))('%s store', (_name, target) => {
  let place: Place;
  let store: Store;

  beforeEach(async () => {
    place = await target.place();
    store = await place.open();
  });
  afterEach(async () => {
    await place.cleanup();
  });

  it('names its dialect and answers ping', async () => {
    expect(store.dialect).toBe(target.name);
    await expect(store.ping()).resolves.toBeUndefined();
  });

  it('rejects calls once closed', async () => {
    await store.close();
    await expect(store.ping()).rejects.toThrow();
    await expect(store.close()).resolves.toBeUndefined();
  });

  describe('providers', () => {
    it('round-trips every field exactly, frozen', async () => {
      const input = provider('github-01', { clientSecret: null, scopes: [], parameters: {} });
      const full = provider('github-02', { grantType: 'CLIENT_CREDENTIALS', version: 7, updatedAt: T1 });
      expect(await store.insertProvider(input, 10)).toEqual(input);
      expect(await store.insertProvider(full, 10)).toEqual(full);
      const read = await store.getProvider('github-02');
      expect(read).toEqual(full);
      expect(read?.createdAt).toBeInstanceOf(Date);
      expect(Object.isFrozen(read)).toBe(true);
      expect(Object.isFrozen(read?.scopes)).toBe(true);
      expect(await store.getProvider('github-03')).toBeNull();
      expect(await store.countProviders()).toBe(2);
    });

    it('refuses a taken id with ALREADY_EXISTS', async () => {
      await store.insertProvider(provider('github-01'), 10);
      const e = await failure(store.insertProvider(provider('github-01', { displayName: 'other' }), 10));
      expect(e.code).toBe('ALREADY_EXISTS');
      expect(e.message).toBe("credential provider 'github-01' already exists");
      expect((await store.getProvider('github-01'))?.displayName).toBe('Provider github-01');
    });

    it('refuses the provider past the limit with LIMIT_EXCEEDED, but names a taken id first', async () => {
      await store.insertProvider(provider('p1'), 2);
      await store.insertProvider(provider('p2'), 2);
      const e = await failure(store.insertProvider(provider('p3'), 2));
      expect(e.code).toBe('LIMIT_EXCEEDED');
      expect(e.message).toBe('the instance already has 2 credential providers (limit)');
      expect((await failure(store.insertProvider(provider('p1'), 2))).code).toBe('ALREADY_EXISTS');
      expect(await store.countProviders()).toBe(2);
    });

    it('lets exactly N of many concurrent inserts through a limit of N, across replicas', async () => {
      const replica = await place.open();
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) => (i % 2 ? replica : store).insertProvider(provider(`race-${i}`), 4)),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
      const codes = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as GatewayError).code] : []));
      expect(codes).toEqual(Array(8).fill('LIMIT_EXCEEDED'));
      expect(await store.countProviders()).toBe(4);
    });

    it('reads many by id in one statement, aligned with the ids', async () => {
      await store.insertProvider(provider('a'), 10);
      await store.insertProvider(provider('b'), 10);
      let got: (ProviderRecord | null)[] = [];
      expect(await queriesOf(store, async () => (got = await store.getProviders(['b', 'missing', 'a', 'b'])))).toBe(1);
      expect(got.map((p) => p?.id ?? null)).toEqual(['b', null, 'a', 'b']);
      expect(got[0]).toEqual(provider('b'));
      expect(await queriesOf(store, () => store.getProviders([]))).toBe(0);
    });

    it('pages by id with opaque cursors and a null cursor at the end', async () => {
      for (const id of ['p-05', 'p-02', 'p-07', 'p-01', 'p-04', 'p-03', 'p-06'])
        await store.insertProvider(provider(id), 100);
      const one = await store.listProviders({ first: 3, after: null });
      expect(one.items.map((p) => p.id)).toEqual(['p-01', 'p-02', 'p-03']);
      expect(one.nextCursor).not.toBeNull();
      expect(one.nextCursor).not.toContain('p-03');
      const two = await store.listProviders({ first: 3, after: one.nextCursor });
      expect(two.items.map((p) => p.id)).toEqual(['p-04', 'p-05', 'p-06']);
      const three = await store.listProviders({ first: 3, after: two.nextCursor });
      expect(three.items.map((p) => p.id)).toEqual(['p-07']);
      expect(three.nextCursor).toBeNull();
      expect(three.items[0]).toEqual(provider('p-07'));
    });

    it('ends with a null cursor when the last page is exactly full', async () => {
      for (const id of ['a', 'b', 'c', 'd']) await store.insertProvider(provider(id), 100);
      const one = await store.listProviders({ first: 2, after: null });
      const two = await store.listProviders({ first: 2, after: one.nextCursor });
      expect(two.items.map((p) => p.id)).toEqual(['c', 'd']);
      expect(two.nextCursor).toBeNull();
      expect(await store.listProviders({ first: 2, after: encodeCursor('zzz') })).toEqual({
        items: [],
        nextCursor: null,
      });
    });

    it('orders ids byte-wise (identically on both databases)', async () => {
      const ids = ['a_b', 'aB', 'a-b', 'B', '0', 'a.b', 'ü', 'Z'];
      for (const id of ids) await store.insertProvider(provider(id), 100);
      const page = await store.listProviders({ first: 100, after: null });
      expect(page.items.map((p) => p.id)).toEqual(
        [...ids].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))),
      );
      expect(page.items.map((p) => p.id)).toEqual(['0', 'B', 'Z', 'a-b', 'a.b', 'aB', 'a_b', 'ü']);
    });

    it('rejects a cursor it did not issue with BAD_USER_INPUT', async () => {
      const e = await failure(store.listProviders({ first: 3, after: 'not a cursor!' }));
      expect(e.code).toBe('BAD_USER_INPUT');
      expect(e.details).toEqual({ field: 'after' });
    });

    it('updates the patched fields, bumps version and updatedAt, keeps the rest', async () => {
      await store.insertProvider(provider('p1'), 10);
      const before = Date.now();
      const updated = await store.updateProvider(
        'p1',
        { displayName: 'Renamed', clientSecret: null, scopes: ['a'], parameters: { issuer: 'https://i' } },
        1,
      );
      expect(updated).toEqual({
        ...provider('p1'),
        displayName: 'Renamed',
        clientSecret: null,
        scopes: ['a'],
        parameters: { issuer: 'https://i' },
        version: 2,
        updatedAt: updated.updatedAt,
      });
      expect(updated.updatedAt.getTime()).toBeGreaterThanOrEqual(before);
      expect(await store.getProvider('p1')).toEqual(updated);
      const unconditional = await store.updateProvider('p1', { clientId: 'new-client', displayName: undefined }, null);
      expect(unconditional).toMatchObject({ clientId: 'new-client', displayName: 'Renamed', version: 3 });
    });

    it('drops every connection token and pending consent with a rebinding update, in the same transaction', async () => {
      await store.insertProvider(provider('p1'), 10);
      await store.insertProvider(provider('p2'), 10);
      for (const [p, c] of [
        ['p1', 'a'],
        ['p1', 'b'],
        ['p2', 'a'],
      ] as const) {
        await store.insertConnection(connection(p, c), [], 10);
        await store.writeTokens(key(p, c), tokenWrite(`${p}${c}`), 0);
      }
      await store.setConnectionState(key('p1', 'b'), {
        status: 'ERROR',
        error: { code: 'REAUTHORIZATION_REQUIRED', message: 'again' },
      });
      await store.insertConsentState(consent('h1', key('p1', 'a')));
      await store.insertConsentState(consent('h2', key('p2', 'a')));

      await store.updateProvider('p1', { parameters: { tokenUrl: 'https://elsewhere.example/token' } }, 1, {
        dropConnectionTokens: true,
      });
      for (const c of ['a', 'b']) {
        expect(await store.getConnection(key('p1', c))).toMatchObject({
          tokens: null,
          tokenExpiresAt: null,
          lastRefreshedAt: null,
          tokenGeneration: 2,
          state: { status: 'NOT_CONNECTED' },
        });
      }
      expect(await store.consumeConsentState('h1', T0)).toBeNull();
      // Another provider's connections and consents are untouched.
      expect(await store.getConnection(key('p2', 'a'))).toMatchObject({
        tokens: sealed('k1', 'tok-p2a'),
        state: { status: 'CONNECTED' },
      });
      expect(await store.consumeConsentState('h2', T0)).not.toBeNull();
    });

    it("drops client-credentials connections' own secrets with an endpoint change; those on the provider's client stay connected", async () => {
      await store.insertProvider(
        provider('cc', { grantType: 'CLIENT_CREDENTIALS', clientId: null, clientSecret: null }),
        10,
      );
      expect((await store.getProvider('cc'))?.clientId).toBeNull();
      await store.insertConnection(
        connection('cc', 'own', {
          clientId: 'own-client',
          clientSecret: sealed('k1', 'cs-own'),
          state: { status: 'CONNECTED' },
        }),
        [],
        10,
      );
      await store.insertConnection(connection('cc', 'shared', { state: { status: 'CONNECTED' } }), [], 10);
      await store.writeTokens(key('cc', 'own'), tokenWrite('own'), 0);

      await store.updateProvider('cc', { clientId: 'now-a-client', clientSecret: sealed('k1', 'ps-new') }, null, {
        dropConnectionTokens: true,
      });
      expect(await store.getConnection(key('cc', 'own'))).toMatchObject({
        tokens: null,
        clientSecret: sealed('k1', 'cs-own'),
        state: { status: 'CONNECTED' },
      });

      await store.updateProvider('cc', { parameters: { tokenUrl: 'https://elsewhere.example/token' } }, null, {
        dropConnectionTokens: true,
        dropConnectionClientSecrets: true,
      });
      expect(await store.getConnection(key('cc', 'own'))).toMatchObject({
        clientId: 'own-client',
        clientSecret: null,
        state: { status: 'NOT_CONNECTED' },
      });
      expect(await store.getConnection(key('cc', 'shared'))).toMatchObject({
        clientSecret: null,
        state: { status: 'CONNECTED' },
      });
    });

    it("drops a connection's tokens with its own client change, and moves its generation", async () => {
      await seedConnections(store, 'p1', ['a']);
      await store.writeTokens(key('p1', 'a'), tokenWrite('a'), 0);
      const kept = await store.updateConnection(key('p1', 'a'), { displayName: 'renamed' }, null);
      expect(kept).toMatchObject({ tokens: sealed('k1', 'tok-a'), tokenGeneration: 1 });
      const dropped = await store.updateConnection(
        key('p1', 'a'),
        { clientId: 'c2', clientSecret: sealed('k1', 'cs2') },
        null,
        { dropTokens: true },
      );
      expect(dropped).toMatchObject({
        clientId: 'c2',
        tokens: null,
        tokenExpiresAt: null,
        tokenGeneration: 2,
        version: 3,
      });
      expect(await store.writeTokens(key('p1', 'a'), tokenWrite('late'), 1)).toBeNull();
    });

    it('refuses a stale expected version with VERSION_CONFLICT and a missing id with NOT_FOUND', async () => {
      await store.insertProvider(provider('p1'), 10);
      await store.updateProvider('p1', { displayName: 'x' }, null);
      const e = await failure(store.updateProvider('p1', { displayName: 'y' }, 1));
      expect(e.code).toBe('VERSION_CONFLICT');
      expect(e.message).toBe("credential provider 'p1': version 1 expected, current is 2");
      expect(e.details).toEqual({ expectedVersion: 1, currentVersion: 2 });
      expect((await store.getProvider('p1'))?.displayName).toBe('x');
      const missing = await failure(store.updateProvider('nope', { displayName: 'y' }, null));
      expect(missing.code).toBe('NOT_FOUND');
      expect(missing.message).toBe("credential provider 'nope' not found");
      expect((await failure(store.deleteProvider('p1', 1))).code).toBe('VERSION_CONFLICT');
      expect((await failure(store.deleteProvider('nope', null))).code).toBe('NOT_FOUND');
      expect(await store.getProvider('p1')).not.toBeNull();
    });

    it('deletes a provider with its connections, policies, tokens and consents in progress', async () => {
      for (const p of ['p1', 'p2']) {
        await store.insertProvider(provider(p), 10);
        for (const c of ['c1', 'c2']) {
          await store.insertConnection(
            connection(p, c, { clientSecret: sealed('k1', `cs-${p}-${c}`), tokens: sealed('k1', `t-${p}-${c}`) }),
            [policy(p, c, 'owner')],
            10,
          );
          await store.insertConsentState(consent(`h-${p}-${c}`, key(p, c)));
        }
      }
      expect(await store.countSealedWrappedBy('k1')).toBe(2 + 4 * 2 + 4);
      await store.deleteProvider('p1', 1);
      expect(await store.getProvider('p1')).toBeNull();
      expect(await store.getConnections([key('p1', 'c1'), key('p1', 'c2'), key('p2', 'c1')])).toEqual([
        null,
        null,
        expect.objectContaining({ providerId: 'p2', id: 'c1' }),
      ]);
      expect((await store.listAccessPolicies([key('p1', 'c1'), key('p2', 'c1')])).map((l) => l.length)).toEqual([0, 1]);
      expect(await store.consumeConsentState('h-p1-c1', T0)).toBeNull();
      expect(await store.countSealedWrappedBy('k1')).toBe(1 + 2 * 2 + 2);
      expect(await store.countProviders()).toBe(1);
    });
  });

  describe('connections', () => {
    beforeEach(() => seedConnections(store, 'p1', []));

    it('round-trips every field and its initial policies exactly', async () => {
      const input = connection('p1', 'c1', {
        displayName: 'Alice',
        state: { status: 'ERROR', error: { code: 'REAUTHORIZATION_REQUIRED', message: 'consent again' } },
        clientId: 'cc-client',
        clientSecret: sealed('k1', 'cs'),
        tokens: sealed('k1', 'tok'),
        tokenExpiresAt: new Date('2024-05-02T00:00:00.123Z'),
        lastRefreshedAt: new Date('2024-05-01T23:00:00.456Z'),
        tokenGeneration: 3,
        version: 5,
        updatedAt: T1,
      });
      const policies = [
        policy('p1', 'c1', 'mi', { kind: 'MANAGED_IDENTITY', tenantId: null, appIds: [] }),
        policy('p1', 'c1', 'alice'),
      ];
      expect(await store.insertConnection(input, policies, 10)).toEqual(input);
      const read = await store.getConnection(key('p1', 'c1'));
      expect(read).toEqual(input);
      expect(Object.isFrozen(read?.state)).toBe(true);
      expect(await store.listAccessPolicies([key('p1', 'c1')])).toEqual([[policies[1], policies[0]]]);
      expect(await store.getConnection(key('p1', 'c2'))).toBeNull();
    });

    it('refuses a taken id, a missing provider and the connection past the limit', async () => {
      await store.insertConnection(connection('p1', 'c1'), [], 2);
      const taken = await failure(store.insertConnection(connection('p1', 'c1'), [], 2));
      expect(taken.code).toBe('ALREADY_EXISTS');
      expect(taken.message).toBe("connection 'c1' of provider 'p1' already exists");
      const orphan = await failure(store.insertConnection(connection('nope', 'c1'), [], 2));
      expect(orphan.code).toBe('NOT_FOUND');
      expect(orphan.message).toBe("credential provider 'nope' not found");
      await store.insertConnection(connection('p1', 'c2'), [], 2);
      const full = await failure(store.insertConnection(connection('p1', 'c3'), [], 2));
      expect(full.code).toBe('LIMIT_EXCEEDED');
      expect(full.message).toBe("credential provider 'p1' already has 2 connections (limit)");
      expect(full.details).toEqual({ limit: 2 });
    });

    it('counts the limit per provider and allows the same connection id under two providers', async () => {
      await store.insertProvider(provider('p2'), 10);
      await store.insertConnection(connection('p1', 'c1'), [], 1);
      expect(await store.insertConnection(connection('p2', 'c1'), [], 1)).toMatchObject({ providerId: 'p2', id: 'c1' });
    });

    it('lets exactly N of many concurrent inserts through a limit of N, across replicas', async () => {
      const replica = await place.open();
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) =>
          (i % 2 ? replica : store).insertConnection(
            connection('p1', `race-${i}`),
            [policy('p1', `race-${i}`, 'mi')],
            5,
          ),
        ),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
      const codes = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as GatewayError).code] : []));
      expect(codes).toEqual(Array(7).fill('LIMIT_EXCEEDED'));
      expect((await store.listConnectionsOfProviders(['p1'], { first: 100, after: null }))[0]?.items).toHaveLength(5);
    });

    it('inserts nothing when one of the initial policies fails (atomic)', async () => {
      const e = await failure(
        store.insertConnection(connection('p1', 'c1'), [policy('p1', 'c1', 'x'), policy('p1', 'c1', 'x')], 10),
      );
      expect(e.code).toBe('ALREADY_EXISTS');
      expect(e.message).toBe("access policy 'x' of connection 'c1' of provider 'p1' already exists");
      expect(await store.getConnection(key('p1', 'c1'))).toBeNull();
      expect(await store.listAccessPolicies([key('p1', 'c1')])).toEqual([[]]);
    });

    it('refuses initial policies that belong to another connection (misuse)', async () => {
      await expect(store.insertConnection(connection('p1', 'c1'), [policy('p1', 'c2', 'x')], 10)).rejects.toThrow(
        TypeError,
      );
      expect(await store.getConnection(key('p1', 'c1'))).toBeNull();
    });

    it('reads many by key in one statement, aligned with the keys', async () => {
      await store.insertProvider(provider('p2'), 10);
      await store.insertConnection(connection('p1', 'c1'), [], 10);
      await store.insertConnection(connection('p2', 'c1'), [], 10);
      let got: (ConnectionRecord | null)[] = [];
      const keys = [key('p2', 'c1'), key('p1', 'c2'), key('p1', 'c1'), key('p2', 'c1')];
      expect(await queriesOf(store, async () => (got = await store.getConnections(keys)))).toBe(1);
      expect(got.map((c) => (c ? `${c.providerId}/${c.id}` : null))).toEqual(['p2/c1', null, 'p1/c1', 'p2/c1']);
      expect(got[2]).toEqual(connection('p1', 'c1'));
    });

    it('lists a page of connections for each of many providers in one statement', async () => {
      const counts = { q0: 0, q1: 1, q2: 2, q3: 3, q4: 4 };
      for (const [p, n] of Object.entries(counts)) {
        await store.insertProvider(provider(p), 10);
        for (let i = n; i >= 1; i--) await store.insertConnection(connection(p, `c${i}`), [], 10);
      }
      const providerIds = ['q0', 'q1', 'q2', 'q3', 'q4'];
      let pages: Awaited<ReturnType<Store['listConnectionsOfProviders']>> = [];
      const used = await queriesOf(
        store,
        async () => (pages = await store.listConnectionsOfProviders(providerIds, { first: 2, after: null })),
      );
      expect(used).toBe(1);
      expect(pages.map((p) => p.items.map((c) => `${c.providerId}/${c.id}`))).toEqual([
        [],
        ['q1/c1'],
        ['q2/c1', 'q2/c2'],
        ['q3/c1', 'q3/c2'],
        ['q4/c1', 'q4/c2'],
      ]);
      expect(pages.map((p) => p.nextCursor === null)).toEqual([true, true, true, false, false]);
      expect(pages[3]?.items[0]).toEqual(connection('q3', 'c1'));
      const after = pages[4]?.nextCursor ?? null;
      expect(pages[3]?.nextCursor).toBe(after);
      const next = await store.listConnectionsOfProviders(['q3', 'q4', 'missing', 'q3'], { first: 2, after });
      expect(next.map((p) => p.items.map((c) => c.id))).toEqual([['c3'], ['c3', 'c4'], [], ['c3']]);
      expect(next.map((p) => p.nextCursor)).toEqual([null, null, null, null]);
      const third = await store.listConnectionsOfProviders(['q4'], { first: 1, after: encodeCursor('c2') });
      expect(third[0]?.items.map((c) => c.id)).toEqual(['c3']);
      expect(third[0]?.nextCursor).not.toBeNull();
      expect(decodeCursor(third[0]?.nextCursor ?? '')).toBe('c3');
      expect(await queriesOf(store, () => store.listConnectionsOfProviders([], { first: 2, after: null }))).toBe(0);
    });

    it('lists only the connections in a status, paging within them, for many providers in one statement', async () => {
      await seedConnections(store, 's1', ['a', 'b', 'c', 'd', 'e']);
      await seedConnections(store, 's2', ['a', 'b']);
      const failed = { status: 'ERROR', error: { code: 'REAUTHORIZATION_REQUIRED', message: 'revoked' } } as const;
      for (const id of ['b', 'c', 'e']) await store.setConnectionState(key('s1', id), failed);
      await store.setConnectionState(key('s2', 'a'), { status: 'CONNECTED' });
      let pages: Awaited<ReturnType<Store['listConnectionsOfProviders']>> = [];
      const used = await queriesOf(
        store,
        async () => (pages = await store.listConnectionsOfProviders(['s1', 's2'], { first: 2, after: null }, 'ERROR')),
      );
      expect(used).toBe(1);
      expect(pages.map((p) => p.items.map((c) => c.id))).toEqual([['b', 'c'], []]);
      const next = await store.listConnectionsOfProviders(['s1'], { first: 2, after: pages[0]!.nextCursor }, 'ERROR');
      expect(next[0]?.items.map((c) => c.id)).toEqual(['e']);
      expect(next[0]?.nextCursor).toBeNull();
      const connected = await store.listConnectionsOfProviders(['s1', 's2'], { first: 10, after: null }, 'CONNECTED');
      expect(connected.map((p) => p.items.map((c) => c.id))).toEqual([[], ['a']]);
      const all = await store.listConnectionsOfProviders(['s1'], { first: 10, after: null }, null);
      expect(all[0]?.items).toHaveLength(5);
    });

    it('counts connections by status for many providers in one statement', async () => {
      await seedConnections(store, 'n1', ['a', 'b', 'c']);
      await seedConnections(store, 'n2', ['a']);
      await store.insertProvider(provider('n3'), 10);
      await store.setConnectionState(key('n1', 'a'), { status: 'CONNECTED' });
      await store.setConnectionState(key('n1', 'b'), { status: 'ERROR', error: { code: 'X', message: 'y' } });
      let counts: Awaited<ReturnType<Store['countConnectionsByStatus']>> = [];
      const used = await queriesOf(
        store,
        async () => (counts = await store.countConnectionsByStatus(['n1', 'n2', 'n3', 'missing', 'n1'])),
      );
      expect(used).toBe(1);
      expect(counts).toEqual([
        { CONNECTED: 1, NOT_CONNECTED: 1, ERROR: 1 },
        { CONNECTED: 0, NOT_CONNECTED: 1, ERROR: 0 },
        { CONNECTED: 0, NOT_CONNECTED: 0, ERROR: 0 },
        { CONNECTED: 0, NOT_CONNECTED: 0, ERROR: 0 },
        { CONNECTED: 1, NOT_CONNECTED: 1, ERROR: 1 },
      ]);
      expect(await queriesOf(store, () => store.countConnectionsByStatus([]))).toBe(0);
    });

    it('updates the patched fields, bumps version and updatedAt, leaves tokens alone', async () => {
      await store.insertConnection(connection('p1', 'c1', { tokens: sealed('k1', 't'), tokenGeneration: 4 }), [], 10);
      const updated = await store.updateConnection(
        key('p1', 'c1'),
        { displayName: 'Renamed', clientId: 'cid', clientSecret: sealed('k1', 'new'), state: { status: 'CONNECTED' } },
        1,
      );
      expect(updated).toEqual({
        ...connection('p1', 'c1', { tokens: sealed('k1', 't'), tokenGeneration: 4 }),
        displayName: 'Renamed',
        clientId: 'cid',
        clientSecret: sealed('k1', 'new'),
        state: { status: 'CONNECTED' },
        version: 2,
        updatedAt: updated.updatedAt,
      });
      expect(updated.updatedAt.getTime()).toBeGreaterThan(T0.getTime());
      const cleared = await store.updateConnection(key('p1', 'c1'), { clientSecret: null, clientId: null }, null);
      expect(cleared).toMatchObject({ clientSecret: null, clientId: null, displayName: 'Renamed', version: 3 });
    });

    it('refuses stale versions and missing connections on update and delete', async () => {
      await store.insertConnection(connection('p1', 'c1'), [], 10);
      await store.setConnectionState(key('p1', 'c1'), { status: 'CONNECTED' });
      const stale = await failure(store.updateConnection(key('p1', 'c1'), { displayName: 'x' }, 1));
      expect(stale.code).toBe('VERSION_CONFLICT');
      expect(stale.message).toBe("connection 'c1' of provider 'p1': version 1 expected, current is 2");
      const missing = await failure(store.updateConnection(key('p1', 'nope'), { displayName: 'x' }, null));
      expect(missing.code).toBe('NOT_FOUND');
      expect(missing.message).toBe("connection 'nope' of provider 'p1' not found");
      expect((await failure(store.deleteConnection(key('p1', 'c1'), 1))).code).toBe('VERSION_CONFLICT');
      expect((await failure(store.deleteConnection(key('p1', 'nope'), null))).code).toBe('NOT_FOUND');
      expect((await failure(store.setConnectionState(key('p1', 'nope'), { status: 'CONNECTED' }))).code).toBe(
        'NOT_FOUND',
      );
    });

    it('deletes a connection with its policies and consents in progress', async () => {
      await store.insertConnection(connection('p1', 'c1'), [policy('p1', 'c1', 'a')], 10);
      await store.insertConnection(connection('p1', 'c2'), [policy('p1', 'c2', 'a')], 10);
      await store.insertConsentState(consent('h1', key('p1', 'c1')));
      await store.deleteConnection(key('p1', 'c1'), 1);
      expect(await store.getConnection(key('p1', 'c1'))).toBeNull();
      expect(
        (await store.listAccessPolicies([key('p1', 'c1'), key('p1', 'c2')])).map((l) => l.map((p) => p.id)),
      ).toEqual([[], ['a']]);
      expect(await store.consumeConsentState('h1', T0)).toBeNull();
      // The id is free again, and starts without the old policies.
      await store.insertConnection(connection('p1', 'c1'), [], 10);
      expect(await store.listAccessPolicies([key('p1', 'c1')])).toEqual([[]]);
    });

    it('sets the state, bumping the version only', async () => {
      await store.insertConnection(connection('p1', 'c1', { tokens: sealed('k1', 't') }), [], 10);
      const state: ConnectionState = {
        status: 'ERROR',
        error: { code: 'REAUTHORIZATION_REQUIRED', message: 'refresh token rejected' },
      };
      const after = await store.setConnectionState(key('p1', 'c1'), state);
      expect(after.state).toEqual(state);
      expect(after).toMatchObject({ version: 2, tokenGeneration: 0, tokens: sealed('k1', 't') });
      expect((await store.setConnectionState(key('p1', 'c1'), { status: 'CONNECTED' })).state).toEqual({
        status: 'CONNECTED',
      });
    });

    it('sets a state decided from one token generation only while that generation is current', async () => {
      await store.insertConnection(connection('p1', 'c1', { tokens: sealed('k1', 't') }), [], 10);
      const rejected: ConnectionState = {
        status: 'ERROR',
        error: { code: 'REAUTHORIZATION_REQUIRED', message: 'refresh token rejected' },
      };
      // A consent writes a new token set in between: the rejection of the older one must not land on it.
      const consented = await store.writeTokens(key('p1', 'c1'), tokenWrite('consent'), 0);
      expect(await store.setConnectionStateIfGeneration(key('p1', 'c1'), rejected, 0)).toBeNull();
      expect(await store.getConnection(key('p1', 'c1'))).toEqual(consented);
      const marked = await store.setConnectionStateIfGeneration(key('p1', 'c1'), rejected, 1);
      expect(marked).toMatchObject({ state: rejected, tokenGeneration: 1, version: 2 });
      expect((await failure(store.setConnectionStateIfGeneration(key('p1', 'nope'), rejected, 0))).code).toBe(
        'NOT_FOUND',
      );
    });
  });

  describe('unconsented auto-created connections', () => {
    const MINUTE_MS = 60_000;
    const at = (minutes: number) => new Date(T0.getTime() + minutes * MINUTE_MS);
    const auto = (id: string, minutes: number) =>
      store.insertConnection(
        connection('p1', id, { createdAt: at(minutes), updatedAt: at(minutes) }),
        [policy('p1', id, 'owner')],
        100,
        { autoCreated: true },
      );
    const ids = async () =>
      (await store.listConnectionsOfProviders(['p1'], { first: 100, after: null }))[0]?.items.map((c) => c.id);

    beforeEach(async () => {
      await store.insertProvider(provider('p1'), 10);
      await auto('old-1', 0);
      await auto('old-2', 1);
      await auto('young', 60);
      await auto('consented', 0);
      await store.writeTokens(key('p1', 'consented'), tokenWrite('c'), 0);
      await auto('failed', 0);
      await store.setConnectionState(key('p1', 'failed'), {
        status: 'ERROR',
        error: { code: 'REAUTHORIZATION_REQUIRED', message: 'gone' },
      });
      // An admin's connection waiting for consent is never swept, however old.
      await store.insertConnection(connection('p1', 'admin', { createdAt: at(-600) }), [], 100);
    });

    it('deletes those still NOT_CONNECTED created before the cutoff, oldest first, at most the limit, returning their keys', async () => {
      await store.insertConsentState(consent('h1', key('p1', 'old-1'), { expiresAt: at(80) }));
      expect(await store.deleteUnconsentedConnections(at(30), at(90), 1)).toEqual([key('p1', 'old-1')]);
      expect(await store.deleteUnconsentedConnections(at(30), at(90), 10)).toEqual([key('p1', 'old-2')]);
      expect(await store.deleteUnconsentedConnections(at(30), at(90), 10)).toEqual([]);
      expect(await ids()).toEqual(['admin', 'consented', 'failed', 'young']);
      expect(await store.listAccessPolicies([key('p1', 'old-1')])).toEqual([[]]);
      expect(await store.consumeConsentState('h1', T0)).toBeNull();
      // The ids are free again.
      await auto('old-1', 90);
    });

    it('lets replicas sweep at once: each connection is deleted and reported once', async () => {
      const other = await place.open();
      const [a, b] = await Promise.all([
        store.deleteUnconsentedConnections(at(30), at(90), 10),
        other.deleteUnconsentedConnections(at(30), at(90), 10),
      ]);
      expect([...a, ...b].map((k) => k.connectionId).sort()).toEqual(['old-1', 'old-2']);
    });

    it('keeps one whose user has a consent in progress until that consent expires', async () => {
      await store.insertConsentState(consent('h1', key('p1', 'old-1'), { expiresAt: at(100) }));
      expect(await store.deleteUnconsentedConnections(at(30), at(90), 10)).toEqual([key('p1', 'old-2')]);
      expect(await store.deleteUnconsentedConnections(at(30), at(100), 10)).toEqual([key('p1', 'old-1')]);
    });
  });

  describe('token writes', () => {
    beforeEach(() => seedConnections(store, 'p1', ['c1']));

    it('writes tokens, expiry, refresh time and state, moving the generation but not the version', async () => {
      const write = tokenWrite('one');
      const after = await store.writeTokens(key('p1', 'c1'), write, 0);
      expect(after).toEqual({
        ...connection('p1', 'c1'),
        tokens: write.tokens,
        tokenExpiresAt: write.tokenExpiresAt,
        lastRefreshedAt: write.lastRefreshedAt,
        state: { status: 'CONNECTED' },
        tokenGeneration: 1,
      });
      expect(await store.getConnection(key('p1', 'c1'))).toEqual(after);
      const never = await store.writeTokens(key('p1', 'c1'), { ...tokenWrite('two'), tokenExpiresAt: null }, 1);
      expect(never).toMatchObject({
        tokenGeneration: 2,
        tokenExpiresAt: null,
        tokens: sealed('k1', 'tok-two'),
        version: 1,
      });
    });

    it('returns null and changes nothing when the generation moved on (compare-and-swap)', async () => {
      const first = await store.writeTokens(key('p1', 'c1'), tokenWrite('one'), 0);
      const stale = await store.writeTokens(
        key('p1', 'c1'),
        tokenWrite('stale', { status: 'ERROR', error: { code: 'X', message: 'y' } }),
        0,
      );
      expect(stale).toBeNull();
      expect(await store.getConnection(key('p1', 'c1'))).toEqual(first);
    });

    it('lets exactly one of two racing writers with the same generation win', async () => {
      const replica = await place.open();
      const results = await Promise.all([
        store.writeTokens(key('p1', 'c1'), tokenWrite('a'), 0),
        replica.writeTokens(key('p1', 'c1'), tokenWrite('b'), 0),
      ]);
      expect(results.filter((r) => r !== null)).toHaveLength(1);
      expect((await store.getConnection(key('p1', 'c1')))?.tokenGeneration).toBe(1);
    });

    it('fails with NOT_FOUND for a missing connection', async () => {
      const e = await failure(store.writeTokens(key('p1', 'gone'), tokenWrite('x'), 0));
      expect(e.code).toBe('NOT_FOUND');
      expect(e.message).toBe("connection 'gone' of provider 'p1' not found");
    });
  });

  describe('access policies', () => {
    beforeEach(() => seedConnections(store, 'p1', ['c1', 'c2']));

    it("round-trips exactly and lists every connection's policies in one statement", async () => {
      const a = policy('p1', 'c1', 'b-user', { kind: 'GROUP', tenantId: null, appIds: [] });
      const b = policy('p1', 'c1', 'a-sp', { kind: 'SERVICE_PRINCIPAL', objectId: 'sp-1' });
      expect(await store.insertAccessPolicy(a, 10)).toEqual(a);
      expect(await store.insertAccessPolicy(b, 10)).toEqual(b);
      await store.insertAccessPolicy(policy('p1', 'c2', 'only'), 10);
      let lists: AccessPolicyRecord[][] = [];
      const keys = [key('p1', 'c2'), key('p1', 'c1'), key('p1', 'none'), key('p1', 'c2')];
      expect(await queriesOf(store, async () => (lists = await store.listAccessPolicies(keys)))).toBe(1);
      expect(lists.map((l) => l.map((p) => p.id))).toEqual([['only'], ['a-sp', 'b-user'], [], ['only']]);
      expect(lists[1]).toEqual([b, a]);
      expect(await queriesOf(store, () => store.listAccessPolicies([]))).toBe(0);
    });

    it('refuses a taken id, a missing connection and the policy past the limit', async () => {
      await store.insertAccessPolicy(policy('p1', 'c1', 'x'), 2);
      const taken = await failure(store.insertAccessPolicy(policy('p1', 'c1', 'x'), 2));
      expect(taken.code).toBe('ALREADY_EXISTS');
      expect(taken.message).toBe("access policy 'x' of connection 'c1' of provider 'p1' already exists");
      const orphan = await failure(store.insertAccessPolicy(policy('p1', 'nope', 'x'), 2));
      expect(orphan.code).toBe('NOT_FOUND');
      expect(orphan.message).toBe("connection 'nope' of provider 'p1' not found");
      await store.insertAccessPolicy(policy('p1', 'c1', 'y'), 2);
      const full = await failure(store.insertAccessPolicy(policy('p1', 'c1', 'z'), 2));
      expect(full.code).toBe('LIMIT_EXCEEDED');
      expect(full.message).toBe("connection 'c1' of provider 'p1' already has 2 access policies (limit)");
      // The limit is per connection.
      await store.insertAccessPolicy(policy('p1', 'c2', 'z'), 2);
    });

    it('lets exactly N of many concurrent inserts through a limit of N, across replicas', async () => {
      const replica = await place.open();
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? replica : store).insertAccessPolicy(policy('p1', 'c1', `r${i}`), 3),
        ),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
      expect((await store.listAccessPolicies([key('p1', 'c1')]))[0]).toHaveLength(3);
    });

    it('deletes one policy, NOT_FOUND when absent', async () => {
      await store.insertAccessPolicy(policy('p1', 'c1', 'x'), 10);
      await store.insertAccessPolicy(policy('p1', 'c1', 'y'), 10);
      await store.deleteAccessPolicy(key('p1', 'c1'), 'x');
      expect((await store.listAccessPolicies([key('p1', 'c1')]))[0]?.map((p) => p.id)).toEqual(['y']);
      const e = await failure(store.deleteAccessPolicy(key('p1', 'c1'), 'x'));
      expect(e.code).toBe('NOT_FOUND');
      expect(e.message).toBe("access policy 'x' of connection 'c1' of provider 'p1' not found");
    });
  });

  describe('consent state', () => {
    beforeEach(() => seedConnections(store, 'p1', ['c1']));

    it('is consumed exactly once, with every field intact', async () => {
      const state = consent('hash-1', key('p1', 'c1'));
      const bare = consent('hash-2', key('p1', 'c1'), { codeVerifier: null, nonce: null });
      await store.insertConsentState(state);
      await store.insertConsentState(bare);
      expect(await store.consumeConsentState('hash-1', T0)).toEqual(state);
      expect(await store.consumeConsentState('hash-1', T0)).toBeNull();
      expect(await store.consumeConsentState('hash-2', T0)).toEqual(bare);
      expect(await store.consumeConsentState('unknown', T0)).toBeNull();
    });

    it('is consumed once even by concurrent replicas', async () => {
      const replica = await place.open();
      await store.insertConsentState(consent('hash-1', key('p1', 'c1')));
      const results = await Promise.all([
        store.consumeConsentState('hash-1', T0),
        replica.consumeConsentState('hash-1', T0),
      ]);
      expect(results.filter((r) => r !== null)).toHaveLength(1);
    });

    it('is never returned once expired, and is spent by the attempt', async () => {
      await store.insertConsentState(consent('hash-1', key('p1', 'c1'), { expiresAt: T1 }));
      expect(await store.consumeConsentState('hash-1', T1)).toBeNull();
      expect(await store.consumeConsentState('hash-1', T0)).toBeNull();
    });

    it('deletes expired states in bulk and reports how many', async () => {
      await store.insertConsentState(consent('old-1', key('p1', 'c1'), { expiresAt: T0 }));
      await store.insertConsentState(consent('old-2', key('p1', 'c1'), { expiresAt: new Date(T1.getTime() - 1) }));
      await store.insertConsentState(consent('live', key('p1', 'c1'), { expiresAt: new Date(T1.getTime() + 1) }));
      expect(await store.deleteExpiredConsentStates(T1)).toBe(2);
      expect(await store.deleteExpiredConsentStates(T1)).toBe(0);
      expect(await store.consumeConsentState('live', T1)).not.toBeNull();
    });

    it('says whether a state is stored and unexpired without consuming it', async () => {
      await store.insertConsentState(consent('peek', key('p1', 'c1')));
      expect(await store.hasConsentState('peek', T0)).toBe(true);
      expect(await store.hasConsentState('peek', T0)).toBe(true);
      expect(await store.hasConsentState('peek', T1)).toBe(false);
      expect(await store.hasConsentState('unknown', T0)).toBe(false);
      expect(await store.consumeConsentState('peek', T0)).not.toBeNull();
      expect(await store.hasConsentState('peek', T0)).toBe(false);
    });

    it('refuses a state for a missing connection with NOT_FOUND', async () => {
      const e = await failure(store.insertConsentState(consent('h', key('p1', 'nope'))));
      expect(e.code).toBe('NOT_FOUND');
      expect(e.message).toBe("connection 'nope' of provider 'p1' not found");
    });
  });

  describe('runtime login links and pending consents', () => {
    beforeEach(() => seedConnections(store, 'p1', ['c1', 'c2']));
    const runtimeLink = (hash: string, k: ConnectionKey, over: Partial<ConsentStateRecord> = {}) =>
      consent(hash, k, {
        codeVerifier: null,
        nonce: null,
        startedBy: 'RUNTIME',
        linkToken: sealed('k1', `link-${hash}`),
        ...over,
      });

    it('hands out one runtime link per connection while it is valid at reuseUntil, then replaces it', async () => {
      const first = await store.runtimeLoginLink(runtimeLink('l1', key('p1', 'c1')), T0);
      expect(first).toEqual(runtimeLink('l1', key('p1', 'c1')));
      expect((await store.runtimeLoginLink(runtimeLink('l2', key('p1', 'c1')), T0)).stateHash).toBe('l1');
      expect((await store.runtimeLoginLink(runtimeLink('l3', key('p1', 'c2')), T0)).stateHash).toBe('l3');
      // An admin's link and a state are not runtime links: they neither count nor go.
      await store.insertConsentState(consent('admin', key('p1', 'c1')));
      expect((await store.runtimeLoginLink(runtimeLink('l4', key('p1', 'c1')), T0)).stateHash).toBe('l1');
      // Valid until T1 only: asked to last until T1, it is replaced.
      expect(
        (
          await store.runtimeLoginLink(
            runtimeLink('l5', key('p1', 'c1'), { expiresAt: new Date(T1.getTime() + 1) }),
            T1,
          )
        ).stateHash,
      ).toBe('l5');
      expect(await store.consumeConsentState('l1', T0)).toBeNull();
      expect(await store.consumeConsentState('admin', T0)).not.toBeNull();
      // Used: the next one is new.
      expect(await store.consumeConsentState('l5', T0)).not.toBeNull();
      expect((await store.runtimeLoginLink(runtimeLink('l6', key('p1', 'c1')), T0)).stateHash).toBe('l6');
    });

    it('gives concurrent callers, on replicas too, the same runtime link', async () => {
      const replica = await place.open();
      const links = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 === 0 ? store : replica).runtimeLoginLink(runtimeLink(`c-${i}`, key('p1', 'c1')), T0),
        ),
      );
      expect(new Set(links.map((l) => l.stateHash)).size).toBe(1);
      expect(await store.deleteExpiredConsentStates(new Date(T1.getTime() + 1))).toBe(1);
    });

    it('refuses a runtime link or a pending consent for a missing connection with NOT_FOUND', async () => {
      expect((await failure(store.runtimeLoginLink(runtimeLink('l1', key('p1', 'nope')), T0))).code).toBe('NOT_FOUND');
      expect((await failure(store.insertPendingConsent(pending('ph', key('p1', 'nope'))))).code).toBe('NOT_FOUND');
    });

    it('consumes a pending consent once, never once expired', async () => {
      await store.insertPendingConsent(pending('ph1', key('p1', 'c1')));
      await store.insertPendingConsent(pending('ph2', key('p1', 'c1')));
      expect(await store.consumePendingConsent('ph1', T0)).toEqual(pending('ph1', key('p1', 'c1')));
      expect(await store.consumePendingConsent('ph1', T0)).toBeNull();
      expect(await store.consumePendingConsent('ph2', T1)).toBeNull();
      expect(await store.consumePendingConsent('ph2', T0)).toBeNull();
      expect(await store.consumePendingConsent('unknown', T0)).toBeNull();
    });

    it("drops one connection's links, states and pending consents, and nobody else's", async () => {
      await store.runtimeLoginLink(runtimeLink('l1', key('p1', 'c1')), T0);
      await store.insertConsentState(consent('s1', key('p1', 'c1')));
      await store.insertPendingConsent(pending('ph1', key('p1', 'c1')));
      await store.insertConsentState(consent('s2', key('p1', 'c2')));
      await store.insertPendingConsent(pending('ph2', key('p1', 'c2')));
      await store.deleteConsentsOf(key('p1', 'c1'));
      for (const hash of ['l1', 's1']) expect(await store.consumeConsentState(hash, T0)).toBeNull();
      expect(await store.consumePendingConsent('ph1', T0)).toBeNull();
      expect(await store.consumeConsentState('s2', T0)).not.toBeNull();
      expect(await store.consumePendingConsent('ph2', T0)).not.toBeNull();
    });

    it("drops a re-pointed provider's pending consents with its tokens: they came from the old endpoints", async () => {
      await store.insertPendingConsent(pending('ph1', key('p1', 'c1')));
      await store.updateProvider('p1', { parameters: { tokenUrl: 'https://elsewhere.example/token' } }, null, {
        dropConnectionTokens: true,
      });
      expect(await store.consumePendingConsent('ph1', T0)).toBeNull();
    });

    it('sweeps expired pending consents with the expired states', async () => {
      await store.insertPendingConsent(pending('old', key('p1', 'c1'), { expiresAt: T0 }));
      await store.insertPendingConsent(pending('live', key('p1', 'c1'), { expiresAt: new Date(T1.getTime() + 1) }));
      await store.insertConsentState(consent('old-state', key('p1', 'c1'), { expiresAt: T0 }));
      expect(await store.deleteExpiredConsentStates(T1)).toBe(2);
      expect(await store.consumePendingConsent('live', T0)).not.toBeNull();
    });

    it('drops pending consents with their connection', async () => {
      await store.insertPendingConsent(pending('ph1', key('p1', 'c1')));
      await store.deleteConnection(key('p1', 'c1'), null);
      expect(await store.consumePendingConsent('ph1', T0)).toBeNull();
    });
  });

  describe('lifecycle outbox and revocation queue', () => {
    const resealed: { from: SealedRef; to: SealedRef }[] = [];
    const retire = {
      newId: (() => {
        let n = 0;
        return () => `rev-${++n}`;
      })(),
      reseal: (value: Sealed, from: SealedRef, to: SealedRef): Sealed => {
        resealed.push({ from, to });
        return sealed('k1', `re-${(to as { revocationId: string }).revocationId}-${to.field}-${value.split('.')[2]}`);
      },
    };
    const webhook = (id: string, events: readonly LifecycleEventType[]) => ({
      id,
      url: 'https://hooks.example/x',
      events,
      secret: sealed('k1', `wh-${id}`),
      createdAt: T0,
    });
    // Which events were written, in no particular order: events written within one millisecond
    // list in the order of their random ids.
    const eventsOf = async (webhookId: string) =>
      (await store.listWebhookDeliveries(webhookId, null, 100)).map((d) => d.eventType).sort();

    it("a delete moves the connection's tokens, sealed anew to the queue row, in its transaction; a refused delete queues nothing", async () => {
      await store.insertProvider(provider('p1'), 10);
      await store.insertConnection(connection('p1', 'c1', { tokens: sealed('k1', 'tok') }), [], 10);
      expect((await failure(store.deleteConnection(key('p1', 'c1'), 7, { retire }))).code).toBe('VERSION_CONFLICT');
      expect(await store.countRevocations()).toBe(0);
      await store.deleteConnection(key('p1', 'c1'), 1, { retire });
      expect(await store.getConnection(key('p1', 'c1'))).toBeNull();
      const [claimed, ...rest] = await store.claimRevocations(new Date(Date.now() + 1000), 10, 60_000);
      expect(rest).toEqual([]);
      expect(claimed).toMatchObject({
        providerId: 'p1',
        connectionId: 'c1',
        identityProvider: 'github',
        clientId: 'client-p1',
        attempts: 1,
      });
      expect(claimed!.tokens).toBe(sealed('k1', `re-${claimed!.id}-tokens-tok`));
      expect(claimed!.clientSecret).toBe(sealed('k1', `re-${claimed!.id}-clientSecret-ps-p1`));
      expect(resealed.map((r) => r.from.kind).sort()).toEqual(['connection', 'provider']);
      // Leased: nobody else takes it meanwhile; after the lease it is due again.
      expect(await store.claimRevocations(new Date(Date.now() + 2000), 10, 60_000)).toEqual([]);
      const again = await store.claimRevocations(new Date(Date.now() + 120_000), 10, 60_000);
      expect(again.map((r) => [r.id, r.attempts])).toEqual([[claimed!.id, 2]]);
      await store.deleteRevocation(claimed!.id);
      expect(await store.countRevocations()).toBe(0);
    });

    it('deleting a provider queues the tokens of each of its connections and records each deletion', async () => {
      await store.insertWebhook(webhook('h1', ['connection.deleted']), 10);
      await store.insertProvider(provider('p1'), 10);
      await store.insertConnection(connection('p1', 'c1', { tokens: sealed('k1', 't1') }), [], 10);
      await store.insertConnection(connection('p1', 'c2'), [], 10);
      await store.insertConnection(
        connection('p1', 'c3', {
          tokens: sealed('k1', 't3'),
          clientId: 'own',
          clientSecret: sealed('k1', 'own-secret'),
        }),
        [],
        10,
      );
      await store.deleteProvider('p1', null, { retire });
      const queued = await store.claimRevocations(new Date(Date.now() + 1000), 10, 60_000);
      expect(queued.map((r) => [r.connectionId, r.clientId]).sort()).toEqual([
        ['c1', 'client-p1'],
        ['c3', 'own'],
      ]);
      const deliveries = await store.listWebhookDeliveries('h1', 'PENDING', 10);
      expect(deliveries.map((d) => JSON.parse(d.payload).data.connectionId).sort()).toEqual(['c1', 'c2', 'c3']);
    });

    it('writes an event only with the change it reports, for the webhooks subscribed to it', async () => {
      await store.insertWebhook(
        webhook('all', [
          'connection.created',
          'connection.connected',
          'connection.reauthorization_required',
          'connection.deleted',
        ]),
        10,
      );
      await store.insertWebhook(webhook('created', ['connection.created']), 10);
      await seedConnections(store, 'p1', ['c1']);
      expect((await failure(store.insertConnection(connection('p1', 'c1'), [], 10))).code).toBe('ALREADY_EXISTS');
      const refreshed = await store.writeTokens(key('p1', 'c1'), tokenWrite('a'), 0);
      expect(refreshed).not.toBeNull();
      expect(await store.writeTokens(key('p1', 'c1'), { ...tokenWrite('b'), consented: true }, 0)).toBeNull();
      await store.writeTokens(key('p1', 'c1'), { ...tokenWrite('b'), consented: true }, 1);
      const reauth: ConnectionState = {
        status: 'ERROR',
        error: { code: 'REAUTHORIZATION_REQUIRED', message: 'refused' },
      };
      await store.setConnectionStateIfGeneration(key('p1', 'c1'), reauth, 2);
      await store.setConnectionStateIfGeneration(key('p1', 'c1'), reauth, 2);
      await store.deleteConnection(key('p1', 'c1'), null);
      expect(await eventsOf('all')).toEqual([
        'connection.connected',
        'connection.created',
        'connection.deleted',
        'connection.reauthorization_required',
      ]);
      expect(await eventsOf('created')).toEqual(['connection.created']);
      for (const d of await store.listWebhookDeliveries('all', null, 10)) expect(d.payload).not.toContain('tok-');
    });

    it('hands each due delivery to one claimer, and keeps dead letters apart', async () => {
      await store.insertWebhook(webhook('h1', ['connection.created']), 10);
      await seedConnections(store, 'p1', ['c1', 'c2', 'c3']);
      const now = new Date(Date.now() + 1000);
      const claims = await Promise.all([
        store.claimWebhookDeliveries(now, 2, 60_000),
        store.claimWebhookDeliveries(now, 2, 60_000),
      ]);
      const ids = claims.flat().map((d) => d.eventId);
      expect(ids).toHaveLength(3);
      expect(new Set(ids).size).toBe(3);
      const [first, second] = claims.flat();
      await store.completeWebhookDelivery('h1', first!.eventId, {
        status: 'DEAD',
        error: 'the receiver answered HTTP 500',
      });
      await store.completeWebhookDelivery('h1', second!.eventId, { status: 'DELIVERED', at: now });
      expect((await store.listWebhookDeliveries('h1', 'DEAD', 10)).map((d) => [d.eventId, d.lastError])).toEqual([
        [first!.eventId, 'the receiver answered HTTP 500'],
      ]);
      // A late completion of a dead letter changes nothing.
      await store.completeWebhookDelivery('h1', first!.eventId, { status: 'DELIVERED', at: now });
      expect(await store.listWebhookDeliveries('h1', 'DEAD', 10)).toHaveLength(1);
      // Retention: delivered rows go first, dead letters later, pending ones never.
      expect(await store.purgeWebhookDeliveries(new Date(Date.now() + 60_000), new Date(0))).toBe(1);
      expect((await store.listWebhookDeliveries('h1', null, 10)).map((d) => d.status).sort()).toEqual([
        'DEAD',
        'PENDING',
      ]);
      expect(await store.purgeWebhookDeliveries(new Date(0), new Date(Date.now() + 60_000))).toBe(1);
      expect((await store.listWebhookDeliveries('h1', null, 10)).map((d) => d.status)).toEqual(['PENDING']);
      await store.deleteWebhook('h1');
      expect(await store.listWebhookDeliveries('h1', null, 10)).toEqual([]);
      expect((await failure(store.deleteWebhook('h1'))).code).toBe('NOT_FOUND');
    });

    it('lists revocation and webhook secrets for key rotation', async () => {
      await store.insertWebhook(webhook('h1', ['connection.created']), 10);
      await store.insertProvider(provider('p1', { clientSecret: null }), 10);
      await store.insertConnection(connection('p1', 'c1', { tokens: sealed('k1', 'tok') }), [], 10);
      await store.deleteProvider('p1', null, { retire });
      const refs = (await store.listSealedNotWrappedBy('k2', 100)).map((f) => f.ref);
      expect(refs).toEqual([
        { kind: 'revocation', field: 'tokens', revocationId: expect.stringMatching(/^rev-/) },
        { kind: 'webhook', field: 'secret', webhookId: 'h1' },
      ]);
      const [revocation] = refs;
      const value = (await store.listSealedNotWrappedBy('k2', 100))[0]!.value;
      expect(await store.replaceSealed(revocation!, value, sealed('k2', 'rewrapped'))).toBe(true);
      expect(await store.countSealedWrappedBy('k2')).toBe(1);
    });
  });

  describe('sealed fields', () => {
    /** One value per sealed column wrapped by k1, others by k2 or k10, some columns empty. */
    async function seed(): Promise<SealedField[]> {
      await store.insertProvider(provider('p1', { clientSecret: sealed('k1', 'a') }), 10);
      await store.insertProvider(provider('p2', { clientSecret: sealed('k2', 'b') }), 10);
      await store.insertProvider(provider('p3', { clientSecret: null }), 10);
      await store.insertConnection(
        connection('p1', 'c1', { clientSecret: sealed('k1', 'c'), tokens: sealed('k1', 'd') }),
        [],
        10,
      );
      await store.insertConnection(connection('p1', 'c2', { tokens: sealed('k2', 'e') }), [], 10);
      await store.insertConnection(connection('p2', 'c1', { clientSecret: sealed('k10', 'f') }), [], 10);
      await store.insertConsentState(consent('s1', key('p1', 'c1'), { codeVerifier: sealed('k1', 'g') }));
      await store.insertConsentState(consent('s2', key('p1', 'c1'), { codeVerifier: null }));
      await store.insertConsentState(
        consent('s3', key('p1', 'c1'), { codeVerifier: null, startedBy: 'RUNTIME', linkToken: sealed('k1', 'h') }),
      );
      await store.insertPendingConsent(pending('ph1', key('p1', 'c1'), { tokens: sealed('k1', 'i') }));
      return [
        { ref: { kind: 'provider', field: 'clientSecret', providerId: 'p1' }, value: sealed('k1', 'a') },
        {
          ref: { kind: 'connection', field: 'clientSecret', providerId: 'p1', connectionId: 'c1' },
          value: sealed('k1', 'c'),
        },
        {
          ref: { kind: 'connection', field: 'tokens', providerId: 'p1', connectionId: 'c1' },
          value: sealed('k1', 'd'),
        },
        {
          ref: { kind: 'connection', field: 'clientSecret', providerId: 'p2', connectionId: 'c1' },
          value: sealed('k10', 'f'),
        },
        { ref: { kind: 'consent', field: 'codeVerifier', stateHash: 's1' }, value: sealed('k1', 'g') },
        { ref: { kind: 'consent', field: 'linkToken', stateHash: 's3' }, value: sealed('k1', 'h') },
        {
          ref: { kind: 'pendingConsent', field: 'tokens', providerId: 'p1', connectionId: 'c1', consentHash: 'ph1' },
          value: sealed('k1', 'i'),
        },
      ];
    }

    const byValue = (fields: readonly SealedField[]) => [...fields].sort((a, b) => a.value.localeCompare(b.value));

    it('lists what a key does not wrap across every sealed column, with the right refs', async () => {
      const notK2 = await seed();
      expect(byValue(await store.listSealedNotWrappedBy('k2', 100))).toEqual(byValue(notK2));
      const limited = await store.listSealedNotWrappedBy('k2', 2);
      expect(limited).toHaveLength(2);
      for (const field of limited) expect(notK2).toContainEqual(field);
      // k1 is a prefix of k10's id, not of its sealed prefix.
      expect((await store.listSealedNotWrappedBy('k1', 100)).map((f) => f.value).sort()).toEqual(
        [sealed('k2', 'b'), sealed('k2', 'e'), sealed('k10', 'f')].sort(),
      );
    });

    it('counts what a key wraps across every sealed column', async () => {
      await seed();
      expect(await store.countSealedWrappedBy('k1')).toBe(6);
      expect(await store.countSealedWrappedBy('k2')).toBe(2);
      expect(await store.countSealedWrappedBy('k10')).toBe(1);
      expect(await store.countSealedWrappedBy('k3')).toBe(0);
    });

    it('lists in table and key order, resuming after the last ref: one value at a time reads each once', async () => {
      const notK2 = await seed();
      const all = await store.listSealedNotWrappedBy('k2', 100);
      // Providers, connections' client secrets, connections' tokens, consent verifiers, link tokens, pending tokens; each by key.
      expect(all.map((f) => f.value)).toEqual([
        sealed('k1', 'a'),
        sealed('k1', 'c'),
        sealed('k10', 'f'),
        sealed('k1', 'd'),
        sealed('k1', 'g'),
        sealed('k1', 'h'),
        sealed('k1', 'i'),
      ]);
      const paged: SealedField[] = [];
      for (
        let batch = await store.listSealedNotWrappedBy('k2', 1);
        batch.length > 0;
        batch = await store.listSealedNotWrappedBy('k2', 1, batch[0]!.ref)
      ) {
        paged.push(...batch);
      }
      expect(paged).toEqual(all);
      expect(byValue(paged)).toEqual(byValue(notK2));
    });

    it('replaces a value only if it is still the expected one, moving no version or generation', async () => {
      const fields = await seed();
      const connectionBefore = await store.getConnection(key('p1', 'c1'));
      for (const { ref, value } of fields) {
        const next = sealed('k2', `re-${value.split('.')[2]}`);
        expect(await store.replaceSealed(ref, sealed('k1', 'stale'), next)).toBe(false);
        expect(await store.replaceSealed(ref, value, next)).toBe(true);
        expect(await store.replaceSealed(ref, value, next)).toBe(false);
      }
      expect(await store.listSealedNotWrappedBy('k2', 100)).toEqual([]);
      expect(await store.countSealedWrappedBy('k2')).toBe(9);
      const p1 = await store.getProvider('p1');
      expect(p1).toMatchObject({ clientSecret: sealed('k2', 're-a'), version: 1, updatedAt: T0 });
      const c1 = await store.getConnection(key('p1', 'c1'));
      expect(c1).toEqual({ ...connectionBefore, clientSecret: sealed('k2', 're-c'), tokens: sealed('k2', 're-d') });
      expect(await store.consumeConsentState('s1', T0)).toMatchObject({ codeVerifier: sealed('k2', 're-g') });
      expect(await store.consumeConsentState('s3', T0)).toMatchObject({ linkToken: sealed('k2', 're-h') });
      expect(await store.consumePendingConsent('ph1', T0)).toMatchObject({ tokens: sealed('k2', 're-i') });
    });

    it('replaces nothing for a ref that does not exist', async () => {
      const ref: SealedRef = { kind: 'connection', field: 'tokens', providerId: 'p9', connectionId: 'c9' };
      expect(await store.replaceSealed(ref, sealed('k1', 'x'), sealed('k2', 'x'))).toBe(false);
    });
  });

  describe('settings', () => {
    it('keeps the first value put if absent, and overwrites on put', async () => {
      expect(await store.getSetting('instance-id')).toBeNull();
      expect(await store.putSettingIfAbsent('instance-id', 'first')).toBe('first');
      expect(await store.putSettingIfAbsent('instance-id', 'second')).toBe('first');
      expect(await store.getSetting('instance-id')).toBe('first');
      await store.putSetting('instance-id', 'third');
      expect(await store.getSetting('instance-id')).toBe('third');
      await store.putSetting('other', '');
      expect(await store.getSetting('other')).toBe('');
    });

    it('agrees on one value when replicas race to put it if absent', async () => {
      const replica = await place.open();
      const values = await Promise.all(
        Array.from({ length: 6 }, (_, i) => (i % 2 ? replica : store).putSettingIfAbsent('race', `v${i}`)),
      );
      expect(new Set(values).size).toBe(1);
      expect(await store.getSetting('race')).toBe(values[0]);
    });
  });

  describe('migrations', () => {
    const versions = async () =>
      (await place.sql('SELECT version FROM schema_migrations ORDER BY version')).map((r) => Number(r['version']));

    it('apply once: reopening keeps the data and records each version once', async () => {
      await store.insertProvider(provider('p1'), 10);
      await store.close();
      const again = await place.open();
      expect(await again.getProvider('p1')).toEqual(provider('p1'));
      expect(await versions()).toEqual(MIGRATIONS.map((m) => m.version).sort((a, b) => a - b));
      const rows = await place.sql('SELECT applied_at FROM schema_migrations');
      expect(Number(rows[0]?.['applied_at'])).toBeGreaterThan(T0.getTime());
    });

    it('survive replicas opening the same database at once', async () => {
      const fresh = await target.place();
      try {
        const stores = await Promise.all([fresh.open(), fresh.open(), fresh.open()]);
        await stores[0]?.insertProvider(provider('p1'), 10);
        expect(await stores[2]?.getProvider('p1')).toEqual(provider('p1'));
        expect((await fresh.sql('SELECT version FROM schema_migrations')).length).toBe(MIGRATIONS.length);
      } finally {
        await fresh.cleanup();
      }
    });

    it('refuse a database migrated by a newer gateway', async () => {
      await place.sql(
        `INSERT INTO schema_migrations (version, name, applied_at) VALUES (${LATEST_SCHEMA_VERSION + 1}, 'future', 0)`,
      );
      await expect(place.open()).rejects.toThrow(/newer than this gateway knows/);
    });
  });

  describe('connection lock', () => {
    const k1 = key('p1', 'c1');

    it('never runs two holders of one key at once, and runs other keys meanwhile', async () => {
      const same = overlapMeter();
      const all = overlapMeter();
      const hold = (k: ConnectionKey, tag: string) =>
        store.withConnectionLock(k, () =>
          all.track(() =>
            same.track(async () => {
              await sleep(25);
              return tag;
            }),
          ),
        );
      // `same` only tracks k1 holders, `all` tracks everyone.
      const other = store.withConnectionLock(key('p1', 'c2'), () => all.track(() => sleep(40).then(() => 'other')));
      const results = await Promise.all([hold(k1, 'a'), hold(k1, 'b'), hold(k1, 'c'), other]);
      expect(results).toEqual(['a', 'b', 'c', 'other']);
      expect(same.peak).toBe(1);
      expect(all.peak).toBe(2);
    });

    it('is released when the holder throws, and the error reaches the caller', async () => {
      const boom = new Error('boom');
      await expect(store.withConnectionLock(k1, () => Promise.reject(boom))).rejects.toBe(boom);
      await expect(store.withConnectionLock(k1, async () => 'next')).resolves.toBe('next');
    });

    it('lets the holder use the store meanwhile', async () => {
      await seedConnections(store, 'p1', ['c1']);
      const written = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          store.withConnectionLock(key('p1', i % 2 ? 'c1' : `other-${i}`), async () => {
            const current = await store.getConnection(k1);
            return current ? store.writeTokens(k1, tokenWrite(`w${i}`), current.tokenGeneration) : null;
          }),
        ),
      );
      // Every k1 holder read and wrote without another k1 holder in between, so none lost its CAS.
      expect((await store.getConnection(k1))?.tokenGeneration).toBe(written.filter((w) => w !== null).length);
      expect(written.filter((w) => w !== null).length).toBeGreaterThanOrEqual(6);
    });

    // One SQLite file serves one process; replicas share PostgreSQL only.
    if (target.name === 'postgres')
      it('excludes holders in two replicas (separate stores) too', async () => {
        const replica = await place.open();
        const meter = overlapMeter();
        const hold = (s: Store) => s.withConnectionLock(k1, () => meter.track(() => sleep(40)));
        await Promise.all([hold(store), hold(replica), hold(store), hold(replica)]);
        expect(meter.peak).toBe(1);
        // Released on both sides: each replica can take it again right away.
        await expect(replica.withConnectionLock(k1, async () => 'again')).resolves.toBe('again');
      });

    if (target.name === 'postgres')
      it("waits for another replica's lock without holding a pooled session, so holders of other locks still get theirs", async () => {
        const replica = await place.open();
        let releaseReplica!: () => void;
        const replicaDone = new Promise<void>((resolve) => (releaseReplica = resolve));
        const held = Array.from({ length: 5 }, (_, i) => key('p1', `held-${i}`));
        let replicaHolding = 0;
        const replicaHolds = held.map((k) =>
          replica.withConnectionLock(k, async () => {
            replicaHolding++;
            await replicaDone;
          }),
        );
        while (replicaHolding < held.length) await sleep(10);
        // Five waiters here for the replica's locks...
        const waiters = held.map((k) => store.withConnectionLock(k, async () => 'got it'));
        await sleep(200);
        // ...and ten holders of other locks, all holding at once (more than the lock sessions the waiters would leave).
        const others = Array.from({ length: 10 }, (_, i) => key('p1', `other-${i}`));
        let holding = 0;
        let allHold!: () => void;
        const allHolding = new Promise<void>((resolve) => (allHold = resolve));
        const holders = others.map((k) =>
          store.withConnectionLock(k, async () => {
            if (++holding === others.length) allHold();
            await allHolding;
            return 'held';
          }),
        );
        expect(await Promise.all(holders)).toEqual(Array(others.length).fill('held'));
        releaseReplica();
        await Promise.all(replicaHolds);
        expect(await Promise.all(waiters)).toEqual(Array(held.length).fill('got it'));
      });
  });
});

// Opening -------------------------------------------------------------------------------------

describe('openStore', () => {
  it('creates the SQLite file and its parent directories with mode 0600, in WAL mode', async () => {
    const dir = await tempDir('cg-open-');
    try {
      const file = dir.file('a', 'b', 'credentials.db');
      const store = await openStore(`sqlite:${file}`);
      await store.insertProvider(provider('p1'), 10);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect((await stat(`${file}-wal`)).mode & 0o777).toBe(0o600);
      const db = new Database(file, { readonly: true });
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      db.close();
      await store.close();
    } finally {
      await dir.cleanup();
    }
  });

  it('opens sqlite:///absolute paths and in-memory stores', async () => {
    const dir = await tempDir('cg-open-');
    try {
      const absolute = await openStore(`sqlite://${dir.file('x.db')}`);
      expect(absolute.dialect).toBe('sqlite');
      await absolute.close();
      expect((await stat(dir.file('x.db'))).isFile()).toBe(true);
      const memory = await openStore('sqlite::memory:');
      await memory.insertProvider(provider('p1'), 10);
      expect(await memory.countProviders()).toBe(1);
      await memory.close();
    } finally {
      await dir.cleanup();
    }
  });

  it('refuses URLs of other databases and an empty SQLite path', async () => {
    await expect(openStore('mysql://localhost/x')).rejects.toThrow(/sqlite: or postgres:/);
    await expect(openStore('sqlite:')).rejects.toThrow(/needs a file path/);
  });

  it('refuses a PostgreSQL schema name that is not a plain identifier', async () => {
    await expect(openStore(pgUrl(), { pgSchema: 'x"; DROP TABLE y; --' })).rejects.toThrow(TypeError);
    await expect(openStore(pgUrl(), { pgSchema: 'Upper' })).rejects.toThrow(TypeError);
  });

  it('fails fast when PostgreSQL is unreachable', async () => {
    const started = Date.now();
    await expect(openStore('postgres://postgres@127.0.0.1:1/test')).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(6_000);
  });

  it.runIf(hasPg)('survives the database dropping idle pooled connections', async () => {
    const { schema, drop } = await freshPgSchema('store_pool_error');
    const appName = `cg_pool_error_${schema.slice(-12)}`;
    const url = new URL(pgUrl());
    url.searchParams.set('application_name', appName);
    const errors: Error[] = [];
    const store = await openStore(url.toString(), { pgSchema: schema, onError: (e) => errors.push(e) });
    try {
      await Promise.all([store.ping(), store.ping(), store.ping()]);
      const killed = await withPgClient(
        async (c) =>
          (
            await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
              appName,
            ])
          ).rowCount,
      );
      expect(killed).toBeGreaterThan(0);
      // Every killed session reports on its own time: wait for all of them, not just the first.
      for (let i = 0; i < 100 && errors.length < killed!; i++) await sleep(20);
      expect(errors.length).toBeGreaterThan(0);
      await expect(store.ping()).resolves.toBeUndefined();
    } finally {
      await store.close();
      await drop();
    }
  });
});

describe('KeyedMutex', () => {
  it('runs holders of one key in arrival order and forgets idle keys', async () => {
    const mutex = new KeyedMutex();
    const order: string[] = [];
    const run = (k: string, tag: string, ms: number) =>
      mutex.run(k, async () => {
        order.push(`start ${tag}`);
        await sleep(ms);
        order.push(`end ${tag}`);
      });
    const all = Promise.all([run('a', '1', 20), run('a', '2', 1), run('b', '3', 5), run('a', '4', 1)]);
    expect(mutex.size).toBe(2);
    await all;
    expect(order.filter((s) => !s.endsWith('3'))).toEqual(['start 1', 'end 1', 'start 2', 'end 2', 'start 4', 'end 4']);
    expect(order.indexOf('end 3')).toBeLessThan(order.indexOf('end 1'));
    expect(mutex.size).toBe(0);
  });

  it('keeps the chain going after a holder fails', async () => {
    const mutex = new KeyedMutex();
    const failed = mutex.run('a', () => Promise.reject(new Error('x')));
    const next = mutex.run('a', async () => 'ok');
    await expect(failed).rejects.toThrow('x');
    await expect(next).resolves.toBe('ok');
    expect(mutex.size).toBe(0);
  });
});
