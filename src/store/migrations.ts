/**
 * Versioned schema migrations, shared by both databases (column types come from the dialect).
 * Each migration runs once, in its own transaction, recorded in `schema_migrations`. Replicas
 * starting together serialize on a transaction lock and re-check, so none applies one twice.
 * Migrations are append-only: never edit a released one, add the next version.
 */
import { num } from './rows.js';
import { raw, sql, type Dialect, type Driver, type Row, type Work } from './sql.js';

/** What a migration may need from the configuration the store is opened with. */
export interface MigrationContext {
  /** `identity.issuers[].issuer`, in configuration order. */
  readonly issuers: readonly string[];
  /** Told, after the migration committed, of each record it could not decide for an admin. */
  readonly review: (finding: MigrationFinding) => void;
}

/** A record a migration left for an admin to review. Holds ids, never secrets. */
export interface MigrationFinding {
  readonly version: number;
  readonly providerId: string;
  readonly connectionId: string;
  readonly policyId: string;
  readonly message: string;
}

export const NO_MIGRATION_CONTEXT: MigrationContext = Object.freeze({ issuers: Object.freeze([]), review: () => {} });

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** Statements run in order inside the migration's transaction. */
  statements(types: Dialect['types']): readonly string[];
  /** Data changes run after the statements, in the same transaction; returns what an admin should review. */
  data?(context: MigrationContext): Work<readonly MigrationFinding[]>;
}

/** The policy id version 1 gave a connection created for its user on first use. */
const V1_OWNER_POLICY_ID = 'owner';

function findingsOf(rows: readonly Row[], version: number, message: string): MigrationFinding[] {
  return rows.map((row) =>
    Object.freeze({
      version,
      providerId: String(row['provider_id']),
      connectionId: String(row['connection_id']),
      policyId: String(row['id']),
      message,
    }),
  );
}

/**
 * Version 2: principals are issuer-scoped. An owner policy names its user by `sub`/`oid`, which is
 * only unique within one issuer. With exactly one trusted issuer every owner was verified by it,
 * so the policy gets that issuer; otherwise nobody can tell which, and an admin decides.
 * SERVICE_PRINCIPAL policies used to match the app id; they now match the principal's own object
 * id, which no migration can know: each one is reported.
 */
function* issuerScopedPrincipals(context: MigrationContext): Work<readonly MigrationFinding[]> {
  const findings: MigrationFinding[] = [];
  const [only] = context.issuers;
  if (context.issuers.length === 1 && only !== undefined) {
    yield sql`UPDATE access_policies SET issuer = ${only} WHERE kind = 'USER' AND id = ${V1_OWNER_POLICY_ID} AND issuer IS NULL`;
  } else {
    const owners = yield sql`SELECT provider_id, connection_id, id FROM access_policies
      WHERE kind = 'USER' AND id = ${V1_OWNER_POLICY_ID} AND issuer IS NULL ORDER BY provider_id, connection_id`;
    findings.push(
      ...findingsOf(
        owners.rows,
        2,
        `owner policy left without an issuer (${context.issuers.length} trusted issuers configured): it admits a caller with its sub from any of them; ` +
          'replace it with one that sets issuer',
      ),
    );
  }
  const servicePrincipals = yield sql`SELECT provider_id, connection_id, id FROM access_policies
    WHERE kind = 'SERVICE_PRINCIPAL' ORDER BY provider_id, connection_id, id`;
  findings.push(
    ...findingsOf(
      servicePrincipals.rows,
      2,
      "SERVICE_PRINCIPAL policy: objectId now matches the service principal's own object id (oid, else sub of an app-only token), " +
        'not the app id; if it holds an app id, set objectId to the principal and move the app id to appIds',
    ),
  );
  return findings;
}

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'credential store',
    statements: ({ id, text, int, ms, json, tableSuffix }) => [
      `CREATE TABLE providers (
        id ${id} PRIMARY KEY,
        display_name ${text} NOT NULL,
        identity_provider ${text} NOT NULL,
        grant_type ${text} NOT NULL CHECK (grant_type IN ('AUTHORIZATION_CODE', 'CLIENT_CREDENTIALS')),
        client_id ${text} NOT NULL,
        client_secret ${text},
        scopes ${json} NOT NULL,
        parameters ${json} NOT NULL,
        version ${int} NOT NULL,
        created_at ${ms} NOT NULL,
        updated_at ${ms} NOT NULL
      )${tableSuffix}`,
      `CREATE TABLE connections (
        provider_id ${id} NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
        id ${id} NOT NULL,
        display_name ${text} NOT NULL,
        status ${text} NOT NULL CHECK (status IN ('CONNECTED', 'NOT_CONNECTED', 'ERROR')),
        error_code ${text},
        error_message ${text},
        client_id ${text},
        client_secret ${text},
        tokens ${text},
        token_expires_at ${ms},
        last_refreshed_at ${ms},
        token_generation ${int} NOT NULL,
        version ${int} NOT NULL,
        created_at ${ms} NOT NULL,
        updated_at ${ms} NOT NULL,
        PRIMARY KEY (provider_id, id),
        CHECK ((status = 'ERROR') = (error_code IS NOT NULL AND error_message IS NOT NULL))
      )${tableSuffix}`,
      `CREATE TABLE access_policies (
        provider_id ${id} NOT NULL,
        connection_id ${id} NOT NULL,
        id ${id} NOT NULL,
        kind ${text} NOT NULL CHECK (kind IN ('USER', 'GROUP', 'SERVICE_PRINCIPAL', 'MANAGED_IDENTITY')),
        object_id ${text} NOT NULL,
        tenant_id ${text},
        app_ids ${json} NOT NULL,
        created_at ${ms} NOT NULL,
        PRIMARY KEY (provider_id, connection_id, id),
        FOREIGN KEY (provider_id, connection_id) REFERENCES connections (provider_id, id) ON DELETE CASCADE
      )${tableSuffix}`,
      // A consent in progress dies with its connection: its sealed PKCE verifier must not outlive it.
      `CREATE TABLE consent_states (
        state_hash ${id} PRIMARY KEY,
        provider_id ${id} NOT NULL,
        connection_id ${id} NOT NULL,
        code_verifier ${text},
        nonce ${text},
        post_login_redirect_url ${text} NOT NULL,
        expires_at ${ms} NOT NULL,
        created_at ${ms} NOT NULL,
        FOREIGN KEY (provider_id, connection_id) REFERENCES connections (provider_id, id) ON DELETE CASCADE
      )${tableSuffix}`,
      'CREATE INDEX consent_states_connection ON consent_states (provider_id, connection_id)',
      'CREATE INDEX consent_states_expiry ON consent_states (expires_at)',
      `CREATE TABLE settings (
        name ${id} PRIMARY KEY,
        value ${text} NOT NULL
      )${tableSuffix}`,
    ],
  },
  {
    version: 2,
    name: 'issuer-scoped principals',
    statements: ({ text }) => [`ALTER TABLE access_policies ADD COLUMN issuer ${text}`],
    data: issuerScopedPrincipals,
  },
  {
    version: 3,
    name: 'runtime consents confirmed by the connection owner',
    statements: ({ id, text, ms, tableSuffix }) => [
      // Rows from before cannot tell an admin's link from a runtime one. They live ten minutes:
      // dropping them costs a new link, guessing wrong would skip the owner's confirmation.
      'DELETE FROM consent_states',
      `ALTER TABLE consent_states ADD COLUMN started_by ${text} NOT NULL DEFAULT 'RUNTIME' CHECK (started_by IN ('ADMIN', 'RUNTIME'))`,
      `ALTER TABLE consent_states ADD COLUMN link_token ${text}`,
      // One outstanding runtime link per connection: failing queries hand out the same one.
      'CREATE UNIQUE INDEX consent_states_runtime_link ON consent_states (provider_id, connection_id) WHERE link_token IS NOT NULL',
      `CREATE TABLE pending_consents (
        consent_hash ${id} PRIMARY KEY,
        provider_id ${id} NOT NULL,
        connection_id ${id} NOT NULL,
        tokens ${text} NOT NULL,
        expires_at ${ms} NOT NULL,
        created_at ${ms} NOT NULL,
        FOREIGN KEY (provider_id, connection_id) REFERENCES connections (provider_id, id) ON DELETE CASCADE
      )${tableSuffix}`,
      'CREATE INDEX pending_consents_connection ON pending_consents (provider_id, connection_id)',
      'CREATE INDEX pending_consents_expiry ON pending_consents (expires_at)',
    ],
  },
  {
    version: 4,
    name: 'auto-created connections',
    // When the gateway created the connection for its user on first use; null when an admin did.
    // Unconsented ones are swept after `limits.unconsentedConnectionTtlSeconds`.
    statements: ({ ms }) => [
      `ALTER TABLE connections ADD COLUMN auto_created_at ${ms}`,
      `CREATE INDEX connections_auto_created ON connections (auto_created_at) WHERE auto_created_at IS NOT NULL`,
    ],
  },
  {
    version: 5,
    name: 'API-key and basic credentials',
    // Version 1's CHECK on `grant_type` admits the two OAuth grants only, and relaxing a CHECK in
    // SQLite means rebuilding `providers` under its connections' foreign keys. So the kind gets a
    // column of its own; such rows keep CLIENT_CREDENTIALS (no consent, the connection holds the
    // credential) in `grant_type`, and the store reads `credential_kind` first (rows.ts).
    statements: ({ text }) => [
      `ALTER TABLE providers ADD COLUMN credential_kind ${text} CHECK (credential_kind IN ('API_KEY', 'BASIC'))`,
    ],
  },
  {
    version: 6,
    name: 'token revocation queue',
    // A deleted connection's tokens wait here, sealed to the row, until the provider has revoked them.
    // The provider may be deleted in the same transaction: the row keeps what revocation needs of it.
    statements: ({ id, text, int, ms, json, tableSuffix }) => [
      `CREATE TABLE revocations (
        id ${id} PRIMARY KEY,
        provider_id ${id} NOT NULL,
        connection_id ${id} NOT NULL,
        identity_provider ${text} NOT NULL,
        parameters ${json} NOT NULL,
        client_id ${text} NOT NULL,
        client_secret ${text},
        tokens ${text} NOT NULL,
        attempts ${int} NOT NULL,
        next_attempt_at ${ms} NOT NULL,
        created_at ${ms} NOT NULL
      )${tableSuffix}`,
      'CREATE INDEX revocations_due ON revocations (next_attempt_at)',
    ],
  },
  {
    version: 7,
    name: 'lifecycle webhooks and their outbox',
    statements: ({ id, text, int, ms, tableSuffix }) => [
      `CREATE TABLE webhooks (
        id ${id} PRIMARY KEY,
        url ${text} NOT NULL,
        events ${text} NOT NULL,
        secret ${text} NOT NULL,
        created_at ${ms} NOT NULL
      )${tableSuffix}`,
      // Written in the transaction of the change it reports; one row per webhook and event.
      `CREATE TABLE webhook_deliveries (
        webhook_id ${id} NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
        event_id ${id} NOT NULL,
        event_type ${text} NOT NULL,
        payload ${text} NOT NULL,
        status ${text} NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'DEAD')),
        attempts ${int} NOT NULL,
        next_attempt_at ${ms},
        last_error ${text},
        created_at ${ms} NOT NULL,
        delivered_at ${ms},
        PRIMARY KEY (webhook_id, event_id)
      )${tableSuffix}`,
      `CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'PENDING'`,
      'CREATE INDEX webhook_deliveries_status ON webhook_deliveries (webhook_id, status, created_at)',
    ],
  },
]);

export const LATEST_SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);

const MIGRATION_LOCK = 'migrate';

function* ensureLedger(dialect: Dialect): Work<void> {
  const lock = dialect.transactionLock(MIGRATION_LOCK);
  if (lock) yield lock;
  const { int, ms, text, tableSuffix } = dialect.types;
  yield raw(
    `CREATE TABLE IF NOT EXISTS schema_migrations (
      version ${int} PRIMARY KEY,
      name ${text} NOT NULL,
      applied_at ${ms} NOT NULL
    )${tableSuffix}`,
  );
}

/** Applies `migration` unless another process did meanwhile; its findings when this call applied it, else null. */
function* apply(
  dialect: Dialect,
  migration: Migration,
  context: MigrationContext,
): Work<readonly MigrationFinding[] | null> {
  const lock = dialect.transactionLock(MIGRATION_LOCK);
  if (lock) yield lock;
  const seen = yield sql`SELECT version FROM schema_migrations WHERE version = ${migration.version}`;
  if (seen.rows.length > 0) return null;
  for (const statement of migration.statements(dialect.types)) yield raw(statement);
  const findings = migration.data ? yield* migration.data(context) : [];
  yield sql`INSERT INTO schema_migrations (version, name, applied_at)
    VALUES (${migration.version}, ${migration.name}, ${Date.now()})`;
  return findings;
}

/** Brings the schema to LATEST_SCHEMA_VERSION; returns the versions this call applied. */
export async function migrate(db: Driver, context: MigrationContext = NO_MIGRATION_CONTEXT): Promise<number[]> {
  await db.transaction(() => ensureLedger(db.dialect));
  const { rows } = await db.run(sql`SELECT version FROM schema_migrations`);
  const present = new Set(rows.map((row) => num(row, 'version')));
  const newest = Math.max(0, ...present);
  if (newest > LATEST_SCHEMA_VERSION)
    throw new Error(
      `the database schema is at version ${newest}, newer than this gateway knows (${LATEST_SCHEMA_VERSION}): upgrade the gateway`,
    );
  const applied: number[] = [];
  for (const migration of MIGRATIONS) {
    if (present.has(migration.version)) continue;
    const findings = await db.transaction(() => apply(db.dialect, migration, context));
    if (findings === null) continue;
    applied.push(migration.version);
    // Only once committed: a rolled-back migration has nothing to review.
    for (const finding of findings) context.review(finding);
  }
  return applied;
}
