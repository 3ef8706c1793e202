/**
 * Store migration 2 (issuer-scoped principals) on a store written by version 1: owner policies get
 * the issuer when exactly one is configured; otherwise they stay issuer-less and each is logged for
 * review, as is every SERVICE_PRINCIPAL policy (whose objectId changed meaning). SQLite through the
 * whole gateway start (its log lines), PostgreSQL through the store.
 */
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, type MigrationFinding } from '../src/store/migrations.js';
import { openStore } from '../src/store/open.js';
import { POSTGRES_DIALECT } from '../src/store/postgres.js';
import { SQLITE_DIALECT } from '../src/store/sqlite.js';
import type { Dialect } from '../src/store/sql.js';
import { startTestApp } from './support/app.js';
import { freshPgSchema, requirePgOrSkip, withPgClient, type PgSchema } from './support/pg.js';
import { tempDir, type TempDir } from './support/tmp.js';

const hasPg = await requirePgOrSkip('the issuer migration on PostgreSQL');

const A = 'https://login.a.example.com';
const B = 'https://login.b.example.com';

/** A database exactly as gateway version 1 left it: two per-user connections, an admin's USER policy, a service principal. */
function version1(types: Dialect['types']): string[] {
  const { int, ms, text, tableSuffix } = types;
  const policy = (connection: string, id: string, kind: string, objectId: string) =>
    `INSERT INTO access_policies (provider_id, connection_id, id, kind, object_id, tenant_id, app_ids, created_at) VALUES ('p1', '${connection}', '${id}', '${kind}', '${objectId}', NULL, '[]', 0)`;
  const connection = (id: string) =>
    `INSERT INTO connections (provider_id, id, display_name, status, token_generation, version, created_at, updated_at) VALUES ('p1', '${id}', '${id}', 'NOT_CONNECTED', 0, 1, 0, 0)`;
  return [
    `CREATE TABLE schema_migrations (version ${int} PRIMARY KEY, name ${text} NOT NULL, applied_at ${ms} NOT NULL)${tableSuffix}`,
    ...MIGRATIONS[0]!.statements(types),
    `INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, 'credential store', 0)`,
    `INSERT INTO providers (id, display_name, identity_provider, grant_type, client_id, scopes, parameters, version, created_at, updated_at)
      VALUES ('p1', 'P1', 'oidc', 'AUTHORIZATION_CODE', 'client', '[]', '{}', 1, 0, 0)`,
    connection('alice'),
    connection('carol'),
    policy('alice', 'owner', 'USER', 'alice'),
    policy('carol', 'owner', 'USER', 'carol'),
    policy('alice', 'team', 'USER', 'bob'),
    policy('alice', 'daemon', 'SERVICE_PRINCIPAL', 'app-1'),
  ];
}

const ISSUERS_OF = (policies: readonly { id: string; issuer: string | null }[]) =>
  Object.fromEntries(policies.map((p) => [p.id, p.issuer]));

describe('migration 2 on SQLite, through the gateway start', () => {
  let dir: TempDir;
  let file: string;

  beforeEach(async () => {
    dir = await tempDir('cg-principals-migration-');
    file = dir.file('v1.db');
    const db = new Database(file);
    for (const statement of version1(SQLITE_DIALECT.types)) db.exec(statement);
    db.close();
  });
  afterEach(async () => {
    await dir.cleanup();
  });

  async function start(issuers: string[]) {
    const logLines: string[] = [];
    const t = await startTestApp(
      { identity: { issuers: issuers.map((issuer) => ({ issuer, audience: 'api://x' })) } },
      { storeUrl: `sqlite:${file}`, logLines },
    );
    const policies = async (connection: string) =>
      ISSUERS_OF(
        (
          await t.admin(`query($c: ID!) { connection(providerId: "p1", id: $c) { accessPolicies { id issuer } } }`, {
            c: connection,
          })
        ).body.data.connection.accessPolicies,
      );
    const reviews = () =>
      logLines
        .map((l) => JSON.parse(l))
        .filter((l) => l.msg === 'store migration: an access policy needs an admin to review it');
    return { t, policies, reviews };
  }

  it('gives owner policies the issuer when exactly one is configured, and flags the service principal', async () => {
    const { t, policies, reviews } = await start([A]);
    try {
      expect(await policies('alice')).toEqual({ owner: A, team: null, daemon: null });
      expect(await policies('carol')).toEqual({ owner: A });
      expect(reviews().map((r) => [r.migration, r.provider, r.connection, r.policy])).toEqual([
        [2, 'p1', 'alice', 'daemon'],
      ]);
      expect(reviews()[0].review).toMatch(
        /SERVICE_PRINCIPAL policy: objectId now matches the service principal's own object id/,
      );
    } finally {
      await t.close();
    }
    // Applied once: a restart reviews nothing again.
    const again = await start([A, B]);
    try {
      expect(again.reviews()).toEqual([]);
      expect(await again.policies('carol')).toEqual({ owner: A });
    } finally {
      await again.t.close();
    }
  });

  it('leaves owner policies issuer-less and logs each one when several issuers are configured', async () => {
    const { t, policies, reviews } = await start([A, B]);
    try {
      expect(await policies('alice')).toEqual({ owner: null, team: null, daemon: null });
      expect(await policies('carol')).toEqual({ owner: null });
      const found = reviews();
      expect(found.map((r) => [r.connection, r.policy])).toEqual([
        ['alice', 'owner'],
        ['carol', 'owner'],
        ['alice', 'daemon'],
      ]);
      expect(found[0].review).toMatch(/owner policy left without an issuer \(2 trusted issuers configured\)/);
    } finally {
      await t.close();
    }
  });
});

describe.skipIf(!hasPg)('migration 2 on PostgreSQL', () => {
  let pg: PgSchema;

  beforeEach(async () => {
    pg = await freshPgSchema('cg_principals_migration');
    await withPgClient(async (c) => {
      await c.query(`SET search_path TO "${pg.schema}"`);
      for (const statement of version1(POSTGRES_DIALECT.types)) await c.query(statement);
    }, pg.url);
  });
  afterEach(async () => {
    await pg.drop();
  });

  async function reopen(issuers: string[]) {
    const findings: MigrationFinding[] = [];
    const store = await openStore(pg.url, {
      pgSchema: pg.schema,
      migration: { issuers, review: (f) => findings.push(f) },
    });
    const [alice = [], carol = []] = await store.listAccessPolicies([
      { providerId: 'p1', connectionId: 'alice' },
      { providerId: 'p1', connectionId: 'carol' },
    ]);
    await store.close();
    return {
      alice: ISSUERS_OF(alice),
      carol: ISSUERS_OF(carol),
      findings: findings.map((f) => `${f.connectionId}/${f.policyId}`),
    };
  }

  it('gives owner policies the only issuer', async () => {
    expect(await reopen([A])).toEqual({
      alice: { daemon: null, owner: A, team: null },
      carol: { owner: A },
      findings: ['alice/daemon'],
    });
    expect((await reopen([A])).findings).toEqual([]);
  });

  it('leaves them and reports each one with several issuers', async () => {
    expect(await reopen([A, B])).toEqual({
      alice: { daemon: null, owner: null, team: null },
      carol: { owner: null },
      findings: ['alice/owner', 'carol/owner', 'alice/daemon'],
    });
  });
});
