/**
 * A renewal that the store gets in the way of (docs/design.md "The runtime step"):
 * a token set the provider gave is never dropped because a write failed, a failed renewal serves
 * the still-valid token, and a refresh token rejected by the provider marks the connection ERROR
 * only if no consent landed in between.
 *
 * The provider is a real oidc-provider that rotates refresh tokens and revokes the grant when a
 * rotated-out one is used again: a token set lost after the provider's answer shows as
 * REAUTHORIZATION_REQUIRED on the next refresh. The store is the gateway's real one; faults are a
 * wrapper that fails some calls around it, or (PostgreSQL) a real session killed mid-write.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Envelope } from '../src/crypto/envelope.js';
import { openFileKeyring } from '../src/crypto/fileKeyring.js';
import { GatewayError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { OAuthClient } from '../src/oauth/client.js';
import type { Store } from '../src/store/types.js';
import type { ConnectionKey } from '../src/domain/ids.js';
import { TokenSource } from '../src/tokens/tokenSource.js';
import { openTokenSet } from '../src/tokens/tokenSet.js';
import { consentOverHttp } from './support/authServer.js';
import { startStage, type Stage } from './support/federation.js';
import { freshPgSchema, requirePgOrSkip, type PgSchema } from './support/pg.js';
import { pgSchemaUrl } from './support/replicas.js';
import { withOverrides } from './support/storeOverrides.js';

const GITHUB: ConnectionKey = Object.freeze({ providerId: 'github-01', connectionId: 'alice' });
const ACCESS_TOKEN_TTL_SECONDS = 60;
/** Longer than every retry of a failed write together (about 1.3 s). */
const CALLER_TIMEOUT_MS = 5_000;

const TEST_CONNECTION = `mutation { testConnection(providerId: "github-01", connectionId: "alice") { ok status error { code } } }`;

/** What SQLite says when another writer holds the file past the busy timeout. */
const busy = () => Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });

async function consentByAdminLink(s: Stage, login: string): Promise<void> {
  const link = await s.t.admin(
    `mutation($r: String!) { createLoginLink(providerId: "github-01", connectionId: "alice", postLoginRedirectUrl: $r) { url } }`,
    {
      r: `${s.t.url}/oauth/done`,
    },
  );
  const final = await consentOverHttp(link.body.data.createLoginLink.url, { login });
  expect(final.searchParams.get('status')).toBe('CONNECTED');
}

async function startAliceStage(storeUrl?: string): Promise<Stage> {
  const s = await startStage({
    accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS,
    config: { cache: { proactiveRefresh: false } },
    ...(storeUrl !== undefined && { storeUrl }),
  });
  const created = await s.t.admin(
    `mutation { createConnection(providerId: "github-01", input: { id: "alice" }) { id } }`,
  );
  expect(created.body.errors).toBeUndefined();
  await consentByAdminLink(s, 'alice');
  return s;
}

describe('renewals the store gets in the way of', () => {
  let s: Stage;
  let envelope: Envelope;

  beforeAll(async () => {
    s = await startAliceStage();
    envelope = new Envelope(await openFileKeyring(join(s.t.dir, 'keyring.json')));
  }, 60_000);

  afterAll(() => s?.close());

  /** The gateway's token source over its own store, as wrapped; renews whenever less than `skewMs` is left. */
  function sourceOver(store: Store, skewMs = 5_000): TokenSource {
    return new TokenSource({
      store,
      envelope,
      oauth: new OAuthClient({ timeoutMs: CALLER_TIMEOUT_MS, allowInsecureHttp: true, allowPrivateNetworks: true }),
      callerTimeoutMs: CALLER_TIMEOUT_MS,
      now: () => new Date(),
      logger: createLogger('error', { write: () => {} }),
      refreshSkewMs: skewMs,
      allowInsecureHttp: true,
    });
  }

  /** The real store, with writeTokens failing `failures` times first. */
  function failingWrites(failures: number): { store: Store; heal(): void; readonly attempts: number } {
    let left = failures;
    let attempts = 0;
    const real = s.t.app.store;
    const store = withOverrides(real, {
      writeTokens: (...args) => {
        attempts++;
        if (left-- > 0) return Promise.reject(busy());
        return real.writeTokens(...args);
      },
    });
    return {
      store,
      heal: () => {
        left = 0;
      },
      get attempts() {
        return attempts;
      },
    };
  }

  const stored = async () => (await s.t.app.store.getConnection(GITHUB))!;
  const storedAccessToken = async () => openTokenSet(envelope, GITHUB, (await stored()).tokens!).accessToken;

  it.each([1, 2])(
    'keeps a refreshed token set when the store fails its write %i time(s): the write is retried',
    async (failures) => {
      const before = await stored();
      const faulty = failingWrites(failures);
      s.authGithub.resetCounts();
      const token = await sourceOver(faulty.store).get(GITHUB, { forceRefresh: true });
      expect(s.authGithub.counts.refresh).toBe(1);
      expect(faulty.attempts).toBe(failures + 1);
      const after = await stored();
      expect(after.tokenGeneration).toBe(before.tokenGeneration + 1);
      expect(await storedAccessToken()).toBe(token.accessToken);
      // The stored refresh token is the live one: the provider revokes the grant on a rotated-out one.
      const again = await s.t.admin(TEST_CONNECTION);
      expect(again.body.data.testConnection).toEqual({ ok: true, status: 'CONNECTED', error: null });
    },
  );

  it('keeps a set the store would not take aside, serves the still-valid token meanwhile, and stores the set before calling the provider again', async () => {
    const before = await stored();
    const current = await storedAccessToken();
    const faulty = failingWrites(Number.POSITIVE_INFINITY);
    // The stored token is inside this source's refresh window (though still valid): every get renews it.
    const source = sourceOver(faulty.store, ACCESS_TOKEN_TTL_SECONDS * 1000);
    s.authGithub.resetCounts();
    const served = await source.get(GITHUB);
    expect(served.accessToken).toBe(current);
    expect(s.authGithub.counts.refresh).toBe(1);
    expect(faulty.attempts).toBeGreaterThan(1);
    expect((await stored()).tokenGeneration).toBe(before.tokenGeneration);

    // A forced renewal while the store still fails: a stable code, and still no second provider call
    // (it would spend the rotated-out refresh token, and the provider would revoke the grant).
    const forced = await source.get(GITHUB, { forceRefresh: true }).catch((e: unknown) => e);
    expect(forced).toBeInstanceOf(GatewayError);
    expect((forced as GatewayError).code).toBe('STORE_UNAVAILABLE');
    expect((forced as GatewayError).httpStatus).toBe(503);
    expect(s.authGithub.counts.refresh).toBe(1);

    faulty.heal();
    const writesBefore = faulty.attempts;
    const renewed = await source.get(GITHUB);
    expect(renewed.accessToken).not.toBe(current);
    // This source renews anything younger than a lifetime, so the provider is asked again, but only
    // once the kept set is stored: with its refresh token, the one the provider rotated to.
    expect(faulty.attempts).toBe(writesBefore + 2);
    expect(s.authGithub.counts.refresh).toBe(2);
    expect((await stored()).tokenGeneration).toBe(before.tokenGeneration + 2);
    expect(await storedAccessToken()).toBe(renewed.accessToken);
    const again = await s.t.admin(TEST_CONNECTION);
    expect(again.body.data.testConnection).toEqual({ ok: true, status: 'CONNECTED', error: null });
  }, 20_000);

  it('stores a kept-aside set in the background once the store takes writes again, without waiting for a renewal', async () => {
    const before = await stored();
    const faulty = failingWrites(Number.POSITIVE_INFINITY);
    const source = sourceOver(faulty.store, ACCESS_TOKEN_TTL_SECONDS * 1000);
    s.authGithub.resetCounts();
    await source.get(GITHUB);
    expect(s.authGithub.counts.refresh).toBe(1);
    faulty.heal();
    // Nobody asks for the token again: the set must still reach the store (a crash would lose it in memory).
    const deadline = Date.now() + 15_000;
    while ((await stored()).tokenGeneration === before.tokenGeneration && Date.now() < deadline) await sleep(200);
    expect((await stored()).tokenGeneration).toBe(before.tokenGeneration + 1);
    expect(s.authGithub.counts.refresh).toBe(1);
    const again = await s.t.admin(TEST_CONNECTION);
    expect(again.body.data.testConnection).toEqual({ ok: true, status: 'CONNECTED', error: null });
  }, 30_000);

  it('maps a store that fails every read on the token path to STORE_UNAVAILABLE, never an unmapped error', async () => {
    const real = s.t.app.store;
    const down = withOverrides(real, { getConnection: () => Promise.reject(busy()) });
    const failure = await sourceOver(down)
      .get(GITHUB)
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(GatewayError);
    expect((failure as GatewayError).code).toBe('STORE_UNAVAILABLE');
    expect((failure as GatewayError).message).not.toContain('locked');
  });

  it('leaves a connection CONNECTED when a consent lands between a rejected refresh and marking it ERROR', async () => {
    const real = s.t.app.store;
    let consented = false;
    const consentFirst = async (): Promise<void> => {
      if (consented) return;
      consented = true;
      await consentByAdminLink(s, 'alice');
    };
    const store = withOverrides(real, {
      setConnectionState: async (...args) => {
        await consentFirst();
        return real.setConnectionState(...args);
      },
      setConnectionStateIfGeneration: async (...args) => {
        await consentFirst();
        return real.setConnectionStateIfGeneration(...args);
      },
    });
    // The provider forgets alice's grant: her stored refresh token now gets invalid_grant.
    expect(s.authGithub.revokeGrantsOf('alice')).toBeGreaterThan(0);
    const token = await sourceOver(store).get(GITHUB, { forceRefresh: true });
    expect(consented).toBe(true);
    const after = await stored();
    expect(after.state).toEqual({ status: 'CONNECTED' });
    expect(await storedAccessToken()).toBe(token.accessToken);
    const again = await s.t.admin(TEST_CONNECTION);
    expect(again.body.data.testConnection).toEqual({ ok: true, status: 'CONNECTED', error: null });
  }, 30_000);
});

const hasPg = await requirePgOrSkip('the PostgreSQL renewal tests');

describe.skipIf(!hasPg)('renewals on PostgreSQL', () => {
  let schema: PgSchema;
  let s: Stage;

  beforeAll(async () => {
    schema = await freshPgSchema('cg_renewal');
    s = await startAliceStage(pgSchemaUrl(schema));
  }, 60_000);

  afterAll(async () => {
    await s?.close();
    await schema?.drop();
  });

  it("keeps a refreshed token set when the session writing it is killed (pg_terminate_backend) after the provider's answer", async () => {
    const before = (await s.t.app.store.getConnection(GITHUB))!;
    const blocker = new pg.Client({ connectionString: schema.url });
    await blocker.connect();
    try {
      // Hold the connection's row: reads go on, the token write waits, and we kill the session waiting.
      await blocker.query('BEGIN');
      await blocker.query(
        `SELECT 1 FROM "${schema.schema}".connections WHERE provider_id = $1 AND id = $2 FOR UPDATE`,
        [GITHUB.providerId, GITHUB.connectionId],
      );
      s.authGithub.resetCounts();
      const tested = s.t.admin(TEST_CONNECTION);
      let killed = false;
      for (let i = 0; i < 200 && !killed; i++) {
        const { rows } = await blocker.query<{ pid: number }>(
          'SELECT pid FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))',
        );
        for (const { pid } of rows)
          killed = (await blocker.query('SELECT pg_terminate_backend($1) AS done', [pid])).rows[0].done || killed;
        if (!killed) await sleep(50);
      }
      expect(killed).toBe(true);
      expect(s.authGithub.counts.refresh).toBe(1);
      await blocker.query('ROLLBACK');
      const res = await tested;
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data.testConnection).toEqual({ ok: true, status: 'CONNECTED', error: null });
    } finally {
      await blocker.end();
    }
    expect((await s.t.app.store.getConnection(GITHUB))!.tokenGeneration).toBe(before.tokenGeneration + 1);
    // The stored refresh token is the one the provider rotated to.
    const again = await s.t.admin(TEST_CONNECTION);
    expect(again.body.data.testConnection).toEqual({ ok: true, status: 'CONNECTED', error: null });
  }, 30_000);
});
