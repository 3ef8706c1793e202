/**
 * The shared store for many replicas: PostgreSQL through a pg Pool. Transactions run on one
 * checked-out client; cross-replica locks are advisory locks named per schema, so several
 * gateways (or test files) can share a database in separate schemas without contending.
 * Changes reach the other replicas by LISTEN/NOTIFY on a channel of the schema (pgNotify.ts).
 */
import pg from 'pg';
import type { ClientConfig, PoolClient, PoolConfig } from 'pg';
import { ChangeHub } from './changeHub.js';
import { migrate, type MigrationContext } from './migrations.js';
import { PgNotifyTransport } from './pgNotify.js';
import { raw, render, runWork, sql, type Dialect, type Driver, type Result, type Sql, type Work } from './sql.js';
import { SqlStore } from './sqlStore.js';
import type { Store } from './types.js';

const POOL_MAX_CLIENTS = 10;
/** A dead or unreachable database fails a call within this time instead of hanging it. */
const CONNECT_TIMEOUT_MS = 5_000;
const STATEMENT_TIMEOUT_MS = 30_000;
const IDLE_CLIENT_TIMEOUT_MS = 10_000;
/** A transaction left open by a stalled process stops holding its row locks after this. */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000;
/** A lock held by another replica is tried again after this, doubling up to the maximum... */
const LOCK_POLL_MIN_MS = 10;
const LOCK_POLL_MAX_MS = 250;
/** ...for at most this long (as long as a blocking pg_advisory_lock could wait under the statement timeout). */
const LOCK_WAIT_TIMEOUT_MS = STATEMENT_TIMEOUT_MS;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/**
 * Statements run as named prepared statements (parsed and planned once per session, then only
 * bound and executed: about a quarter off a point read) up to this many distinct texts; any
 * further text runs unnamed, so that no session accumulates statements without bound.
 */
const MAX_PREPARED_STATEMENTS = 256;

/** Advisory lock key of `name`, scoped to the schema in use. */
function lockKey(name: string): Sql {
  return sql`hashtextextended(${`cg/${name}/`}::text || coalesce(current_schema(), ''), 0)`;
}

export const POSTGRES_DIALECT: Dialect = Object.freeze({
  name: 'postgres',
  types: Object.freeze({
    id: 'TEXT COLLATE "C"',
    text: 'TEXT',
    int: 'INTEGER',
    ms: 'BIGINT',
    json: 'JSONB',
    tableSuffix: '',
  }),
  textsOf: (json: string) => sql`SELECT jsonb_array_elements_text(${json}::jsonb) AS v`,
  pairsOf: (json: string) => sql`SELECT e->>0 AS a, e->>1 AS b FROM jsonb_array_elements(${json}::jsonb) AS e`,
  forUpdate: raw(' FOR UPDATE'),
  skipLocked: raw(' FOR UPDATE SKIP LOCKED'),
  transactionLock: (name: string) => sql`SELECT pg_advisory_xact_lock(${lockKey(name)})`,
});

export interface PostgresStoreOptions {
  readonly connectionString: string;
  /** Schema for every table (created if absent); lower-case letters, digits and `_`. */
  readonly schema?: string;
  /**
   * Errors of idle pooled connections (the database restarted, the network dropped) and of the
   * change listener's session (which reconnects by itself).
   */
  readonly onError?: (error: Error) => void;
  /** What the migrations need from the configuration (src/store/migrations.ts). */
  readonly migration?: MigrationContext;
}

type Session = PoolClient;

/** What every session of the store is opened with: the pool's and the change listener's. */
function sessionConfigOf(options: PostgresStoreOptions): ClientConfig {
  return {
    connectionString: options.connectionString,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
    keepAlive: true,
    fallback_application_name: 'credential-gateway',
    // A startup parameter, so it holds from the first statement of every session at no cost.
    ...(options.schema === undefined ? {} : { options: `-c search_path=${options.schema}` }),
  };
}

class PostgresDriver implements Driver {
  readonly dialect = POSTGRES_DIALECT;
  readonly #pool: pg.Pool;
  /** Sessions that hold advisory locks get their own pool so lock holders never starve queries. */
  readonly #lockPool: pg.Pool;
  #queries = 0;
  #closed = false;
  readonly #statementNames = new Map<string, string>();

  constructor(options: PostgresStoreOptions) {
    const config: PoolConfig = {
      ...sessionConfigOf(options),
      max: POOL_MAX_CLIENTS,
      idleTimeoutMillis: IDLE_CLIENT_TIMEOUT_MS,
    };
    const onError = options.onError ?? (() => {});
    this.#pool = new pg.Pool(config);
    this.#lockPool = new pg.Pool(config);
    // Without a listener, an idle client's error would crash the process; the pool drops that client.
    this.#pool.on('error', onError);
    this.#lockPool.on('error', onError);
  }

  get queries(): number {
    return this.#queries;
  }

  async #query(target: pg.Pool | Session, statement: Sql): Promise<Result> {
    this.#queries++;
    const text = render(statement, (i) => `$${i}`);
    let name = this.#statementNames.get(text);
    if (name === undefined && this.#statementNames.size < MAX_PREPARED_STATEMENTS) {
      name = `cg_${this.#statementNames.size}`;
      this.#statementNames.set(text, name);
    }
    const result = await target.query({ text, values: [...statement.values], ...(name !== undefined && { name }) });
    return { rows: result.rows, rowCount: result.rowCount ?? result.rows.length };
  }

  run(statement: Sql): Promise<Result> {
    return this.#query(this.#pool, statement);
  }

  /**
   * Runs `fn` on a checked-out client. The pool stops listening to a client while it is checked
   * out, so a connection error then is caught here; such a client, or one `fn` discards, is
   * destroyed instead of returned.
   */
  async #withSession<T>(pool: pg.Pool, fn: (session: Session, discard: () => void) => Promise<T>): Promise<T> {
    const session = await pool.connect();
    let failure: Error | undefined;
    const onError = (e: Error): void => {
      failure = e;
    };
    session.on('error', onError);
    try {
      return await fn(session, () => {
        failure ??= new Error('session discarded');
      });
    } finally {
      session.off('error', onError);
      session.release(failure);
    }
  }

  transaction<T>(work: () => Work<T>): Promise<T> {
    return this.#withSession(this.#pool, async (session, discard) => {
      await this.#query(session, sql`BEGIN`);
      let result: T;
      try {
        result = await runWork(work(), (s) => this.#query(session, s));
      } catch (e) {
        await this.#query(session, sql`ROLLBACK`).catch(discard);
        throw e;
      }
      await this.#query(session, sql`COMMIT`);
      return result;
    });
  }

  /**
   * Tries the lock and, while another replica holds it, waits with no session checked out: a
   * waiter blocked in pg_advisory_lock would hold one of the lock pool's few sessions hostage, and
   * enough of them would leave none for the holders of other locks. Only holders keep a session.
   */
  async withSessionLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + LOCK_WAIT_TIMEOUT_MS;
    for (let delayMs = LOCK_POLL_MIN_MS; ; delayMs = Math.min(2 * delayMs, LOCK_POLL_MAX_MS)) {
      const outcome = await this.#tryWithSessionLock(name, fn);
      if (outcome.held) return outcome.value;
      if (Date.now() + delayMs > deadline)
        throw new Error(`advisory lock ${name} not obtained within ${LOCK_WAIT_TIMEOUT_MS} ms`);
      await sleep(delayMs);
    }
  }

  #tryWithSessionLock<T>(
    name: string,
    fn: () => Promise<T>,
  ): Promise<{ readonly held: true; readonly value: T } | { readonly held: false }> {
    return this.#withSession(this.#lockPool, async (session, discard) => {
      const tried = await this.#query(session, sql`SELECT pg_try_advisory_lock(${lockKey(name)}) AS locked`);
      if (tried.rows[0]?.['locked'] !== true) return { held: false };
      try {
        return { held: true, value: await fn() };
      } finally {
        // If unlocking fails the session is suspect: destroying it ends the session, and the lock with it.
        const unlocked = await this.#query(session, sql`SELECT pg_advisory_unlock(${lockKey(name)}) AS released`).then(
          (r) => r.rows[0]?.['released'] === true,
          () => false,
        );
        if (!unlocked) discard();
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([this.#pool.end(), this.#lockPool.end()]);
  }
}

function isDuplicateSchema(e: unknown): boolean {
  // Two replicas creating the schema at once: the loser sees a unique violation or "already exists".
  const code = (e as { code?: unknown }).code;
  return code === '23505' || code === '42P06';
}

async function createSchema(driver: Driver, schema: string): Promise<void> {
  try {
    await driver.run(raw(`CREATE SCHEMA IF NOT EXISTS "${schema}"`));
  } catch (e) {
    if (!isDuplicateSchema(e)) throw e;
  }
}

/** Connects, creates the schema if one is named and absent, and migrates it. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema))
    throw new TypeError('a PostgreSQL schema name is 1-63 lower-case letters, digits or _, not starting with a digit');
  const driver = new PostgresDriver(options);
  const onError = options.onError ?? (() => {});
  const changes = new ChangeHub(
    new PgNotifyTransport({
      client: sessionConfigOf(options),
      notifyViaPool: async (channel, payload) => void (await driver.run(sql`SELECT pg_notify(${channel}, ${payload})`)),
      onError,
    }),
    (e) => onError(e instanceof Error ? e : new Error(String(e))),
  );
  try {
    if (options.schema !== undefined) await createSchema(driver, options.schema);
    await migrate(driver, options.migration);
    // After migrating: the listener's channel follows the schema, which now exists.
    await changes.start();
  } catch (e) {
    await changes.close();
    await driver.close();
    throw e;
  }
  return new SqlStore(driver, changes);
}
