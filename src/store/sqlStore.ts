/**
 * The Store contract written once over a Driver; SQLite and PostgreSQL differ only in their
 * driver and dialect. Checks that must not race (uniqueness, limits, expected versions) happen
 * inside one transaction that first locks what it counts under: the parent row on PostgreSQL
 * (`FOR UPDATE`), the whole database on SQLite (BEGIN IMMEDIATE).
 */
import type { Sealed, SealedRef } from '../crypto/sealed.js';
import { sealedPrefix } from '../crypto/sealed.js';
import type {
  AccessPolicyRecord,
  ConnectionRecord,
  ConnectionState,
  ConnectionStatus,
  ConsentStateRecord,
  Page,
  PageArgs,
  PendingConsentRecord,
  ProviderRecord,
} from '../domain/model.js';
import { ChangeHub } from './changeHub.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { alreadyExists, limitExceeded, notFound, versionConflict } from './errors.js';
import { connectionKeyOf, connectionLabel, policyLabel, providerLabel, type ConnectionKey } from '../domain/ids.js';
import { KeyedMutex } from './keyedMutex.js';
import {
  DELIVERY_COLUMNS,
  REVOCATION_COLUMNS,
  WEBHOOK_COLUMNS,
  recordDeletes,
  recordEvent,
  toDelivery,
  toRevocation,
  toWebhook,
} from './lifecycle.js';
import {
  CONNECTION_COLUMNS,
  CONSENT_COLUMNS,
  PENDING_CONSENT_COLUMNS,
  POLICY_COLUMNS,
  PROVIDER_COLUMNS,
  json,
  ms,
  msOrNull,
  num,
  providerClientIdColumn,
  grantTypeColumns,
  stateColumns,
  toConnection,
  toConsentState,
  toPendingConsent,
  toPolicy,
  toProvider,
} from './rows.js';
import { EMPTY, join, raw, sql, type Driver, type Result, type Row, type Sql, type Work } from './sql.js';
import type {
  ChangeEvent,
  ChangeListener,
  ConnectionCounts,
  ConnectionPatch,
  InsertConnectionOptions,
  ConnectionUpdateOptions,
  DeleteOptions,
  DeliveryOutcome,
  DeliveryStatus,
  LifecycleEventType,
  RevocationRecord,
  WebhookDeliveryRecord,
  WebhookRecord,
  ProviderPatch,
  ProviderUpdateOptions,
  SealedField,
  Store,
  StoreStats,
  TokenWrite,
} from './types.js';

/** Serializes provider inserts so that the instance-wide count cannot race. */
const PROVIDERS_LOCK = 'providers';

/** Where each sealed field lives; `keys` are the columns its SealedRef ids come from. */
const SEALED_COLUMNS = Object.freeze([
  { kind: 'provider', field: 'clientSecret', table: 'providers', column: 'client_secret', keys: ['id'] },
  {
    kind: 'connection',
    field: 'clientSecret',
    table: 'connections',
    column: 'client_secret',
    keys: ['provider_id', 'id'],
  },
  { kind: 'connection', field: 'tokens', table: 'connections', column: 'tokens', keys: ['provider_id', 'id'] },
  { kind: 'consent', field: 'codeVerifier', table: 'consent_states', column: 'code_verifier', keys: ['state_hash'] },
  { kind: 'consent', field: 'linkToken', table: 'consent_states', column: 'link_token', keys: ['state_hash'] },
  {
    kind: 'pendingConsent',
    field: 'tokens',
    table: 'pending_consents',
    column: 'tokens',
    keys: ['provider_id', 'connection_id', 'consent_hash'],
  },
  { kind: 'revocation', field: 'clientSecret', table: 'revocations', column: 'client_secret', keys: ['id'] },
  { kind: 'revocation', field: 'tokens', table: 'revocations', column: 'tokens', keys: ['id'] },
  { kind: 'webhook', field: 'secret', table: 'webhooks', column: 'secret', keys: ['id'] },
] as const);

type SealedColumn = (typeof SEALED_COLUMNS)[number];

function sealedColumnOf(ref: SealedRef): SealedColumn {
  const found = SEALED_COLUMNS.find((c) => c.kind === ref.kind && c.field === ref.field);
  if (!found) throw new TypeError(`no sealed field ${ref.kind}.${ref.field}`);
  return found;
}

function sealedKeyValues(ref: SealedRef): readonly string[] {
  switch (ref.kind) {
    case 'provider':
      return [ref.providerId];
    case 'connection':
      return [ref.providerId, ref.connectionId];
    case 'consent':
      return [ref.stateHash];
    case 'pendingConsent':
      return [ref.providerId, ref.connectionId, ref.consentHash];
    case 'revocation':
      return [ref.revocationId];
    case 'webhook':
      return [ref.webhookId];
  }
}

function sealedRefOf(row: Row): SealedRef {
  const column = SEALED_COLUMNS.find((c) => c.kind === row['kind'] && c.field === row['field']);
  const [a, b, c] = [String(row['a']), String(row['b']), String(row['c'])];
  switch (column?.kind) {
    case 'provider':
      return Object.freeze({ kind: 'provider', field: column.field, providerId: a });
    case 'connection':
      return Object.freeze({ kind: 'connection', field: column.field, providerId: a, connectionId: b });
    case 'consent':
      return Object.freeze({ kind: 'consent', field: column.field, stateHash: a });
    case 'pendingConsent':
      return Object.freeze({
        kind: 'pendingConsent',
        field: column.field,
        providerId: a,
        connectionId: b,
        consentHash: c,
      });
    case 'revocation':
      return Object.freeze({ kind: 'revocation', field: column.field, revocationId: a });
    case 'webhook':
      return Object.freeze({ kind: 'webhook', field: column.field, webhookId: a });
    default:
      throw new TypeError('unknown sealed field in listing');
  }
}

/** A LIKE pattern matching values that start with `prefix` literally. */
function startsWith(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, '\\$&')}%`;
}

/** Groups `items` by `keyOf`, keeping their order within each group. */
function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}

function firstRow(result: Result): Row | undefined {
  return result.rows[0];
}

/** Columns of a connection without tokens; the generation moves so that no refresh in flight writes old ones back. */
const DROPPED_TOKENS = raw(
  'tokens = NULL, token_expires_at = NULL, last_refreshed_at = NULL, token_generation = token_generation + 1',
);

/**
 * Every connection of `provider` loses what its old endpoints or client were trusted with (see
 * `ProviderUpdateOptions`). Runs inside the provider update's transaction.
 */
function* unbindConnections(provider: ProviderRecord, dropClientSecrets: boolean): Work<void> {
  const now = Date.now();
  // Authorization code: a new consent; API key and basic: a new credential (updateConnection).
  if (provider.grantType !== 'CLIENT_CREDENTIALS') {
    yield sql`UPDATE connections SET ${DROPPED_TOKENS}, status = 'NOT_CONNECTED', error_code = NULL, error_message = NULL,
        version = version + 1, updated_at = ${now}
      WHERE provider_id = ${provider.id}`;
  } else if (dropClientSecrets) {
    // Client credentials need no consent: a connection on the provider's client has the new secret already.
    yield sql`UPDATE connections SET ${DROPPED_TOKENS}, client_secret = NULL,
        status = CASE WHEN client_id IS NULL THEN 'CONNECTED' ELSE 'NOT_CONNECTED' END, error_code = NULL, error_message = NULL,
        version = version + 1, updated_at = ${now}
      WHERE provider_id = ${provider.id}`;
  } else {
    yield sql`UPDATE connections SET ${DROPPED_TOKENS} WHERE provider_id = ${provider.id}`;
  }
  yield sql`DELETE FROM consent_states WHERE provider_id = ${provider.id}`;
  // Tokens waiting for their owner's confirmation came from the old endpoints too.
  yield sql`DELETE FROM pending_consents WHERE provider_id = ${provider.id}`;
}

function checkVersion(label: string, current: number, expected: number | null): void {
  if (expected !== null && expected !== current) throw versionConflict(label, expected, current);
}

/** `current` with the patch's defined fields laid over it. */
function patched<T extends object>(current: T, patch: Partial<T>): T {
  const defined = Object.entries(patch).filter(([, v]) => v !== undefined);
  return { ...current, ...Object.fromEntries(defined) };
}

function afterId(page: PageArgs): string {
  // Every id is at least one character long, so '' sorts before all of them.
  return page.after === null ? '' : decodeCursor(page.after);
}

/** `rows` holds up to first + 1 items: the extra one only says that another page follows. */
function pageOf<T extends { readonly id: string }>(rows: readonly T[], first: number): Page<T> {
  const items = Object.freeze(rows.slice(0, Math.max(0, first)));
  const last = items[items.length - 1];
  return Object.freeze({ items, nextCursor: rows.length > items.length && last ? encodeCursor(last.id) : null });
}

export class SqlStore implements Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly stats: StoreStats;
  readonly #db: Driver;
  readonly #locks = new KeyedMutex();
  readonly #changes: ChangeHub;

  /** `changes`: how changes reach other processes; in-process only by default (one SQLite file, one process). */
  constructor(db: Driver, changes: ChangeHub = new ChangeHub()) {
    this.#db = db;
    this.#changes = changes;
    this.dialect = db.dialect.name;
    this.stats = Object.freeze({
      get queries() {
        return db.queries;
      },
    });
  }

  async ping(): Promise<void> {
    await this.#db.run(sql`SELECT 1`);
  }

  async close(): Promise<void> {
    await this.#changes.close();
    await this.#db.close();
  }

  // Providers ----------------------------------------------------------------------------

  insertProvider(provider: ProviderRecord, maxProviders: number): Promise<ProviderRecord> {
    const d = this.#db.dialect;
    const p = provider;
    return this.#db.transaction(function* () {
      const lock = d.transactionLock(PROVIDERS_LOCK);
      if (lock) yield lock;
      const counts = firstRow(
        yield sql`SELECT count(*) AS total, (SELECT count(*) FROM providers WHERE id = ${p.id}) AS taken FROM providers`,
      );
      if (counts && num(counts, 'taken') > 0) throw alreadyExists(providerLabel(p.id));
      if (counts && num(counts, 'total') >= maxProviders)
        throw limitExceeded('the instance', maxProviders, 'credential providers');
      const kind = grantTypeColumns(p.grantType);
      const inserted = firstRow(
        yield sql`INSERT INTO providers (${PROVIDER_COLUMNS})
          VALUES (${p.id}, ${p.displayName}, ${p.identityProvider}, ${kind.grantType}, ${providerClientIdColumn(p.clientId)}, ${p.clientSecret},
            ${json(p.scopes)}, ${json(p.parameters)}, ${p.version}, ${ms(p.createdAt)}, ${ms(p.updatedAt)}, ${kind.credentialKind})
          ON CONFLICT (id) DO NOTHING
          RETURNING ${PROVIDER_COLUMNS}`,
      );
      if (!inserted) throw alreadyExists(providerLabel(p.id));
      return toProvider(inserted);
    });
  }

  /**
   * `column IN (values)` for a key list; one value as plain equality. PostgreSQL's planner answers
   * equality from the primary key, while for a JSON key list it guesses 100 rows and, on a small
   * table, scans it (every token resolution reads one key).
   */
  #textIn(column: string, values: readonly string[]): Sql {
    if (values.length === 1) return sql`${raw(column)} = ${values[0]}`;
    return sql`${raw(column)} IN (${this.#db.dialect.textsOf(json(values))})`;
  }

  /** `(first, second) IN (connection keys)`, as #textIn. */
  #connectionKeyIn(first: string, second: string, keys: readonly ConnectionKey[]): Sql {
    if (keys.length === 1)
      return sql`${raw(first)} = ${keys[0]!.providerId} AND ${raw(second)} = ${keys[0]!.connectionId}`;
    return sql`(${raw(first)}, ${raw(second)}) IN (${this.#db.dialect.pairsOf(json(keys.map((k) => [k.providerId, k.connectionId])))})`;
  }

  async getProvider(id: string): Promise<ProviderRecord | null> {
    const row = firstRow(await this.#db.run(sql`SELECT ${PROVIDER_COLUMNS} FROM providers WHERE id = ${id}`));
    return row ? toProvider(row) : null;
  }

  async getProviders(ids: readonly string[]): Promise<(ProviderRecord | null)[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.#db.run(
      sql`SELECT ${PROVIDER_COLUMNS} FROM providers WHERE ${this.#textIn('id', ids)}`,
    );
    const byId = new Map(rows.map((row) => [String(row['id']), toProvider(row)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  async listProviders(page: PageArgs): Promise<Page<ProviderRecord>> {
    const { rows } = await this.#db.run(
      sql`SELECT ${PROVIDER_COLUMNS} FROM providers WHERE id > ${afterId(page)} ORDER BY id LIMIT ${page.first + 1}`,
    );
    return pageOf(rows.map(toProvider), page.first);
  }

  async countProviders(): Promise<number> {
    const row = firstRow(await this.#db.run(sql`SELECT count(*) AS n FROM providers`));
    return row ? num(row, 'n') : 0;
  }

  updateProvider(
    id: string,
    patch: ProviderPatch,
    expectedVersion: number | null,
    options: ProviderUpdateOptions = {},
  ): Promise<ProviderRecord> {
    const d = this.#db.dialect;
    return this.#db.transaction(function* () {
      const found = firstRow(yield sql`SELECT ${PROVIDER_COLUMNS} FROM providers WHERE id = ${id}${d.forUpdate}`);
      if (!found) throw notFound(providerLabel(id));
      const current = toProvider(found);
      checkVersion(providerLabel(id), current.version, expectedVersion);
      const next = patched(current, patch);
      const updated = firstRow(
        yield sql`UPDATE providers SET display_name = ${next.displayName}, client_id = ${providerClientIdColumn(next.clientId)},
            client_secret = ${next.clientSecret}, scopes = ${json(next.scopes)}, parameters = ${json(next.parameters)},
            version = ${current.version + 1}, updated_at = ${Date.now()}
          WHERE id = ${id}
          RETURNING ${PROVIDER_COLUMNS}`,
      );
      if (!updated) throw notFound(providerLabel(id));
      if (options.dropConnectionTokens === true)
        yield* unbindConnections(current, options.dropConnectionClientSecrets === true);
      return toProvider(updated);
    });
  }

  deleteProvider(id: string, expectedVersion: number | null, options: DeleteOptions = {}): Promise<void> {
    const d = this.#db.dialect;
    return this.#db.transaction(function* () {
      const found = firstRow(yield sql`SELECT ${PROVIDER_COLUMNS} FROM providers WHERE id = ${id}${d.forUpdate}`);
      if (!found) throw notFound(providerLabel(id));
      const provider = toProvider(found);
      checkVersion(providerLabel(id), provider.version, expectedVersion);
      const connections: Result =
        yield sql`SELECT ${CONNECTION_COLUMNS} FROM connections WHERE provider_id = ${id} ORDER BY id${d.forUpdate}`;
      yield* recordDeletes(provider, connections.rows, options.retire);
      // Connections, their policies, tokens and consents in progress go by ON DELETE CASCADE.
      yield sql`DELETE FROM providers WHERE id = ${id}`;
    });
  }

  // Connections --------------------------------------------------------------------------

  insertConnection(
    connection: ConnectionRecord,
    policies: readonly AccessPolicyRecord[],
    maxConnections: number,
    options: InsertConnectionOptions = {},
  ): Promise<ConnectionRecord> {
    const c = connection;
    const autoCreatedAt = options.autoCreated ? ms(c.createdAt) : null;
    const key = { providerId: c.providerId, connectionId: c.id };
    const stranger = policies.find((p) => p.providerId !== c.providerId || p.connectionId !== c.id);
    if (stranger) {
      const label = policyLabel({ providerId: stranger.providerId, connectionId: stranger.connectionId }, stranger.id);
      return Promise.reject(new TypeError(`${label} cannot be an initial policy of ${connectionLabel(key)}`));
    }
    const d = this.#db.dialect;
    const state = stateColumns(c.state);
    return this.#db.transaction(function* () {
      const parent = firstRow(yield sql`SELECT id FROM providers WHERE id = ${c.providerId}${d.forUpdate}`);
      if (!parent) throw notFound(providerLabel(c.providerId));
      const counts = firstRow(
        yield sql`SELECT count(*) AS total,
            (SELECT count(*) FROM connections WHERE provider_id = ${c.providerId} AND id = ${c.id}) AS taken
          FROM connections WHERE provider_id = ${c.providerId}`,
      );
      if (counts && num(counts, 'taken') > 0) throw alreadyExists(connectionLabel(key));
      if (counts && num(counts, 'total') >= maxConnections)
        throw limitExceeded(providerLabel(c.providerId), maxConnections, 'connections');
      const inserted = firstRow(
        yield sql`INSERT INTO connections (${CONNECTION_COLUMNS}, auto_created_at)
          VALUES (${c.providerId}, ${c.id}, ${c.displayName}, ${state.status}, ${state.errorCode}, ${state.errorMessage},
            ${c.clientId}, ${c.clientSecret}, ${c.tokens}, ${msOrNull(c.tokenExpiresAt)}, ${msOrNull(c.lastRefreshedAt)},
            ${c.tokenGeneration}, ${c.version}, ${ms(c.createdAt)}, ${ms(c.updatedAt)}, ${autoCreatedAt})
          ON CONFLICT (provider_id, id) DO NOTHING
          RETURNING ${CONNECTION_COLUMNS}`,
      );
      if (!inserted) throw alreadyExists(connectionLabel(key));
      for (const p of policies) {
        const added = yield insertPolicy(p);
        if (added.rowCount === 0) throw alreadyExists(policyLabel(key, p.id));
      }
      const record = toConnection(inserted);
      yield recordEvent('connection.created', record);
      return record;
    });
  }

  async getConnection(key: ConnectionKey): Promise<ConnectionRecord | null> {
    const row = firstRow(
      await this.#db.run(
        sql`SELECT ${CONNECTION_COLUMNS} FROM connections WHERE provider_id = ${key.providerId} AND id = ${key.connectionId}`,
      ),
    );
    return row ? toConnection(row) : null;
  }

  async getConnections(keys: readonly ConnectionKey[]): Promise<(ConnectionRecord | null)[]> {
    if (keys.length === 0) return [];
    const { rows } = await this.#db.run(
      sql`SELECT ${CONNECTION_COLUMNS} FROM connections WHERE ${this.#connectionKeyIn('provider_id', 'id', keys)}`,
    );
    const byKey = new Map(
      rows
        .map(toConnection)
        .map((c) => [connectionKeyOf({ providerId: c.providerId, connectionId: c.id }), c] as const),
    );
    return keys.map((key) => byKey.get(connectionKeyOf(key)) ?? null);
  }

  async listConnectionsOfProviders(
    providerIds: readonly string[],
    page: PageArgs,
    status: ConnectionStatus | null = null,
  ): Promise<Page<ConnectionRecord>[]> {
    if (providerIds.length === 0) return [];
    const inStatus = status === null ? sql`` : sql` AND status = ${status}`;
    if (new Set(providerIds).size === 1) {
      // One provider (a console page of its connections): read the page straight off the primary
      // key instead of numbering every one of its (up to 10,000) connections.
      const { rows } = await this.#db.run(
        sql`SELECT ${CONNECTION_COLUMNS} FROM connections
          WHERE provider_id = ${providerIds[0]} AND id > ${afterId(page)}${inStatus}
          ORDER BY id LIMIT ${page.first + 1}`,
      );
      const one = pageOf(rows.map(toConnection), page.first);
      return providerIds.map(() => one);
    }
    // One statement for every provider: number each provider's connections, keep first + 1 of each.
    const { rows } = await this.#db.run(
      sql`SELECT ${CONNECTION_COLUMNS} FROM (
          SELECT ${CONNECTION_COLUMNS}, ROW_NUMBER() OVER (PARTITION BY provider_id ORDER BY id) AS position
          FROM connections
          WHERE ${this.#textIn('provider_id', providerIds)} AND id > ${afterId(page)}${inStatus}
        ) AS numbered
        WHERE position <= ${page.first + 1}
        ORDER BY provider_id, id`,
    );
    const byProvider = groupBy(rows.map(toConnection), (c) => c.providerId);
    return providerIds.map((id) => pageOf(byProvider.get(id) ?? [], page.first));
  }

  async countConnectionsByStatus(providerIds: readonly string[]): Promise<ConnectionCounts[]> {
    if (providerIds.length === 0) return [];
    const { rows } = await this.#db.run(
      sql`SELECT provider_id, status, COUNT(*) AS n FROM connections
        WHERE ${this.#textIn('provider_id', providerIds)} GROUP BY provider_id, status`,
    );
    const counts = new Map<string, Record<ConnectionStatus, number>>();
    for (const row of rows) {
      const id = String(row['provider_id']);
      const entry = counts.get(id) ?? { CONNECTED: 0, NOT_CONNECTED: 0, ERROR: 0 };
      entry[String(row['status']) as ConnectionStatus] = num(row, 'n');
      counts.set(id, entry);
    }
    return providerIds.map((id) =>
      Object.freeze({ ...(counts.get(id) ?? { CONNECTED: 0, NOT_CONNECTED: 0, ERROR: 0 }) }),
    );
  }

  updateConnection(
    key: ConnectionKey,
    patch: ConnectionPatch,
    expectedVersion: number | null,
    options: ConnectionUpdateOptions = {},
  ): Promise<ConnectionRecord> {
    const d = this.#db.dialect;
    const label = connectionLabel(key);
    return this.#db.transaction(function* () {
      const found = firstRow(
        yield sql`SELECT ${CONNECTION_COLUMNS} FROM connections
          WHERE provider_id = ${key.providerId} AND id = ${key.connectionId}${d.forUpdate}`,
      );
      if (!found) throw notFound(label);
      const current = toConnection(found);
      checkVersion(label, current.version, expectedVersion);
      const next = patched(current, patch);
      const written = options.tokens;
      const state = stateColumns(written?.state ?? next.state);
      const tokenColumns =
        written !== undefined
          ? sql`, tokens = ${written.tokens}, token_expires_at = ${msOrNull(written.tokenExpiresAt)}, last_refreshed_at = ${ms(written.lastRefreshedAt)},
              token_generation = token_generation + 1`
          : options.dropTokens === true
            ? sql`, ${DROPPED_TOKENS}`
            : EMPTY;
      const updated = firstRow(
        yield sql`UPDATE connections SET display_name = ${next.displayName}, client_id = ${next.clientId},
            client_secret = ${next.clientSecret}, status = ${state.status}, error_code = ${state.errorCode},
            error_message = ${state.errorMessage}, version = ${current.version + 1}, updated_at = ${Date.now()}
            ${tokenColumns}
          WHERE provider_id = ${key.providerId} AND id = ${key.connectionId}
          RETURNING ${CONNECTION_COLUMNS}`,
      );
      if (!updated) throw notFound(label);
      const record = toConnection(updated);
      if (current.state.status !== 'CONNECTED' && record.state.status === 'CONNECTED')
        yield recordEvent('connection.connected', record);
      return record;
    });
  }

  deleteConnection(key: ConnectionKey, expectedVersion: number | null, options: DeleteOptions = {}): Promise<void> {
    const d = this.#db.dialect;
    const label = connectionLabel(key);
    return this.#db.transaction(function* () {
      const found = firstRow(
        yield sql`SELECT ${CONNECTION_COLUMNS} FROM connections WHERE provider_id = ${key.providerId} AND id = ${key.connectionId}${d.forUpdate}`,
      );
      if (!found) throw notFound(label);
      checkVersion(label, num(found, 'version'), expectedVersion);
      const provider = firstRow(yield sql`SELECT ${PROVIDER_COLUMNS} FROM providers WHERE id = ${key.providerId}`);
      if (provider) yield* recordDeletes(toProvider(provider), [found], options.retire);
      yield sql`DELETE FROM connections WHERE provider_id = ${key.providerId} AND id = ${key.connectionId}`;
    });
  }

  async deleteUnconsentedConnections(createdBefore: Date, now: Date, limit: number): Promise<ConnectionKey[]> {
    // A user who has just opened a login link may finish consenting: the connection waits for that.
    const unconsented = sql`auto_created_at IS NOT NULL AND auto_created_at < ${ms(createdBefore)} AND status = 'NOT_CONNECTED'
      AND NOT EXISTS (SELECT 1 FROM consent_states AS s
        WHERE s.provider_id = connections.provider_id AND s.connection_id = connections.id AND s.expires_at > ${ms(now)})`;
    // The condition is repeated outside the subquery: PostgreSQL re-checks only the outer one on a
    // row another transaction changed meanwhile, so a connection consented during the sweep stays.
    const rows = await this.#db.transaction(function* () {
      const deleted: Result = yield sql`DELETE FROM connections WHERE ${unconsented} AND (provider_id, id) IN (
          SELECT provider_id, id FROM connections WHERE ${unconsented} ORDER BY auto_created_at LIMIT ${limit})
        RETURNING ${CONNECTION_COLUMNS}`;
      const at = new Date();
      // Never consented: no tokens to revoke.
      for (const row of deleted.rows) yield recordEvent('connection.deleted', toConnection(row), at);
      return deleted.rows;
    });
    return rows.map((row) =>
      Object.freeze({ providerId: String(row['provider_id']), connectionId: String(row['id']) }),
    );
  }

  async writeTokens(
    key: ConnectionKey,
    write: TokenWrite,
    expectedGeneration: number,
  ): Promise<ConnectionRecord | null> {
    const state = stateColumns(write.state);
    // Token writes are not admin edits: `version` (the admin's ETag) stays, the generation moves.
    const update = sql`UPDATE connections SET tokens = ${write.tokens}, token_expires_at = ${msOrNull(write.tokenExpiresAt)},
            last_refreshed_at = ${ms(write.lastRefreshedAt)}, status = ${state.status}, error_code = ${state.errorCode},
            error_message = ${state.errorMessage}, token_generation = token_generation + 1
          WHERE provider_id = ${key.providerId} AND id = ${key.connectionId} AND token_generation = ${expectedGeneration}
          RETURNING ${CONNECTION_COLUMNS}`;
    // A refresh is one statement; a consent also records its event, in the same transaction.
    const written = write.consented
      ? await this.#db.transaction(function* () {
          const row = firstRow(yield update);
          if (row) yield recordEvent('connection.connected', toConnection(row));
          return row;
        })
      : firstRow(await this.#db.run(update));
    if (written) return toConnection(written);
    if (!(await this.#exists(key))) throw notFound(connectionLabel(key));
    return null;
  }

  async setConnectionState(key: ConnectionKey, state: ConnectionState): Promise<ConnectionRecord> {
    const updated = await this.#setState(key, state, EMPTY);
    if (!updated) throw notFound(connectionLabel(key));
    return updated;
  }

  async setConnectionStateIfGeneration(
    key: ConnectionKey,
    state: ConnectionState,
    expectedGeneration: number,
  ): Promise<ConnectionRecord | null> {
    const updated = await this.#setState(key, state, sql` AND token_generation = ${expectedGeneration}`);
    if (updated) return updated;
    if (!(await this.#exists(key))) throw notFound(connectionLabel(key));
    return null;
  }

  /** The state, and the lifecycle event its change means, in one transaction. */
  #setState(key: ConnectionKey, state: ConnectionState, condition: Sql): Promise<ConnectionRecord | null> {
    const s = stateColumns(state);
    const d = this.#db.dialect;
    const where = sql`provider_id = ${key.providerId} AND id = ${key.connectionId}${condition}`;
    return this.#db.transaction(function* () {
      const before = firstRow(yield sql`SELECT status, error_code FROM connections WHERE ${where}${d.forUpdate}`);
      if (!before) return null;
      const updated = firstRow(
        yield sql`UPDATE connections SET status = ${s.status}, error_code = ${s.errorCode}, error_message = ${s.errorMessage},
            version = version + 1, updated_at = ${Date.now()}
          WHERE ${where}
          RETURNING ${CONNECTION_COLUMNS}`,
      );
      if (!updated) return null;
      const record = toConnection(updated);
      const event = stateEvent(String(before['status']), before['error_code'] ?? null, s);
      if (event) yield recordEvent(event, record);
      return record;
    });
  }

  async #exists(key: ConnectionKey): Promise<boolean> {
    const { rows } = await this.#db.run(
      sql`SELECT 1 AS present FROM connections WHERE provider_id = ${key.providerId} AND id = ${key.connectionId}`,
    );
    return rows.length > 0;
  }

  // Access policies -----------------------------------------------------------------------

  insertAccessPolicy(policy: AccessPolicyRecord, maxPolicies: number): Promise<AccessPolicyRecord> {
    const d = this.#db.dialect;
    const p = policy;
    const key = { providerId: p.providerId, connectionId: p.connectionId };
    return this.#db.transaction(function* () {
      const parent = firstRow(
        yield sql`SELECT id FROM connections WHERE provider_id = ${p.providerId} AND id = ${p.connectionId}${d.forUpdate}`,
      );
      if (!parent) throw notFound(connectionLabel(key));
      const counts = firstRow(
        yield sql`SELECT count(*) AS total, (SELECT count(*) FROM access_policies
              WHERE provider_id = ${p.providerId} AND connection_id = ${p.connectionId} AND id = ${p.id}) AS taken
          FROM access_policies WHERE provider_id = ${p.providerId} AND connection_id = ${p.connectionId}`,
      );
      if (counts && num(counts, 'taken') > 0) throw alreadyExists(policyLabel(key, p.id));
      if (counts && num(counts, 'total') >= maxPolicies)
        throw limitExceeded(connectionLabel(key), maxPolicies, 'access policies');
      const inserted = firstRow(yield insertPolicy(p));
      if (!inserted) throw alreadyExists(policyLabel(key, p.id));
      return toPolicy(inserted);
    });
  }

  async listAccessPolicies(keys: readonly ConnectionKey[]): Promise<AccessPolicyRecord[][]> {
    if (keys.length === 0) return [];
    const { rows } = await this.#db.run(
      sql`SELECT ${POLICY_COLUMNS} FROM access_policies
        WHERE ${this.#connectionKeyIn('provider_id', 'connection_id', keys)}
        ORDER BY provider_id, connection_id, id`,
    );
    const byKey = groupBy(rows.map(toPolicy), connectionKeyOf);
    return keys.map((key) => [...(byKey.get(connectionKeyOf(key)) ?? [])]);
  }

  async deleteAccessPolicy(key: ConnectionKey, id: string): Promise<void> {
    const { rowCount } = await this.#db.run(
      sql`DELETE FROM access_policies WHERE provider_id = ${key.providerId} AND connection_id = ${key.connectionId} AND id = ${id}`,
    );
    if (rowCount === 0) throw notFound(policyLabel(key, id));
  }

  // Consent state -------------------------------------------------------------------------

  async insertConsentState(state: ConsentStateRecord): Promise<void> {
    // Inserted only alongside a live connection: a consent for nothing would dangle.
    const { rowCount } = await this.#db.run(insertConsent(state));
    if (rowCount === 0)
      throw notFound(connectionLabel({ providerId: state.providerId, connectionId: state.connectionId }));
  }

  async hasConsentState(stateHash: string, now: Date): Promise<boolean> {
    const row = firstRow(
      await this.#db.run(
        sql`SELECT 1 AS found FROM consent_states WHERE state_hash = ${stateHash} AND expires_at > ${ms(now)}`,
      ),
    );
    return row !== undefined;
  }

  async consumeConsentState(stateHash: string, now: Date): Promise<ConsentStateRecord | null> {
    // Deleted whether expired or not: a state is spent by its first use either way.
    const row = firstRow(
      await this.#db.run(sql`DELETE FROM consent_states WHERE state_hash = ${stateHash} RETURNING ${CONSENT_COLUMNS}`),
    );
    if (!row) return null;
    const consent = toConsentState(row);
    return consent.expiresAt.getTime() > now.getTime() ? consent : null;
  }

  runtimeLoginLink(fresh: ConsentStateRecord, reuseUntil: Date): Promise<ConsentStateRecord> {
    const { providerId, connectionId } = fresh;
    const ofConnection = sql`provider_id = ${providerId} AND connection_id = ${connectionId} AND link_token IS NOT NULL`;
    return this.#db.transaction(function* () {
      yield sql`DELETE FROM consent_states WHERE ${ofConnection} AND expires_at <= ${ms(reuseUntil)}`;
      // A concurrent caller's row wins the unique index; everyone reads back the one that stays.
      yield sql`${insertConsent(fresh)} ON CONFLICT DO NOTHING`;
      const row = firstRow(yield sql`SELECT ${CONSENT_COLUMNS} FROM consent_states WHERE ${ofConnection}`);
      if (!row) throw notFound(connectionLabel({ providerId, connectionId }));
      return toConsentState(row);
    });
  }

  deleteConsentsOf(key: ConnectionKey): Promise<void> {
    return this.#db.transaction(function* () {
      yield sql`DELETE FROM consent_states WHERE provider_id = ${key.providerId} AND connection_id = ${key.connectionId}`;
      yield sql`DELETE FROM pending_consents WHERE provider_id = ${key.providerId} AND connection_id = ${key.connectionId}`;
    });
  }

  deleteExpiredConsentStates(now: Date): Promise<number> {
    return this.#db.transaction(function* () {
      const states: Result = yield sql`DELETE FROM consent_states WHERE expires_at <= ${ms(now)}`;
      const pending: Result = yield sql`DELETE FROM pending_consents WHERE expires_at <= ${ms(now)}`;
      return states.rowCount + pending.rowCount;
    });
  }

  // Pending consents ----------------------------------------------------------------------

  async insertPendingConsent(pending: PendingConsentRecord): Promise<void> {
    const p = pending;
    const { rowCount } = await this.#db.run(
      sql`INSERT INTO pending_consents (${PENDING_CONSENT_COLUMNS})
        SELECT ${p.consentHash}, ${p.providerId}, ${p.connectionId}, ${p.tokens}, ${ms(p.expiresAt)}, ${ms(p.createdAt)}
        FROM connections WHERE provider_id = ${p.providerId} AND id = ${p.connectionId}`,
    );
    if (rowCount === 0) throw notFound(connectionLabel({ providerId: p.providerId, connectionId: p.connectionId }));
  }

  async consumePendingConsent(consentHash: string, now: Date): Promise<PendingConsentRecord | null> {
    // Spent by its first use, expired or not.
    const row = firstRow(
      await this.#db.run(
        sql`DELETE FROM pending_consents WHERE consent_hash = ${consentHash} RETURNING ${PENDING_CONSENT_COLUMNS}`,
      ),
    );
    if (!row) return null;
    const pending = toPendingConsent(row);
    return pending.expiresAt.getTime() > now.getTime() ? pending : null;
  }

  // Revocation queue ------------------------------------------------------------------------

  async claimRevocations(now: Date, limit: number, leaseMs: number): Promise<RevocationRecord[]> {
    const { rows } = await this.#db.run(
      sql`UPDATE revocations SET attempts = attempts + 1, next_attempt_at = ${ms(now) + leaseMs}
        WHERE id IN (SELECT id FROM revocations WHERE next_attempt_at <= ${ms(now)}
          ORDER BY next_attempt_at LIMIT ${limit}${this.#db.dialect.skipLocked})
        RETURNING ${REVOCATION_COLUMNS}`,
    );
    return rows.map(toRevocation);
  }

  async deleteRevocation(id: string): Promise<void> {
    await this.#db.run(sql`DELETE FROM revocations WHERE id = ${id}`);
  }

  async retryRevocationAt(id: string, at: Date): Promise<void> {
    await this.#db.run(sql`UPDATE revocations SET next_attempt_at = ${ms(at)} WHERE id = ${id}`);
  }

  async countRevocations(): Promise<number> {
    const row = firstRow(await this.#db.run(sql`SELECT count(*) AS n FROM revocations`));
    return row ? num(row, 'n') : 0;
  }

  // Webhooks --------------------------------------------------------------------------------

  insertWebhook(webhook: WebhookRecord, maxWebhooks: number): Promise<WebhookRecord> {
    const d = this.#db.dialect;
    const w = webhook;
    const label = `webhook '${w.id}'`;
    return this.#db.transaction(function* () {
      const lock = d.transactionLock('webhooks');
      if (lock) yield lock;
      const counts = firstRow(
        yield sql`SELECT count(*) AS total, (SELECT count(*) FROM webhooks WHERE id = ${w.id}) AS taken FROM webhooks`,
      );
      if (counts && num(counts, 'taken') > 0) throw alreadyExists(label);
      if (counts && num(counts, 'total') >= maxWebhooks) throw limitExceeded('the instance', maxWebhooks, 'webhooks');
      const inserted = firstRow(
        yield sql`INSERT INTO webhooks (${WEBHOOK_COLUMNS}) VALUES (${w.id}, ${w.url}, ${json(w.events)}, ${w.secret}, ${ms(w.createdAt)})
          ON CONFLICT (id) DO NOTHING RETURNING ${WEBHOOK_COLUMNS}`,
      );
      if (!inserted) throw alreadyExists(label);
      return toWebhook(inserted);
    });
  }

  async listWebhooks(): Promise<WebhookRecord[]> {
    const { rows } = await this.#db.run(sql`SELECT ${WEBHOOK_COLUMNS} FROM webhooks ORDER BY id`);
    return rows.map(toWebhook);
  }

  deleteWebhook(id: string): Promise<void> {
    return this.#db.transaction(function* () {
      yield sql`DELETE FROM webhook_deliveries WHERE webhook_id = ${id}`;
      const deleted: Result = yield sql`DELETE FROM webhooks WHERE id = ${id}`;
      if (deleted.rowCount === 0) throw notFound(`webhook '${id}'`);
    });
  }

  async listWebhookDeliveries(
    webhookId: string,
    status: DeliveryStatus | null,
    limit: number,
  ): Promise<WebhookDeliveryRecord[]> {
    const { rows } = await this.#db.run(
      sql`SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries
        WHERE webhook_id = ${webhookId}${status === null ? EMPTY : sql` AND status = ${status}`}
        ORDER BY created_at DESC, event_id LIMIT ${limit}`,
    );
    return rows.map(toDelivery);
  }

  async claimWebhookDeliveries(now: Date, limit: number, leaseMs: number): Promise<WebhookDeliveryRecord[]> {
    const { rows } = await this.#db.run(
      sql`UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ${ms(now) + leaseMs}
        WHERE (webhook_id, event_id) IN (SELECT webhook_id, event_id FROM webhook_deliveries
          WHERE status = 'PENDING' AND next_attempt_at <= ${ms(now)}
          ORDER BY next_attempt_at LIMIT ${limit}${this.#db.dialect.skipLocked})
        RETURNING ${DELIVERY_COLUMNS}`,
    );
    return rows.map(toDelivery);
  }

  async completeWebhookDelivery(webhookId: string, eventId: string, outcome: DeliveryOutcome): Promise<void> {
    const where = sql`webhook_id = ${webhookId} AND event_id = ${eventId} AND status = 'PENDING'`;
    switch (outcome.status) {
      case 'DELIVERED':
        await this.#db.run(
          sql`UPDATE webhook_deliveries SET status = 'DELIVERED', next_attempt_at = NULL, last_error = NULL, delivered_at = ${ms(outcome.at)} WHERE ${where}`,
        );
        return;
      case 'PENDING':
        await this.#db.run(
          sql`UPDATE webhook_deliveries SET next_attempt_at = ${ms(outcome.nextAttemptAt)}, last_error = ${outcome.error} WHERE ${where}`,
        );
        return;
      case 'DEAD':
        await this.#db.run(
          sql`UPDATE webhook_deliveries SET status = 'DEAD', next_attempt_at = NULL, last_error = ${outcome.error} WHERE ${where}`,
        );
    }
  }

  async purgeWebhookDeliveries(deliveredBefore: Date, deadBefore: Date): Promise<number> {
    const { rowCount } = await this.#db.run(
      sql`DELETE FROM webhook_deliveries WHERE (status = 'DELIVERED' AND created_at < ${ms(deliveredBefore)})
        OR (status = 'DEAD' AND created_at < ${ms(deadBefore)})`,
    );
    return rowCount;
  }

  // Sealed fields (key rotation) ---------------------------------------------------------------

  async listSealedNotWrappedBy(keyId: string, limit: number, after: SealedRef | null = null): Promise<SealedField[]> {
    const pattern = startsWith(sealedPrefix(keyId));
    const first = after === null ? 0 : SEALED_COLUMNS.indexOf(sealedColumnOf(after));
    // Each column in primary-key order from where the last batch stopped: no pass rereads what it has done.
    const branches = SEALED_COLUMNS.slice(first).map((c, i) => {
      const [a, b = 'NULL', c3 = 'NULL'] = c.keys as readonly string[];
      const columns = raw(
        `${first + i} AS position, '${c.kind}' AS kind, '${c.field}' AS field, ${a} AS a, ${b} AS b, ${c3} AS c`,
      );
      const keys = raw(c.keys.join(', '));
      const resume =
        i === 0 && after !== null
          ? sql` AND (${keys}) > (${join(
              sealedKeyValues(after).map((v) => sql`${v}`),
              ', ',
            )})`
          : sql``;
      return sql`SELECT * FROM (SELECT ${columns}, ${raw(c.column)} AS value FROM ${raw(c.table)}
        WHERE ${raw(c.column)} IS NOT NULL AND ${raw(c.column)} NOT LIKE ${pattern} ESCAPE '\\'${resume}
        ORDER BY ${keys} LIMIT ${limit}) AS ${raw(`column_${first + i}`)}`;
    });
    const { rows } = await this.#db.run(
      sql`${join(branches, ' UNION ALL ')} ORDER BY position, a, b, c LIMIT ${limit}`,
    );
    return rows.map((row) => Object.freeze({ ref: sealedRefOf(row), value: String(row['value']) as Sealed }));
  }

  async replaceSealed(ref: SealedRef, expected: Sealed, next: Sealed): Promise<boolean> {
    const c = sealedColumnOf(ref);
    const values = sealedKeyValues(ref);
    const keyMatch = join(
      c.keys.map((column, i) => sql`${raw(column)} = ${values[i]}`),
      ' AND ',
    );
    // A new wrapping of the same secret: no version, generation or timestamp moves.
    const { rowCount } = await this.#db.run(
      sql`UPDATE ${raw(c.table)} SET ${raw(c.column)} = ${next} WHERE ${keyMatch} AND ${raw(c.column)} = ${expected}`,
    );
    return rowCount > 0;
  }

  async countSealedWrappedBy(keyId: string): Promise<number> {
    const pattern = startsWith(sealedPrefix(keyId));
    const counts = SEALED_COLUMNS.map(
      (c) => sql`(SELECT count(*) FROM ${raw(c.table)} WHERE ${raw(c.column)} LIKE ${pattern} ESCAPE '\\')`,
    );
    const row = firstRow(await this.#db.run(sql`SELECT ${join(counts, ' + ')} AS n`));
    return row ? num(row, 'n') : 0;
  }

  // Settings --------------------------------------------------------------------------------

  async getSetting(name: string): Promise<string | null> {
    const row = firstRow(await this.#db.run(sql`SELECT value FROM settings WHERE name = ${name}`));
    return row ? String(row['value']) : null;
  }

  async putSettingIfAbsent(name: string, value: string): Promise<string> {
    // The no-op update makes RETURNING yield the row that stays, whichever it is.
    const row = firstRow(
      await this.#db.run(
        sql`INSERT INTO settings (name, value) VALUES (${name}, ${value})
          ON CONFLICT (name) DO UPDATE SET value = settings.value
          RETURNING value`,
      ),
    );
    return row ? String(row['value']) : value;
  }

  async putSetting(name: string, value: string): Promise<void> {
    await this.#db.run(
      sql`INSERT INTO settings (name, value) VALUES (${name}, ${value})
        ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
    );
  }

  // Coordination --------------------------------------------------------------------------------

  withConnectionLock<T>(key: ConnectionKey, fn: () => Promise<T>): Promise<T> {
    const name = connectionKeyOf(key);
    // In-process waiters queue here first, so only the holder occupies a database session.
    return this.#locks.run(name, () => this.#db.withSessionLock(`refresh/${name}`, fn));
  }

  // Change propagation ----------------------------------------------------------------------------

  publishChange(event: ChangeEvent): Promise<void> {
    return this.#changes.publish(event);
  }

  onChange(listener: ChangeListener): () => void {
    return this.#changes.on(listener);
  }
}

/** The lifecycle event a state change means, if any. */
function stateEvent(
  status: string,
  errorCode: unknown,
  next: ReturnType<typeof stateColumns>,
): LifecycleEventType | null {
  if (next.status === 'CONNECTED' && status !== 'CONNECTED') return 'connection.connected';
  if (next.errorCode === REAUTHORIZATION_REQUIRED && errorCode !== REAUTHORIZATION_REQUIRED)
    return 'connection.reauthorization_required';
  return null;
}

const REAUTHORIZATION_REQUIRED = 'REAUTHORIZATION_REQUIRED';

/** Inserts nothing when the connection is gone (rowCount 0). */
function insertConsent(s: ConsentStateRecord): Sql {
  return sql`INSERT INTO consent_states (${CONSENT_COLUMNS})
    SELECT ${s.stateHash}, ${s.providerId}, ${s.connectionId}, ${s.codeVerifier}, ${s.nonce}, ${s.postLoginRedirectUrl},
      ${s.startedBy}, ${s.linkToken}, ${ms(s.expiresAt)}, ${ms(s.createdAt)}
    FROM connections WHERE provider_id = ${s.providerId} AND id = ${s.connectionId}`;
}

function insertPolicy(p: AccessPolicyRecord): Sql {
  return sql`INSERT INTO access_policies (${POLICY_COLUMNS})
    VALUES (${p.providerId}, ${p.connectionId}, ${p.id}, ${p.kind}, ${p.objectId}, ${p.tenantId}, ${json(p.appIds)}, ${ms(p.createdAt)}, ${p.issuer})
    ON CONFLICT (provider_id, connection_id, id) DO NOTHING
    RETURNING ${POLICY_COLUMNS}`;
}
