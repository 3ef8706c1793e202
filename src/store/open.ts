/**
 * Opens the store named by `store.url`: `sqlite:<file>` (embedded) or `postgres://…` (shared by
 * replicas). Either way the schema is migrated before the store is handed out.
 */
import type { MigrationContext } from './migrations.js';
import { openPostgresStore } from './postgres.js';
import { openSqliteStore } from './sqlite.js';
import type { Store } from './types.js';
import { STORE_URL_RULE, storeDialectOf } from './url.js';

export interface OpenStoreOptions {
  /** PostgreSQL only: the schema of every table, created if absent (tests use one each). */
  readonly pgSchema?: string;
  /** PostgreSQL only: errors of idle pooled connections, which must never crash the process. */
  readonly onError?: (error: Error) => void;
  /** What the migrations need from the configuration: the trusted issuers, and where findings go. */
  readonly migration?: MigrationContext;
}

/** `sqlite:./data/x.db`, `sqlite:///abs/x.db` and `sqlite::memory:` name SQLite stores. */
export function sqliteFileOf(url: string): string {
  const rest = url.slice('sqlite:'.length);
  const file = rest.startsWith('//') ? rest.slice(2) : rest;
  if (file === '') throw new TypeError('store.url sqlite: needs a file path, e.g. sqlite:./data/credentials.db');
  return file;
}

export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  const dialect = storeDialectOf(url);
  if (dialect === 'sqlite') return openSqliteStore(sqliteFileOf(url), options.migration);
  if (dialect === 'postgres')
    return openPostgresStore({
      connectionString: url,
      ...(options.pgSchema === undefined ? {} : { schema: options.pgSchema }),
      ...(options.onError === undefined ? {} : { onError: options.onError }),
      ...(options.migration === undefined ? {} : { migration: options.migration }),
    });
  throw new TypeError(STORE_URL_RULE);
}
