/**
 * Real servers that misbehave, driven through the real gateway (docs/design.md "The runtime step"): an
 * authorization server that hangs, fails, rate-limits, answers garbage, resets connections, goes
 * down, or leaves `expires_in` out; and a PostgreSQL of our own stopped and started under traffic.
 *
 * Timeline of one provider fault, in the gateway's view of the access token (expiry E, refresh skew
 * 4 s): fresh until E-4 (served from the cache, the provider is not asked), refreshed before use
 * from E-4 to E (a failed refresh still serves the valid token), past E a refresh is needed and its
 * failure reaches the caller as PROVIDER_UNAVAILABLE.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consentOverHttp, FAULT_RETRY_AFTER_SECONDS, type AuthServerFault } from './support/authServer.js';
import { confirmAsOwner } from './support/consent.js';
import { openStore } from '../src/store/open.js';
import type { ConnectionRecord } from '../src/domain/model.js';
import type { ChangeEvent } from '../src/store/types.js';
import { startStage, type Stage } from './support/federation.js';
import { postgresBinDir, startPrivatePostgres, type PrivatePostgres } from './support/privatePg.js';

const ACCESS_TOKEN_TTL_SECONDS = 6;
const REFRESH_SKEW_SECONDS = 4;
const OAUTH_TIMEOUT_MS = 1000;
/** A provider answer that comes after the caller stopped waiting (but within the renewal's own deadline). */
const SLOW_ANSWER_MS = 2000;
/** The machine is shared and busy: a failure counts as fast when it comes within the timeout plus this. */
const LATENCY_MARGIN_MS = 2500;

const TOKEN_INFO = `{ githubTokenInfo { subject } }`;
const GITHUB = { providerId: 'github-01', connectionId: 'alice' } as const;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sleepUntil = (epochMs: number) => sleep(Math.max(0, epochMs - Date.now()));

async function timed<T>(run: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await run();
  return { result, ms: performance.now() - started };
}

const FAULTS: readonly { name: string; fault: AuthServerFault | 'down'; retryAfterSeconds?: number }[] = [
  { name: 'hangs (no answer at all)', fault: 'hang' },
  { name: 'answers HTTP 500', fault: 'http500' },
  { name: 'answers HTTP 429 with Retry-After', fault: 'http429', retryAfterSeconds: FAULT_RETRY_AFTER_SECONDS },
  { name: 'answers an HTML page with HTTP 200', fault: 'garbage' },
  { name: 'resets the connection', fault: 'reset' },
  { name: 'is down (connection refused)', fault: 'down' },
];

interface FaultStage {
  readonly s: Stage;
  readonly alice: string;
  stored(): Promise<ConnectionRecord>;
  status(): Promise<{ status: string; error: unknown }>;
  /** One federated query; `authorization` is what the github subgraph received, if it was called. */
  query(): Promise<{ ms: number; body: any; authorization: string | null | undefined }>;
  tokenEndpoint(): Promise<{ ms: number; status: number; body: any; retryAfter: string | null }>;
  /** Waits, if needed, until the cycle can start right after a successful refresh. */
  justRefreshed(): Promise<void>;
}

/** A stage whose user alice has consented to github-01; torn down after the enclosing describe. */
function useFaultStage(proactiveRefresh: boolean): FaultStage {
  let s: Stage;
  let alice: string;
  beforeAll(async () => {
    s = await startStage({
      accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS,
      slowFaultDelayMs: SLOW_ANSWER_MS,
      config: {
        oauth: { timeoutMs: OAUTH_TIMEOUT_MS },
        cache: { refreshSkewSeconds: REFRESH_SKEW_SECONDS, proactiveRefresh },
      },
    });
    alice = await s.jwtFor('alice');
    const first = await s.query(TOKEN_INFO, alice);
    expect(first.body.errors?.[0]?.extensions?.code).toBe('CONNECTION_NOT_CONNECTED');
    const done = await consentOverHttp(first.body.errors![0].extensions.loginUrl, { login: 'alice' });
    await confirmAsOwner(s.t.url, done, alice);
  }, 60_000);
  afterAll(async () => {
    s?.authGithub.setFault('none');
    await s?.authGithub.resume();
    await s?.close();
  });

  const stage: FaultStage = {
    get s() {
      return s;
    },
    get alice() {
      return alice;
    },
    stored: async () => (await s.t.app.store.getConnection(GITHUB))!,
    async status() {
      const res = await s.t.admin(
        `{ connection(providerId: "github-01", id: "alice") { status error { code message } } }`,
      );
      return res.body.data.connection;
    },
    async query() {
      s.github.seen.length = 0;
      const { result, ms } = await timed(() => s.query(TOKEN_INFO, alice));
      return { ms, body: result.body, authorization: s.github.seen.at(-1)?.authorization };
    },
    async tokenEndpoint() {
      const { result, ms } = await timed(() =>
        fetch(`${s.t.url}/tokens/github-01/alice`, { headers: { authorization: `Bearer ${alice}` } }),
      );
      return { ms, status: result.status, body: await result.json(), retryAfter: result.headers.get('retry-after') };
    },
    async justRefreshed() {
      const before = await stage.stored();
      if (before.lastRefreshedAt !== null && Date.now() - before.lastRefreshedAt.getTime() < 1000) return;
      await sleepUntil(before.tokenExpiresAt!.getTime() + 300);
      s.authGithub.setFault('none');
      await s.authGithub.resume();
      const res = await stage.query();
      expect(res.body.errors).toBeUndefined();
    },
  };
  return stage;
}

/** One fault from start to recovery; see the timeline at the top. */
async function faultCycle(
  h: FaultStage,
  fault: AuthServerFault | 'down',
  retryAfterSeconds: number | undefined,
  proactive: boolean,
): Promise<void> {
  const { s } = h;
  await h.justRefreshed();
  if (fault === 'down') await s.authGithub.suspend();
  else s.authGithub.setFault(fault);
  s.authGithub.resetCounts();
  const before = await h.stored();
  const expiresAt = before.tokenExpiresAt!.getTime();

  // (a) A fresh token comes from the cache: no error (and, without proactive refresh, no provider call).
  const fresh = await h.query();
  expect(fresh.body.errors).toBeUndefined();
  const validToken = fresh.authorization;
  expect(validToken).toMatch(/^Bearer /);
  if (!proactive) expect(s.authGithub.counts.token).toBe(0);

  // (a) Inside the refresh skew the gateway tries to refresh, fails, and still serves the valid token.
  await sleepUntil(expiresAt - 2500);
  const skew = await h.query();
  expect(skew.body.errors).toBeUndefined();
  expect(skew.authorization).toBe(validToken);
  expect(skew.ms).toBeLessThan(OAUTH_TIMEOUT_MS + LATENCY_MARGIN_MS);
  if (fault !== 'down') expect(s.authGithub.counts.token).toBeGreaterThanOrEqual(1);

  // (b) Past expiry a refresh is needed: a fast, coded failure; the connection and its tokens stay as they were.
  await sleepUntil(expiresAt + 300);
  const expired = await h.query();
  expect(expired.ms).toBeLessThan(OAUTH_TIMEOUT_MS + LATENCY_MARGIN_MS);
  expect(expired.body.data).toEqual({ githubTokenInfo: null });
  expect(expired.body.errors).toHaveLength(1);
  const [error] = expired.body.errors;
  expect(error.extensions).toEqual({
    code: 'PROVIDER_UNAVAILABLE',
    serviceName: 'github',
    ...(retryAfterSeconds !== undefined && { retryAfterSeconds }),
  });
  expect(error.message).not.toContain(validToken!.slice('Bearer '.length));
  expect(expired.authorization).toBeUndefined();

  const endpoint = await h.tokenEndpoint();
  expect(endpoint.ms).toBeLessThan(OAUTH_TIMEOUT_MS + LATENCY_MARGIN_MS);
  expect(endpoint.status).toBe(503);
  expect(endpoint.body).toEqual({
    error: 'PROVIDER_UNAVAILABLE',
    message: expect.any(String),
    ...(retryAfterSeconds !== undefined && { retryAfterSeconds }),
  });
  expect(endpoint.retryAfter).toBe(retryAfterSeconds === undefined ? null : String(retryAfterSeconds));

  expect(await h.status()).toEqual({ status: 'CONNECTED', error: null });
  const after = await h.stored();
  expect(after.tokens).toBe(before.tokens);
  expect(after.tokenGeneration).toBe(before.tokenGeneration);
  expect(after.state).toEqual({ status: 'CONNECTED' });

  // (c) The fault clears: the next query refreshes with the untouched refresh token.
  if (fault === 'down') await s.authGithub.resume();
  else s.authGithub.setFault('none');
  s.authGithub.resetCounts();
  const recovered = await h.query();
  expect(recovered.body.errors).toBeUndefined();
  expect(recovered.body.data).toEqual({ githubTokenInfo: { subject: 'alice' } });
  expect(recovered.authorization).toMatch(/^Bearer /);
  expect(recovered.authorization).not.toBe(validToken);
  if (proactive) expect(s.authGithub.counts.refresh).toBeGreaterThanOrEqual(1);
  else expect(s.authGithub.counts.refresh).toBe(1);
  expect((await h.stored()).tokenGeneration).toBeGreaterThan(before.tokenGeneration);
  expect(await h.status()).toEqual({ status: 'CONNECTED', error: null });
}

describe('authorization server faults on the request path (proactive refresh off)', () => {
  const h = useFaultStage(false);

  it.each(FAULTS)(
    'provider $name: valid tokens keep being served, refresh fails fast without harm, recovery needs no restart',
    ({ fault, retryAfterSeconds }) => faultCycle(h, fault, retryAfterSeconds, false),
    30_000,
  );

  it('reports a forced refresh (testConnection) that fails as PROVIDER_UNAVAILABLE and keeps the connection CONNECTED', async () => {
    await h.justRefreshed();
    const before = await h.stored();
    h.s.authGithub.setFault('http500');
    try {
      const res = await h.s.t.admin(
        `mutation { testConnection(providerId: "github-01", connectionId: "alice") { ok status error { code message } } }`,
      );
      expect(res.body.data.testConnection).toEqual({
        ok: false,
        status: 'CONNECTED',
        error: { code: 'PROVIDER_UNAVAILABLE', message: 'identity provider answered HTTP 500' },
      });
      expect((await h.stored()).tokens).toBe(before.tokens);
    } finally {
      h.s.authGithub.setFault('none');
    }
  });

  it('stores a refresh the provider answers after the caller gave up, so a rotating refresh token is not lost', async () => {
    await h.justRefreshed();
    const before = await h.stored();
    h.s.authGithub.setFault('slow');
    try {
      const { result: res, ms } = await timed(() =>
        h.s.t.admin(
          `mutation { testConnection(providerId: "github-01", connectionId: "alice") { ok status error { code message } } }`,
        ),
      );
      expect(res.body.data.testConnection).toEqual({
        ok: false,
        status: 'CONNECTED',
        error: {
          code: 'PROVIDER_UNAVAILABLE',
          message: `identity provider did not answer within ${OAUTH_TIMEOUT_MS} ms`,
        },
      });
      expect(ms).toBeLessThan(OAUTH_TIMEOUT_MS + LATENCY_MARGIN_MS);
      // The renewal goes on and stores the rotated tokens when the late answer arrives.
      const deadline = Date.now() + SLOW_ANSWER_MS + LATENCY_MARGIN_MS;
      while ((await h.stored()).tokenGeneration === before.tokenGeneration && Date.now() < deadline) await sleep(100);
      expect((await h.stored()).tokenGeneration).toBe(before.tokenGeneration + 1);
    } finally {
      h.s.authGithub.setFault('none');
    }
    // oidc-provider revokes a grant whose rotated-out refresh token is reused: this works only because none was.
    const again = await h.s.t.admin(
      `mutation { testConnection(providerId: "github-01", connectionId: "alice") { ok status } }`,
    );
    expect(again.body.data.testConnection).toEqual({ ok: true, status: 'CONNECTED' });
  });

  it("stores a token response without expires_in with its JWT access token's own exp, then refreshes normally", async () => {
    h.s.authGithub.setFault('noExpiresIn');
    try {
      const refreshedAt = Date.now();
      const res = await h.s.t.admin(
        `mutation { testConnection(providerId: "github-01", connectionId: "alice") { ok status tokenExpiresAt error { code } } }`,
      );
      expect(res.body.data.testConnection).toMatchObject({ ok: true, status: 'CONNECTED', error: null });
      const expiresAt = Date.parse(res.body.data.testConnection.tokenExpiresAt);
      // Not the catalog's assumed hour: the token says when it expires (opaque tokens: test/catalogQuirks.test.ts, Salesforce).
      expect(expiresAt).toBeGreaterThan(refreshedAt);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + ACCESS_TOKEN_TTL_SECONDS * 1000);
      expect((await h.stored()).tokenExpiresAt!.getTime()).toBe(expiresAt);

      // The token endpoint reports the same expiry, and the token works.
      const endpoint = await h.tokenEndpoint();
      expect(endpoint.status).toBe(200);
      expect(endpoint.body.expires_at).toBe(Math.floor(expiresAt / 1000));
      expect((await h.query()).body.errors).toBeUndefined();
    } finally {
      h.s.authGithub.setFault('none');
    }
    // Once the provider sends expires_in again, the next refresh stores the real lifetime.
    const res = await h.s.t.admin(
      `mutation { testConnection(providerId: "github-01", connectionId: "alice") { ok tokenExpiresAt } }`,
    );
    expect(res.body.data.testConnection.ok).toBe(true);
    expect(Date.parse(res.body.data.testConnection.tokenExpiresAt) - Date.now()).toBeLessThanOrEqual(
      ACCESS_TOKEN_TTL_SECONDS * 1000,
    );
  });
});

describe('authorization server faults with proactive refresh on (background renewals fail too)', () => {
  const h = useFaultStage(true);

  it.each(FAULTS.filter((f) => f.fault === 'http500' || f.fault === 'hang'))(
    'provider $name: valid tokens keep being served, refresh fails fast without harm, recovery needs no restart',
    ({ fault, retryAfterSeconds }) => faultCycle(h, fault, retryAfterSeconds, true),
    30_000,
  );
});

const hasPostgres = postgresBinDir() !== null;
if (!hasPostgres) {
  if (process.env['CI'] === 'true')
    throw new Error(
      'PostgreSQL binaries (initdb, postgres) are missing; with CI=true the PostgreSQL restart test must run',
    );
  console.warn(
    '[notice] no PostgreSQL binaries under /usr/lib/postgresql (or PG_BIN_DIR): skipping the PostgreSQL restart test',
  );
}

describe.runIf(hasPostgres)('PostgreSQL stopped and started under traffic', () => {
  let db: PrivatePostgres;
  let s: Stage;
  let alice: string;

  beforeAll(async () => {
    db = (await startPrivatePostgres())!;
    s = await startStage({ accessTokenTtlSeconds: 120, storeUrl: db.url });
    alice = await s.jwtFor('alice');
    const first = await s.query(TOKEN_INFO, alice);
    const done = await consentOverHttp(first.body.errors![0].extensions.loginUrl, { login: 'alice' });
    await confirmAsOwner(s.t.url, done, alice);
  }, 90_000);

  afterAll(async () => {
    await s?.close();
    await db?.destroy();
  });

  async function readyz(): Promise<number> {
    const res = await fetch(`${s.t.url}/readyz`, { signal: AbortSignal.timeout(10_000) });
    await res.body?.cancel();
    return res.status;
  }

  it('serves cached tokens while the database is down, fails uncached paths fast with a code, and recovers without a gateway restart', async () => {
    expect(await readyz()).toBe(200);
    // Steady traffic from alice, whose token is cached from here on.
    const outcomes: { at: number; ms: number; ok: boolean; codes: string[] }[] = [];
    let traffic = true;
    const send = async () => {
      while (traffic) {
        const started = performance.now();
        const res = await s.query(TOKEN_INFO, alice).catch(() => null);
        const codes = (res?.body.errors ?? []).map((e: any) => String(e.extensions?.code));
        outcomes.push({
          at: Date.now(),
          ms: performance.now() - started,
          ok: res !== null && codes.length === 0,
          codes,
        });
        await sleep(50);
      }
    };
    const sender = send();
    // Changes from other replicas arrive over the store's LISTEN session; it must come back too.
    const changes: (ChangeEvent | null)[] = [];
    const unsubscribe = s.t.app.store.onChange((e) => void changes.push(e));
    await sleep(500);

    await db.stop();
    const downAt = Date.now();
    expect(await readyz()).toBe(503);

    // Uncached paths need the store: a new user, the admin API, the token endpoint for bob.
    const bob = await s.jwtFor('bob');
    const uncached = await timed(() => s.query(TOKEN_INFO, bob));
    expect(uncached.ms).toBeLessThan(8000);
    expect(uncached.result.status).toBe(200);
    // The token path says what failed, with a stable code (never an unmapped 500); the admin API does not.
    expect(uncached.result.body.errors!.map((e: any) => e.extensions.code)).toEqual(['STORE_UNAVAILABLE']);
    expect(uncached.result.body.errors![0].message).toBe('the credential store is unavailable; retry shortly');

    const endpoint = await timed(() =>
      fetch(`${s.t.url}/tokens/github-01/bob`, { headers: { authorization: `Bearer ${bob}` } }),
    );
    expect(endpoint.ms).toBeLessThan(8000);
    expect(endpoint.result.status).toBe(503);
    expect(await endpoint.result.json()).toEqual({
      error: 'STORE_UNAVAILABLE',
      message: 'the credential store is unavailable; retry shortly',
    });

    const admin = await timed(() => s.t.admin(`{ connection(providerId: "github-01", id: "alice") { status } }`));
    expect(admin.ms).toBeLessThan(8000);
    expect(admin.result.body.errors![0].extensions.code).toBe('INTERNAL_SERVER_ERROR');

    await sleep(1000);
    const whileDown = outcomes.filter((o) => o.at > downAt);
    expect(whileDown.length).toBeGreaterThan(3);
    expect(whileDown.every((o) => o.ok)).toBe(true);

    const changesWhileUp = changes.length;
    await db.start();
    const upAt = Date.now();
    // The pool reconnects on demand: readiness and uncached paths come back on their own.
    let ready = 0;
    for (let i = 0; i < 50 && ready !== 200; i++) {
      ready = await readyz();
      if (ready !== 200) await sleep(200);
    }
    expect(ready).toBe(200);
    const again = await s.query(TOKEN_INFO, bob);
    expect(again.body.errors!.map((e: any) => e.extensions.code)).toEqual(['CONNECTION_NOT_CONNECTED']);
    const adminAgain = await s.t.admin(`{ connection(providerId: "github-01", id: "alice") { status } }`);
    expect(adminAgain.body.data.connection.status).toBe('CONNECTED');
    const forced = await s.t.admin(
      `mutation { testConnection(providerId: "github-01", connectionId: "alice") { ok status } }`,
    );
    expect(forced.body.data.testConnection).toEqual({ ok: true, status: 'CONNECTED' });

    // The listening session reconnected and said that changes may have been missed meanwhile...
    const resumed = () => changes.slice(changesWhileUp).includes(null);
    for (let i = 0; i < 150 && !resumed(); i++) await sleep(100);
    expect(resumed(), `change events seen: ${JSON.stringify(changes)}; before the stop: ${changesWhileUp}`).toBe(true);
    // ...and a change made by another replica reaches this one again.
    const replica = await openStore(db.url);
    try {
      await replica.publishChange({ providerId: 'github-01', connectionId: 'from-replica' });
      const arrived = () => changes.some((e) => e?.connectionId === 'from-replica');
      for (let i = 0; i < 100 && !arrived(); i++) await sleep(100);
      expect(arrived(), `change events seen: ${JSON.stringify(changes)}; before the stop: ${changesWhileUp}`).toBe(
        true,
      );
    } finally {
      await replica.close();
      unsubscribe();
    }

    await sleep(500);
    traffic = false;
    await sender;
    const afterUp = outcomes.filter((o) => o.at > upAt);
    expect(afterUp.length).toBeGreaterThan(0);
    expect(afterUp.every((o) => o.ok)).toBe(true);
    expect(outcomes.every((o) => o.ms < 8000)).toBe(true);
  }, 90_000);
});
