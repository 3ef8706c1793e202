/**
 * SIGKILL while connections refresh with rotating refresh tokens, then restart: no connection is
 * lost (docs/design.md "The runtime step"). A short run per store here; `npm run crash -- --kills 60` runs the
 * same harness (test/support/crash.ts) with as many kills as you like.
 *
 * The provider keeps a rotated-out refresh token usable for a while, as Okta (grace period,
 * 30 s by default), Auth0 (rotation overlap period) and Cognito (RetryGracePeriodSeconds) do: a
 * crash after the provider rotated the token but before the gateway stored the new one cannot be
 * undone by the gateway (the only copy of the new token died with it, or never arrived), so the
 * gateway's retry with the token it kept must be accepted. The last test shows what happens with a
 * provider that forgives nothing (oidc-provider's own rule): that window costs the connection.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GatewayProcess, runCrashTest } from './support/crash.js';
import { freePort } from './support/freePort.js';
import { requirePgOrSkip } from './support/pg.js';
import { tempDir } from './support/tmp.js';

const KILLS_PER_STORE = 8;
const hasPg = await requirePgOrSkip('the crash test on PostgreSQL');
const log = (line: string) => console.log(line);

describe('SIGKILL under refresh traffic, then restart', () => {
  it(`loses no connection on SQLite (${KILLS_PER_STORE} kills)`, async () => {
    const report = await runCrashTest({ store: 'sqlite', kills: KILLS_PER_STORE, log });
    expect(report.killsTotal).toBe(KILLS_PER_STORE);
    expect(report.kills['mid-refresh']).toBeGreaterThanOrEqual(2);
    expect(report.refreshes).toBeGreaterThan(report.connections);
    expect(report.lost).toEqual([]);
  }, 240_000);

  it.runIf(hasPg)(
    `loses no connection on PostgreSQL (${KILLS_PER_STORE} kills)`,
    async () => {
      const report = await runCrashTest({ store: 'postgres', kills: KILLS_PER_STORE, log });
      expect(report.killsTotal).toBe(KILLS_PER_STORE);
      expect(report.kills['mid-refresh']).toBeGreaterThanOrEqual(2);
      expect(report.refreshes).toBeGreaterThan(report.connections);
      expect(report.lost).toEqual([]);
    },
    240_000,
  );

  it('refuses a run without any kind of kill before starting anything', async () => {
    await expect(runCrashTest({ store: 'sqlite', kills: 1, killKinds: [] })).rejects.toThrow(
      new TypeError('killKinds must name at least one kind of kill'),
    );
  });

  it('loses the connections whose refresh a kill cut off when the provider revokes on any reuse (no grace)', async () => {
    const report = await runCrashTest({
      store: 'sqlite',
      kills: 1,
      connections: 2,
      killKinds: ['mid-refresh'],
      reuseIntervalSeconds: 0,
      log,
    });
    expect(report.kills['mid-refresh']).toBe(1);
    expect(report.lost.length).toBeGreaterThanOrEqual(1);
  }, 120_000);
});

describe('a restart under traffic', () => {
  it('answers requests that arrive while the gateway starts with 503 and Retry-After instead of leaving them unanswered', async () => {
    const dir = await tempDir('cg-starting-');
    const configFile = dir.file('gateway.yaml');
    writeFileSync(configFile, 'log:\n  level: warn\n');
    const port = await freePort();
    const child = GatewayProcess.spawn(configFile, {
      CG_SERVER_PORT: String(port),
      CG_STORE_URL: `sqlite:${dir.file('credentials.db')}`,
      CG_KEYS_KEY: `start:${randomBytes(32).toString('base64')}`,
      CG_ADMIN_API_KEYS: `cgk_${randomBytes(16).toString('hex')}`,
    });
    try {
      const answers: { status: number; ms: number; retryAfter: string | null }[] = [];
      const deadline = Date.now() + 90_000;
      while (answers.at(-1)?.status !== 200 && Date.now() < deadline && child.alive) {
        const started = performance.now();
        const answer = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(5_000) }).then(
          async (res) => ({
            status: res.status,
            ms: performance.now() - started,
            retryAfter: res.headers.get('retry-after'),
            body: await res.json(),
          }),
          (e: Error) =>
            e.name === 'TimeoutError'
              ? { status: -1, ms: performance.now() - started, retryAfter: null, body: null }
              : null,
        );
        if (answer === null)
          await new Promise((r) => setTimeout(r, 10)); // not listening yet
        else {
          answers.push(answer);
          if (answer.status === 503)
            expect(answer.body).toEqual({ status: 'starting', message: 'the gateway is starting; retry shortly' });
        }
      }
      expect(answers.at(-1)?.status).toBe(200);
      // Before the routes exist every request gets its 503 at once; none waits for an answer that never comes.
      for (const a of answers.slice(0, -1)) expect(a).toMatchObject({ status: 503, retryAfter: '1' });
      console.log(`[starting] ${answers.length - 1} requests answered 503 while the gateway started`);
    } finally {
      await child.kill();
      await dir.cleanup();
    }
  }, 120_000);
});
