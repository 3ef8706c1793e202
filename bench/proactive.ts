/**
 * `npm run bench:proactive`: proactive refresh under steady load. The real gateway (SQLite store)
 * in front of the two sample subgraphs and two authorization servers issuing ten-second access
 * tokens; users that consented once; steady traffic for five minutes. Prints requests, refreshes,
 * and how many refreshes requests had to wait for (target: 0, every renewal in the background;
 * measured by the token source's `providerCall` events and their origin).
 *
 * Environment: PROACTIVE_BENCH_SECONDS (default 300), PROACTIVE_BENCH_USERS (10),
 * PROACTIVE_BENCH_WORKERS (8): concurrent back-to-back clients.
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { validateConfig } from '../src/config/schema.js';
import { createLogger } from '../src/log.js';
import { startApp } from '../src/server/wire.js';
import { NO_TOKEN_EVENTS, type TokenEvents } from '../src/tokens/events.js';
import { ADMIN_KEY } from '../test/support/app.js';
import { consentToAll, createOidcProviders, startBackends } from '../test/support/backends.js';
import { graphqlPoster } from '../test/support/graphqlPool.js';

process.env['APOLLO_TELEMETRY_DISABLED'] ??= '1';

const ACCESS_TOKEN_TTL_SECONDS = 10;
const REFRESH_SKEW_SECONDS = 2;
const PROGRESS_INTERVAL_MS = 30_000;
const TOKEN_INFO = `{ githubTokenInfo { subject } graphTokenInfo { subject } }`;

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

const DURATION_MS = positiveInt('PROACTIVE_BENCH_SECONDS', 300) * 1000;
const USERS = positiveInt('PROACTIVE_BENCH_USERS', 10);
const WORKERS = positiveInt('PROACTIVE_BENCH_WORKERS', 8);

interface Counters {
  requests: number;
  failed: number;
  backgroundCalls: number;
  /** Provider calls a request waited on (it started them or joined them). */
  requestCalls: number;
  failedCalls: number;
  readonly latenciesMs: number[];
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const counters: Counters = {
    requests: 0,
    failed: 0,
    backgroundCalls: 0,
    requestCalls: 0,
    failedCalls: 0,
    latenciesMs: [],
  };
  const events: TokenEvents = {
    ...NO_TOKEN_EVENTS,
    providerCall: (_key, _kind, outcome, _ms, origin) => {
      if (origin === 'request') counters.requestCalls++;
      else counters.backgroundCalls++;
      if (outcome !== 'success') counters.failedCalls++;
    },
  };

  const b = await startBackends({ accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS });
  const { authGithub, authGraph, idp, dir } = b;
  const app = await startApp(
    validateConfig({
      server: { host: '127.0.0.1', port: 0, exploration: false },
      supergraph: b.supergraphFile,
      store: { url: `sqlite:${dir.file('credentials.db')}` },
      keys: { keyringFile: dir.file('keyring.json') },
      identity: { issuers: [idp.issuerConfig()] },
      admin: { apiKeys: [ADMIN_KEY] },
      oauth: { allowInsecureHttp: true, allowPrivateNetworks: true },
      cache: { refreshSkewSeconds: REFRESH_SKEW_SECONDS, proactiveRefresh: true },
      log: { level: 'warn' },
    }),
    { logger: createLogger('warn', { write: () => {} }), tokenEvents: events },
  );
  const pool = new Pool(app.url, { connections: WORKERS });
  const post = graphqlPoster(pool);

  try {
    await createOidcProviders(
      (query, variables) => post('/admin/graphql', query, { 'x-api-key': ADMIN_KEY }, variables),
      b,
    );
    const jwts: string[] = [];
    for (let u = 0; u < USERS; u++) {
      const jwt = await idp.sign({ sub: `user-${u}` }, { expiresIn: Math.ceil(DURATION_MS / 1000) + 3_600 });
      await consentToAll(
        (await post('/graphql', TOKEN_INFO, { authorization: `Bearer ${jwt}` })).errors,
        `user-${u}`,
        jwt,
      );
      jwts.push(jwt);
    }
    authGithub.resetCounts();
    authGraph.resetCounts();
    process.stdout.write(
      `proactive refresh bench: ${DURATION_MS / 1000} s, ${ACCESS_TOKEN_TTL_SECONDS} s tokens, skew ${REFRESH_SKEW_SECONDS} s, ` +
        `${USERS} users x 2 connections, ${WORKERS} clients\n`,
    );

    const refreshes = () => authGithub.counts.refresh + authGraph.counts.refresh;
    const started = performance.now();
    const end = started + DURATION_MS;
    const progress = setInterval(() => {
      const s = Math.round((performance.now() - started) / 1000);
      process.stdout.write(
        `  ${s} s: ${counters.requests} requests, ${refreshes()} refreshes, ${counters.requestCalls} on a request's path\n`,
      );
    }, PROGRESS_INTERVAL_MS);
    await Promise.all(
      Array.from({ length: WORKERS }, async (_, w) => {
        for (let i = w; performance.now() < end; i++) {
          const t0 = performance.now();
          const body = await post('/graphql', TOKEN_INFO, { authorization: `Bearer ${jwts[i % jwts.length]!}` }).catch(
            () => ({ errors: [{}] }),
          );
          counters.latenciesMs.push(performance.now() - t0);
          counters.requests++;
          if (body.errors) counters.failed++;
        }
      }),
    );
    clearInterval(progress);
    const elapsedS = (performance.now() - started) / 1000;
    const sorted = [...counters.latenciesMs].sort((a, b) => a - b);
    const lifetimes = elapsedS / ACCESS_TOKEN_TTL_SECONDS;
    process.stdout.write(
      [
        '',
        `requests:                     ${counters.requests} (${(counters.requests / elapsedS).toFixed(0)}/s), failed ${counters.failed}`,
        `latency ms:                   p50 ${percentile(sorted, 50).toFixed(1)}, p99 ${percentile(sorted, 99).toFixed(1)}, max ${(sorted.at(-1) ?? Number.NaN).toFixed(1)}`,
        `refreshes (authorization servers): ${refreshes()} for ${USERS * 2} connections over ${lifetimes.toFixed(1)} token lifetimes`,
        `provider calls in the background: ${counters.backgroundCalls} (failed ${counters.failedCalls})`,
        // Several requests may wait on one such call: 0 calls means no request waited.
        `refreshes a request waited on: ${counters.requestCalls} (target 0: ${counters.requestCalls === 0 ? 'met, no request waited' : 'MISSED'})`,
        '',
      ].join('\n'),
    );
    if (counters.requestCalls > 0 || counters.failed > 0) process.exitCode = 1;
  } finally {
    await pool.close();
    await app.close();
    await b.close();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:proactive failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
