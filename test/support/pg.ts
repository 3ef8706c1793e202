/**
 * PostgreSQL for tests: the real server at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test),
 * one fresh schema per store so that test files running in parallel never see each other's rows.
 *
 * Pattern for a test file:
 *   const hasPg = await requirePgOrSkip('my feature');   // top level: throws when CI=true and PG is down
 *   describe.skipIf(!hasPg)('… on PostgreSQL', () => { … freshPgSchema() … openStore(pgUrl(), { pgSchema }) … });
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const PROBE_TIMEOUT_MS = 3_000;

export function pgUrl(): string {
  return process.env['DATABASE_URL'] || DEFAULT_PG_URL;
}

/** The URL without its password, fit for a notice. */
export function redactedPgUrl(url: string = pgUrl()): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the configured DATABASE_URL';
  }
}

/** Runs `fn` on a fresh client of `url` and closes it. */
export async function withPgClient<T>(fn: (client: pg.Client) => Promise<T>, url: string = pgUrl()): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const probes = new Map<string, Promise<boolean>>();

/** Whether PostgreSQL answers at `url` (probed once per URL and process). */
export function pgAvailable(url: string = pgUrl()): Promise<boolean> {
  let probe = probes.get(url);
  if (!probe) {
    probe = withPgClient((c) => c.query('SELECT 1'), url).then(
      () => true,
      () => false,
    );
    probes.set(url, probe);
  }
  return probe;
}

/**
 * True when PostgreSQL is reachable. Otherwise: with CI=true it throws (PostgreSQL tests must run
 * in CI), elsewhere it prints a notice and returns false so the caller can skip.
 */
export async function requirePgOrSkip(what: string, url: string = pgUrl()): Promise<boolean> {
  if (await pgAvailable(url)) return true;
  const where = redactedPgUrl(url);
  if (process.env['CI'] === 'true')
    throw new Error(`PostgreSQL is unreachable at ${where}; with CI=true ${what} must run`);
  console.warn(
    `[notice] PostgreSQL is unreachable at ${where}: skipping ${what} (set DATABASE_URL, or CI=true to fail instead)`,
  );
  return false;
}

/** A schema-name-safe version of `label`. */
function schemaLabel(label: string): string {
  return (
    label
      .toLowerCase()
      .replace(/[^a-z0-9_]+/g, '_')
      .replace(/^[^a-z_]/, '_')
      .slice(0, 30) || 't'
  );
}

const randomSuffix = (): string => randomBytes(6).toString('hex');

async function dropSchemas(names: readonly string[], url: string): Promise<void> {
  if (names.length === 0) return;
  await withPgClient(async (c) => {
    for (const name of names) await c.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
  }, url);
}

export interface PgSchema {
  readonly url: string;
  readonly schema: string;
  /** Drops the schema and everything in it (close the stores using it first). */
  drop(): Promise<void>;
}

/** Creates a new, empty, uniquely named schema. */
export async function freshPgSchema(label = 'cg_test', url: string = pgUrl()): Promise<PgSchema> {
  const schema = `${schemaLabel(label)}_${randomSuffix()}`;
  await withPgClient((c) => c.query(`CREATE SCHEMA "${schema}"`), url);
  return Object.freeze({ url, schema, drop: () => dropSchemas([schema], url) });
}

export interface PgTestDatabase {
  readonly url: string;
  /** Use `${schemaPrefix}_<anything>` as `pgSchema`; cleanup drops every such schema. */
  readonly schemaPrefix: string;
  cleanup(): Promise<void>;
}

/** A family of schemas for one test file, or null when PostgreSQL is unreachable outside CI. */
export async function pgTestUrl(label: string, url: string = pgUrl()): Promise<PgTestDatabase | null> {
  if (!(await requirePgOrSkip(label, url))) return null;
  const schemaPrefix = `${schemaLabel(label)}_${randomSuffix()}`;
  return Object.freeze({
    url,
    schemaPrefix,
    cleanup: async () => {
      const { rows } = await withPgClient(
        (c) =>
          c.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)`, [
            `${schemaPrefix}_`,
          ]),
        url,
      );
      await dropSchemas(
        rows.map((r) => r.nspname),
        url,
      );
    },
  });
}
