/**
 * The databases of the lookups-at-scale benchmark (bench/scale.ts): N connections (1,000 or
 * 1,000,000) in the store's own tables, on SQLite (a file under bench/.data/) and on PostgreSQL
 * (a schema of its own). Both are kept between runs and reused while their marker and row count
 * match, because filling a million rows takes minutes.
 *
 * Layout: providers of at most `limits.connectionsPerProvider` (10,000) connections each;
 * connection n is `user-<n, 8 digits>`, CONNECTED, with the two policies a delegated connection
 * has (the gateway's MANAGED_IDENTITY and the user's own USER policy). Sealing a million token
 * sets would take longer than everything else together, so only LOOKUP_TARGETS connections, at
 * irregular positions spread over the key space, hold a real token set (sealed afresh on every run, so
 * it is never expired); the others hold a filler of the same size: a real sealed token set, but
 * bound to another record, so it would fail authentication if anyone opened it (nobody does).
 *
 * Rows go in with bulk statements on the store's tables (INSERT ... SELECT over a recursive CTE
 * on SQLite, over generate_series on PostgreSQL), 100,000 connections per transaction.
 */
import { createHash } from 'node:crypto';
import { existsSync, rmSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { parseEnvKeyring } from '../src/crypto/envKeyring.js';
import { Envelope } from '../src/crypto/envelope.js';
import type { Sealed } from '../src/crypto/sealed.js';
import { DELEGATED_USER_POLICY_ID, MANAGED_IDENTITY_POLICY_ID } from '../src/registry/policies.js';
import { createProvider } from '../src/registry/providers.js';
import { openStore } from '../src/store/open.js';
import type { Store } from '../src/store/types.js';
import type { ConnectionKey } from '../src/domain/ids.js';
import { withPgClient } from '../test/support/pg.js';
import { benchProviderInput, benchResolver, DEFAULTS, sealBenchTokenSet } from './benchResolver.js';

type PgClient = Parameters<Parameters<typeof withPgClient>[0]>[0];

/** Bump when the layout changes: cached databases of another version are rebuilt. */
const LAYOUT_VERSION = 1;
export const LOOKUP_TARGETS = 256;
const CONNECTIONS_PER_TRANSACTION = 100_000;
const DATA_DIR = new URL('./.data/', import.meta.url).pathname;
const MARKER_SETTING = 'bench.scale';
const GOLDEN_RATIO_FRACTION = (Math.sqrt(5) - 1) / 2;

/**
 * A fixed, public key: the data is synthetic, and a key that never changes keeps every sealed value
 * of the cached databases (the providers' client secrets, the targets' token sets) openable from
 * one run to the next.
 */
export function scaleEnvelope(): Envelope {
  const kek = createHash('sha256').update(`credential-gateway bench scale v${LAYOUT_VERSION}`).digest('base64');
  return new Envelope(parseEnvKeyring(`bench-scale:${kek}`));
}

export interface ScaleLayout {
  readonly connections: number;
  readonly perProvider: number;
  readonly providers: number;
  /** Connection numbers that hold real token sets, ascending. */
  readonly targets: readonly number[];
}

export function layoutOf(connections: number): ScaleLayout {
  const perProvider = Math.min(connections, DEFAULTS.limits.connectionsPerProvider);
  return Object.freeze({
    connections,
    perProvider,
    providers: Math.ceil(connections / perProvider),
    targets: Object.freeze(pickTargets(connections, Math.min(LOOKUP_TARGETS, connections))),
  });
}

/**
 * Positions from the golden-ratio sequence: irregular, all distinct, spread evenly over the key
 * space (so lookups descend the whole index, not one corner of it), and the same on every run.
 */
function pickTargets(connections: number, count: number): number[] {
  const picked = new Set<number>();
  for (let i = 1; picked.size < count; i++) picked.add(Math.floor(((i * GOLDEN_RATIO_FRACTION) % 1) * connections));
  return [...picked].sort((a, b) => a - b);
}

export const providerIdOf = (p: number): string => `scale-${String(p).padStart(4, '0')}`;
export const connectionIdOf = (n: number): string => `user-${String(n).padStart(8, '0')}`;

export function keyOf(layout: ScaleLayout, n: number): ConnectionKey {
  return { providerId: providerIdOf(Math.floor(n / layout.perProvider)), connectionId: connectionIdOf(n) };
}

interface Marker {
  readonly layout: number;
  readonly connections: number;
  readonly providers: number;
}

const markerOf = (layout: ScaleLayout): string =>
  JSON.stringify({
    layout: LAYOUT_VERSION,
    connections: layout.connections,
    providers: layout.providers,
  } satisfies Marker);

/** A bulk insert of connections [from, to) of one provider, and of their two policies. */
export interface ProviderChunk {
  readonly providerId: string;
  readonly from: number;
  readonly to: number;
}

function chunksOf(layout: ScaleLayout): ProviderChunk[][] {
  const perTransaction = Math.max(1, Math.floor(CONNECTIONS_PER_TRANSACTION / layout.perProvider));
  const batches: ProviderChunk[][] = [];
  for (let p = 0; p < layout.providers; p += perTransaction) {
    const batch: ProviderChunk[] = [];
    for (let q = p; q < Math.min(layout.providers, p + perTransaction); q++)
      batch.push({
        providerId: providerIdOf(q),
        from: q * layout.perProvider,
        to: Math.min(layout.connections, (q + 1) * layout.perProvider),
      });
    batches.push(batch);
  }
  return batches;
}

/** The values every filler row shares. */
interface Filler {
  readonly tokens: Sealed;
  readonly tokenExpiresAtMs: number;
  readonly nowMs: number;
  readonly managedObjectId: string;
}

function fillerOf(envelope: Envelope): Filler {
  const { sealed, expiresAt } = sealBenchTokenSet(envelope, { providerId: 'filler', connectionId: 'filler' });
  return {
    tokens: sealed,
    tokenExpiresAtMs: expiresAt.getTime(),
    nowMs: Date.now(),
    managedObjectId: DEFAULTS.identity.managedObjectId,
  };
}

function progress(label: string, done: number, total: number, startedMs: number): void {
  const seconds = (performance.now() - startedMs) / 1000;
  process.stderr.write(
    `  ${label}: ${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} connections (${seconds.toFixed(0)} s)\n`,
  );
}

/** Providers through the product's own path (validated, client secrets sealed). */
async function createProviders(store: Store, envelope: Envelope, layout: ScaleLayout): Promise<void> {
  const { registry } = benchResolver(store, envelope, false);
  for (let p = 0; p < layout.providers; p++) await createProvider(registry, benchProviderInput(providerIdOf(p)));
}

/**
 * Seals a fresh token set (valid for an hour) into every target, through the store, so that the
 * targets are CONNECTED with tokens a resolver opens without going to the provider.
 */
export async function sealTargets(store: Store, layout: ScaleLayout, envelope: Envelope): Promise<void> {
  for (const n of layout.targets) {
    const key = keyOf(layout, n);
    const connection = await store.getConnection(key);
    if (!connection)
      throw new Error(
        `the scale database lacks connection ${key.providerId}/${key.connectionId}: delete it to rebuild`,
      );
    const { sealed, expiresAt } = sealBenchTokenSet(envelope, key);
    const written = await store.writeTokens(
      key,
      { tokens: sealed, tokenExpiresAt: expiresAt, lastRefreshedAt: new Date(), state: { status: 'CONNECTED' } },
      connection.tokenGeneration,
    );
    if (!written) throw new Error(`could not seal the token set of ${key.connectionId}`);
  }
}

export interface ScaleDatabase {
  /** For openStore. */
  readonly storeUrl: string;
  readonly pgSchema?: string;
  readonly layout: ScaleLayout;
  /** Seconds spent filling it in this run; null when reused. */
  readonly populateSeconds: number | null;
  readonly accessPolicies: number;
  /** On disk: the SQLite file (after a checkpoint), or the schema's tables and indexes. */
  readonly bytes: number;
}

// SQLite ------------------------------------------------------------------------------------------

const SQLITE_CONNECTIONS = `WITH RECURSIVE s(n) AS (SELECT @from UNION ALL SELECT n + 1 FROM s WHERE n + 1 < @to)
  INSERT INTO connections (provider_id, id, display_name, status, error_code, error_message, client_id, client_secret, tokens,
    token_expires_at, last_refreshed_at, token_generation, version, created_at, updated_at)
  SELECT @providerId, printf('user-%08d', n), printf('user-%08d', n), 'CONNECTED', NULL, NULL, NULL, NULL, @tokens,
    @tokenExpiresAtMs, @nowMs, 1, 1, @nowMs, @nowMs
  FROM s`;

const SQLITE_POLICIES = `INSERT INTO access_policies (provider_id, connection_id, id, kind, object_id, tenant_id, app_ids, created_at)
  SELECT provider_id, id, @managedPolicyId, 'MANAGED_IDENTITY', @managedObjectId, NULL, '[]', created_at FROM connections WHERE provider_id = @providerId
  UNION ALL
  SELECT provider_id, id, @userPolicyId, 'USER', id, NULL, '[]', created_at FROM connections WHERE provider_id = @providerId`;

function sqlitePathOf(layout: ScaleLayout): string {
  return `${DATA_DIR}scale-v${LAYOUT_VERSION}-${layout.connections}.db`;
}

function removeSqlite(file: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
}

/** Reads the marker and counts; null when the file is absent or incomplete. */
function sqliteContents(file: string): { marker: string | null; connections: number; policies: number } | null {
  if (!existsSync(file)) return null;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const marker = db.prepare('SELECT value FROM settings WHERE name = ?').pluck().get(MARKER_SETTING) as
      | string
      | undefined;
    const connections = db.prepare('SELECT count(*) FROM connections').pluck().get() as number;
    const policies = db.prepare('SELECT count(*) FROM access_policies').pluck().get() as number;
    return { marker: marker ?? null, connections, policies };
  } catch {
    return null;
  } finally {
    db.close();
  }
}

export async function sqliteScaleDatabase(layout: ScaleLayout, envelope: Envelope): Promise<ScaleDatabase> {
  const file = sqlitePathOf(layout);
  const storeUrl = `sqlite:${file}`;
  const found = sqliteContents(file);
  let populateSeconds: number | null = null;
  let policies = found?.policies ?? 0;
  if (!found || found.marker !== markerOf(layout) || found.connections !== layout.connections) {
    const startedMs = performance.now();
    const label = `SQLite, ${layout.connections.toLocaleString('en-US')} connections (bench/.data/)`;
    process.stderr.write(`  ${label}: filling (kept for later runs)\n`);
    removeSqlite(file);
    const store = await openStore(storeUrl); // creates the file (mode 0600) and migrates it
    try {
      await createProviders(store, envelope, layout);
    } finally {
      await store.close();
    }
    const db = new Database(file);
    try {
      // This connection only: a crash mid-fill leaves no marker, and the next run starts over.
      db.pragma('synchronous = OFF');
      const connections = db.prepare(SQLITE_CONNECTIONS);
      const policyRows = db.prepare(SQLITE_POLICIES);
      const filler = fillerOf(envelope);
      let done = 0;
      for (const batch of chunksOf(layout)) {
        db.transaction(() => {
          for (const c of batch) {
            connections.run({
              ...c,
              tokens: filler.tokens,
              tokenExpiresAtMs: filler.tokenExpiresAtMs,
              nowMs: filler.nowMs,
            });
            policyRows.run({
              providerId: c.providerId,
              managedPolicyId: MANAGED_IDENTITY_POLICY_ID,
              managedObjectId: filler.managedObjectId,
              userPolicyId: DELEGATED_USER_POLICY_ID,
            });
            done += c.to - c.from;
          }
        })();
        progress(label, done, layout.connections, startedMs);
      }
      db.prepare('INSERT INTO settings (name, value) VALUES (?, ?)').run(MARKER_SETTING, markerOf(layout));
      policies = db.prepare('SELECT count(*) FROM access_policies').pluck().get() as number;
      db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      db.close();
    }
    populateSeconds = (performance.now() - startedMs) / 1000;
  }
  return Object.freeze({ storeUrl, layout, populateSeconds, accessPolicies: policies, bytes: statSync(file).size });
}

// PostgreSQL --------------------------------------------------------------------------------------

const PG_CONNECTIONS = `INSERT INTO connections (provider_id, id, display_name, status, error_code, error_message, client_id, client_secret, tokens,
    token_expires_at, last_refreshed_at, token_generation, version, created_at, updated_at)
  SELECT $1, 'user-' || lpad(n::text, 8, '0'), 'user-' || lpad(n::text, 8, '0'), 'CONNECTED', NULL, NULL, NULL, NULL, $4,
    $5, $6, 1, 1, $6, $6
  FROM generate_series($2::integer, $3::integer - 1) AS n`;

const PG_POLICIES = `INSERT INTO access_policies (provider_id, connection_id, id, kind, object_id, tenant_id, app_ids, created_at)
  SELECT provider_id, id, $2, 'MANAGED_IDENTITY', $3, NULL, '[]'::jsonb, created_at FROM connections WHERE provider_id = $1
  UNION ALL
  SELECT provider_id, id, $4, 'USER', id, NULL, '[]'::jsonb, created_at FROM connections WHERE provider_id = $1`;

export function pgSchemaOf(layout: ScaleLayout): string {
  return `bench_scale_v${LAYOUT_VERSION}_${layout.connections}`;
}

async function pgContents(
  client: PgClient,
  schema: string,
): Promise<{ marker: string | null; connections: number; policies: number } | null> {
  const tables = await client.query<{ n: string }>(
    `SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name IN ('connections', 'access_policies', 'settings')`,
    [schema],
  );
  if (Number(tables.rows[0]?.n) !== 3) return null;
  const marker = await client.query<{ value: string }>(`SELECT value FROM "${schema}".settings WHERE name = $1`, [
    MARKER_SETTING,
  ]);
  const counts = await client.query<{ connections: string; policies: string }>(
    `SELECT (SELECT count(*) FROM "${schema}".connections) AS connections, (SELECT count(*) FROM "${schema}".access_policies) AS policies`,
  );
  return {
    marker: marker.rows[0]?.value ?? null,
    connections: Number(counts.rows[0]?.connections),
    policies: Number(counts.rows[0]?.policies),
  };
}

export async function pgScaleDatabase(url: string, layout: ScaleLayout, envelope: Envelope): Promise<ScaleDatabase> {
  const schema = pgSchemaOf(layout);
  const found = await withPgClient((c) => pgContents(c, schema), url);
  let populateSeconds: number | null = null;
  let policies = found?.policies ?? 0;
  if (!found || found.marker !== markerOf(layout) || found.connections !== layout.connections) {
    const startedMs = performance.now();
    const label = `PostgreSQL, ${layout.connections.toLocaleString('en-US')} connections (schema ${schema})`;
    process.stderr.write(`  ${label}: filling (kept for later runs)\n`);
    await withPgClient((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`), url);
    const store = await openStore(url, { pgSchema: schema }); // creates the schema and migrates it
    try {
      await createProviders(store, envelope, layout);
    } finally {
      await store.close();
    }
    policies = await withPgClient(async (client) => {
      // This session only: a crash mid-fill leaves no marker, and the next run starts over.
      await client.query(`SET search_path TO "${schema}"`);
      await client.query('SET synchronous_commit = off');
      const filler = fillerOf(envelope);
      let done = 0;
      for (const batch of chunksOf(layout)) {
        await client.query('BEGIN');
        for (const c of batch) {
          await client.query(PG_CONNECTIONS, [
            c.providerId,
            c.from,
            c.to,
            filler.tokens,
            filler.tokenExpiresAtMs,
            filler.nowMs,
          ]);
          await client.query(PG_POLICIES, [
            c.providerId,
            MANAGED_IDENTITY_POLICY_ID,
            filler.managedObjectId,
            DELEGATED_USER_POLICY_ID,
          ]);
          done += c.to - c.from;
        }
        await client.query('COMMIT');
        progress(label, done, layout.connections, startedMs);
      }
      // What autovacuum would get to soon after such a load: statistics for the planner, a visibility map.
      process.stderr.write(`  ${label}: VACUUM ANALYZE\n`);
      await client.query('VACUUM ANALYZE providers, connections, access_policies');
      await client.query('INSERT INTO settings (name, value) VALUES ($1, $2)', [MARKER_SETTING, markerOf(layout)]);
      return Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM access_policies')).rows[0]?.n);
    }, url);
    populateSeconds = (performance.now() - startedMs) / 1000;
  }
  const bytes = await withPgClient(
    async (c) =>
      Number(
        (
          await c.query<{ n: string }>(
            `SELECT sum(pg_total_relation_size(format('%I.%I', table_schema, table_name))) AS n FROM information_schema.tables WHERE table_schema = $1`,
            [schema],
          )
        ).rows[0]?.n,
      ),
    url,
  );
  return Object.freeze({ storeUrl: url, pgSchema: schema, layout, populateSeconds, accessPolicies: policies, bytes });
}
