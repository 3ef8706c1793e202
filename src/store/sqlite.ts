/**
 * The embedded store: one SQLite file (WAL, mode 0600) through better-sqlite3. Calls are
 * synchronous underneath, so a transaction runs start to end within one turn of the event loop
 * and no other call can interleave with it; BEGIN IMMEDIATE also keeps other processes out.
 */
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { migrate, type MigrationContext } from './migrations.js';
import {
  EMPTY,
  render,
  runWorkSync,
  sql,
  type Dialect,
  type Driver,
  type Result,
  type Row,
  type Sql,
  type Work,
} from './sql.js';
import { SqlStore } from './sqlStore.js';
import type { Store } from './types.js';

/** How long a writer waits for another process's write lock before failing. */
const SQLITE_BUSY_TIMEOUT_MS = 5_000;

export const SQLITE_DIALECT: Dialect = Object.freeze({
  name: 'sqlite',
  types: Object.freeze({
    id: 'TEXT',
    text: 'TEXT',
    int: 'INTEGER',
    ms: 'INTEGER',
    json: 'TEXT',
    tableSuffix: ' STRICT',
  }),
  textsOf: (json: string) => sql`SELECT value AS v FROM json_each(${json})`,
  pairsOf: (json: string) =>
    sql`SELECT json_extract(value, '$[0]') AS a, json_extract(value, '$[1]') AS b FROM json_each(${json})`,
  forUpdate: EMPTY,
  skipLocked: EMPTY,
  transactionLock: () => null,
});

class SqliteDriver implements Driver {
  readonly dialect = SQLITE_DIALECT;
  readonly #db: Database.Database;
  /** Prepared once per statement text; texts are fixed per call site, so this stays small. */
  readonly #prepared = new Map<string, Database.Statement>();
  readonly #transaction: Database.Transaction<(work: Work<unknown>) => unknown>;
  #queries = 0;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#transaction = db.transaction((work: Work<unknown>) => runWorkSync(work, (s) => this.#execute(s)));
  }

  get queries(): number {
    return this.#queries;
  }

  pragma(text: string): void {
    this.#queries++;
    this.#db.pragma(text);
  }

  #execute(statement: Sql): Result {
    const text = render(statement, () => '?');
    let prepared = this.#prepared.get(text);
    if (!prepared) {
      prepared = this.#db.prepare(text);
      this.#prepared.set(text, prepared);
    }
    this.#queries++;
    if (prepared.reader) {
      const rows = prepared.all(...statement.values) as Row[];
      return { rows, rowCount: rows.length };
    }
    return { rows: [], rowCount: prepared.run(...statement.values).changes };
  }

  async run(statement: Sql): Promise<Result> {
    return this.#execute(statement);
  }

  async transaction<T>(work: () => Work<T>): Promise<T> {
    this.#queries += 2; // BEGIN IMMEDIATE, then COMMIT or ROLLBACK
    return this.#transaction.immediate(work()) as T;
  }

  /** One process owns an SQLite file, so the caller's in-process lock is all there is to hold. */
  withSessionLock<T>(_name: string, fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  async close(): Promise<void> {
    if (!this.#db.open) return;
    this.#prepared.clear();
    this.#db.close();
  }
}

/** Creates the parent directory and, when absent, the file with mode 0600 (SQLite's WAL and SHM files follow it). */
function createPrivateFile(file: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(file, 'wx', 0o600));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

/** Opens (creating if needed) and migrates the store in `file`; `:memory:` keeps it in memory. */
export async function openSqliteStore(file: string, migration?: MigrationContext): Promise<Store> {
  if (file !== ':memory:') createPrivateFile(file);
  const db = new Database(file);
  const driver = new SqliteDriver(db);
  try {
    driver.pragma('journal_mode = WAL');
    driver.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    driver.pragma('foreign_keys = ON');
    await migrate(driver, migration);
  } catch (e) {
    await driver.close();
    throw e;
  }
  return new SqlStore(driver);
}

/** A provider as `peekSqliteProviders` reads it. */
export interface PeekedProvider {
  readonly id: string;
  readonly identityProvider: string;
}

/**
 * The providers of an existing SQLite store, read without writing anything (no file is created,
 * no migration runs): null when the file does not exist. Throws when it is not a credential store.
 */
export function peekSqliteProviders(file: string): readonly PeekedProvider[] | null {
  // Absent, its folder included (a fresh clone has no ./data yet): nothing to peek at.
  if (!existsSync(file)) return null;
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (e) {
    if ((e as { code?: string }).code === 'SQLITE_CANTOPEN') return null;
    throw e;
  }
  try {
    const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'providers'").get();
    if (hasTable === undefined) return [];
    const rows = db.prepare('SELECT id, identity_provider FROM providers ORDER BY id').all() as {
      id: string;
      identity_provider: string;
    }[];
    return rows.map((r) => Object.freeze({ id: r.id, identityProvider: r.identity_provider }));
  } finally {
    db.close();
  }
}
