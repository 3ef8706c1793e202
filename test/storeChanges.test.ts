/**
 * Change propagation through the store: in-process for SQLite; across processes (here: separate
 * stores on one schema, each with its own sessions) by PostgreSQL LISTEN/NOTIFY, with ids only in
 * the payload, no echo of a process's own change, other schemas kept apart, and a listener that
 * comes back after its session is killed. PostgreSQL cases run when CI=true.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChangeFeed } from '../src/registry/changes.js';
import { openStore } from '../src/store/open.js';
import { changeChannelOf } from '../src/store/pgNotify.js';
import type { ChangeEvent, Store } from '../src/store/types.js';
import { freshPgSchema, requirePgOrSkip, withPgClient, type PgSchema } from './support/pg.js';
import { tempDir, type TempDir } from './support/tmp.js';

const hasPg = await requirePgOrSkip('change propagation over PostgreSQL');

type Heard = (ChangeEvent | null)[];

function listen(store: Store): Heard {
  const heard: Heard = [];
  store.onChange((e) => heard.push(e));
  return heard;
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(5);
  }
  return Date.now() - started;
}

describe('store changes on SQLite (one process)', () => {
  let dir: TempDir;
  let store: Store;

  beforeAll(async () => {
    dir = await tempDir('cg-changes-');
    store = await openStore(`sqlite:${dir.file('c.db')}`);
  });
  afterAll(async () => {
    await store?.close();
    await dir?.cleanup();
  });

  it('tells every listener synchronously, before publishChange returns', () => {
    const a = listen(store);
    const b = listen(store);
    void store.publishChange({ providerId: 'p1', connectionId: 'c1' });
    expect(a).toEqual([{ providerId: 'p1', connectionId: 'c1' }]);
    expect(b).toEqual([{ providerId: 'p1', connectionId: 'c1' }]);
  });

  it('stops telling a listener once unsubscribed', async () => {
    const heard: Heard = [];
    const off = store.onChange((e) => heard.push(e));
    await store.publishChange({ providerId: 'p1' });
    off();
    await store.publishChange({ providerId: 'p2' });
    expect(heard).toEqual([{ providerId: 'p1' }]);
  });

  it('still tells the others when one listener throws, then rejects with that error', async () => {
    const boom = new Error('listener failed');
    const off = store.onChange(() => {
      throw boom;
    });
    const heard = listen(store);
    await expect(store.publishChange({ providerId: 'p3' })).rejects.toBe(boom);
    expect(heard).toEqual([{ providerId: 'p3' }]);
    off();
  });

  it('ChangeFeed reports a failed publish to onError instead of rejecting; without onError it rejects', async () => {
    const boom = new Error('listener failed');
    const off = store.onChange(() => {
      throw boom;
    });
    const reported: unknown[] = [];
    await new ChangeFeed({ store, onError: (e) => reported.push(e) }).publish({ providerId: 'p4' });
    expect(reported).toEqual([boom]);
    await expect(new ChangeFeed({ store }).publish({ providerId: 'p4' })).rejects.toBe(boom);
    off();
  });

  it("hands the publisher's cause to subscribers of its own change only", async () => {
    const feed = new ChangeFeed({ store });
    const causes: unknown[] = [];
    feed.subscribe((_e, cause) => causes.push(cause));
    const mine = {};
    await feed.publish({ providerId: 'p5' }, mine);
    await feed.publish({ providerId: 'p5' });
    expect(causes).toEqual([mine, undefined]);
  });
});

describe.skipIf(!hasPg)('store changes on PostgreSQL (replicas)', () => {
  let schema: PgSchema;
  const stores: Store[] = [];
  const errors: Error[] = [];

  const open = async (s: PgSchema = schema): Promise<Store> => {
    const store = await openStore(s.url, { pgSchema: s.schema, onError: (e) => errors.push(e) });
    stores.push(store);
    return store;
  };

  beforeAll(async () => {
    schema = await freshPgSchema('cg_changes');
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await schema?.drop();
  });

  it('reaches the other replicas within a second, and the publisher exactly once (no echo)', async () => {
    const [a, b, c] = [await open(), await open(), await open()];
    const [heardA, heardB, heardC] = [listen(a), listen(b), listen(c)];
    await a.publishChange({ providerId: 'github-01', connectionId: 'alice' });
    expect(heardA).toEqual([{ providerId: 'github-01', connectionId: 'alice' }]);
    const ms = await until(() => heardB.length > 0 && heardC.length > 0);
    expect(ms).toBeLessThan(1_000);
    expect(heardB).toEqual([{ providerId: 'github-01', connectionId: 'alice' }]);
    expect(heardC).toEqual([{ providerId: 'github-01', connectionId: 'alice' }]);
    await b.publishChange({ providerId: 'graph-01' });
    await until(() => heardA.length === 2 && heardC.length === 2);
    expect(heardA[1]).toEqual({ providerId: 'graph-01' });
    await sleep(200);
    // Nobody heard a change twice, its own included.
    expect([heardA.length, heardB.length, heardC.length]).toEqual([2, 2, 2]);
  });

  it('keeps schemas apart: a store on another schema of the same database hears nothing', async () => {
    const other = await freshPgSchema('cg_changes_other');
    try {
      const a = await open();
      const b = await open();
      const stranger = await open(other);
      const heardB = listen(b);
      const heardStranger = listen(stranger);
      await a.publishChange({ providerId: 'p', connectionId: 'c' });
      await until(() => heardB.length === 1);
      await sleep(200);
      expect(heardStranger).toEqual([]);
    } finally {
      await Promise.all(stores.splice(0).map((s) => s.close()));
      await other.drop();
    }
  });

  it('sends ids only: the payload is {p, c} on a channel named after the schema', async () => {
    const a = await open();
    const payloads: string[] = [];
    await withPgClient(async (raw) => {
      raw.on('notification', (m) => payloads.push(m.payload ?? ''));
      await raw.query(`LISTEN "${changeChannelOf(schema.schema)}"`);
      await a.publishChange({ providerId: 'github-01', connectionId: 'alice' });
      await a.publishChange({ providerId: 'graph-01' });
      await until(() => payloads.length === 2);
    });
    expect(payloads.map((p) => JSON.parse(p))).toEqual([{ p: 'github-01', c: 'alice' }, { p: 'graph-01' }]);
  });

  it('widens a change whose ids exceed the NOTIFY payload limit to the whole provider', async () => {
    const [a, b] = [await open(), await open()];
    const heardB = listen(b);
    await a.publishChange({ providerId: 'p-long', connectionId: 'x'.repeat(9_000) });
    await until(() => heardB.length === 1);
    expect(heardB).toEqual([{ providerId: 'p-long' }]);
  });

  it('ignores malformed notifications (and says so) instead of acting on them', async () => {
    const b = await open();
    const heardB = listen(b);
    errors.length = 0;
    await withPgClient(async (raw) => {
      for (const payload of ['not json', '{"c":"x"}', '{"p":7}', '{"p":"a","c":["b"]}', 'null'])
        await raw.query('SELECT pg_notify($1, $2)', [changeChannelOf(schema.schema), payload]);
      await raw.query('SELECT pg_notify($1, $2)', [changeChannelOf(schema.schema), '{"p":"ok"}']);
    });
    await until(() => heardB.length === 1);
    expect(heardB).toEqual([{ providerId: 'ok' }]);
    expect(errors.map((e) => e.message)).toEqual(Array(5).fill('ignored a malformed change notification'));
  });

  it('reconnects after its listening session is killed, tells listeners that changes may have been missed, and hears again', async () => {
    const [a, b] = [await open(), await open()];
    const heardB = listen(b);
    const channel = changeChannelOf(schema.schema);
    errors.length = 0;
    const killed = await withPgClient(async (raw) => {
      const { rows } = await raw.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE query = $1 AND pid <> pg_backend_pid()`,
        [`LISTEN "${channel}"`],
      );
      return rows[0]?.n ?? 0;
    });
    // Both replicas' listeners were idle after LISTEN; a's goes too, which is fine.
    expect(killed).toBeGreaterThanOrEqual(1);
    await until(() => heardB.includes(null));
    expect(errors.length).toBeGreaterThan(0);
    // Changes made after the reconnect arrive as usual (a's own listener may still be reconnecting: its pool sends).
    await a.publishChange({ providerId: 'after' });
    await until(() => heardB.some((e) => e?.providerId === 'after'));
  });
});
