/**
 * In-process micro-benchmarks of the credential side (no gateway HTTP in the way):
 *
 *   - `TokenResolver.resolve` answered from the token cache;
 *   - opening (decrypting) one stored token set alone, the crypto share of a store hit;
 *   - the same with the cache off: access policies and connection read from the store (at once)
 *     and the token set decrypted, on SQLite and on PostgreSQL (its own schema, dropped after);
 *   - one admin page over the GraphQL admin API: `credentialProviders(first: 50)` with each
 *     provider's connections and their access policies (HTTP, as an admin console would ask).
 *
 * Run alone: `npx tsx bench/micro.ts`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseEnvKeyring } from '../src/crypto/envKeyring.js';
import { Envelope } from '../src/crypto/envelope.js';
import { createConnection } from '../src/registry/connections.js';
import { createAccessPolicy } from '../src/registry/policies.js';
import { createProvider } from '../src/registry/providers.js';
import { openStore } from '../src/store/open.js';
import type { Store } from '../src/store/types.js';
import type { TokenResolver, TokenRequest } from '../src/tokens/resolver.js';
import { openTokenSet } from '../src/tokens/tokenSet.js';
import { startTestApp } from '../test/support/app.js';
import { freshPgSchema, pgAvailable, pgUrl, redactedPgUrl } from '../test/support/pg.js';
import { benchProviderInput, benchResolver, callerRequest, sealBenchTokenSet } from './benchResolver.js';
import { machineBusyMicros } from './cpuStat.js';
import { time, type Timing } from './timing.js';

const PAGE_PROVIDERS = 50;
const CONNECTIONS_PER_PROVIDER = 2;

export type { Timing };

export type Maybe<T> = ({ readonly ok: true } & T) | { readonly ok: false; readonly reason: string };

export interface MicroResults {
  /** µs */
  readonly resolverCacheHit: Timing;
  /** µs, `openTokenSet`: unwrap the data key, AES-256-GCM decrypt, parse */
  readonly decryptTokenSet: Timing;
  /** µs, cache off: store reads plus decryption */
  readonly resolverStoreHit: { readonly sqlite: Maybe<Timing>; readonly postgres: Maybe<Timing> };
  /** ms, one `credentialProviders(first: 50)` page with connections and policies over HTTP */
  readonly adminPage: {
    readonly sqlite: Maybe<Timing & { readonly storeQueriesPerPage: number }>;
    readonly postgres: Maybe<Timing & { readonly storeQueriesPerPage: number }>;
  };
  readonly adminPageShape: {
    readonly providers: number;
    readonly connections: number;
    readonly accessPolicies: number;
  };
  /** Share of the machine's CPU that other processes (PostgreSQL's server included) used meanwhile, %; null off Linux. */
  readonly otherCpuPercent: number | null;
}

/** The resolver over `store`, with one consented connection for alice. */
async function resolverFixture(
  store: Store,
  cacheEnabled: boolean,
): Promise<{ resolver: TokenResolver; request: TokenRequest; decrypt: () => unknown }> {
  const envelope = new Envelope(parseEnvKeyring(`bench:${randomBytes(32).toString('base64')}`));
  const { resolver, registry } = benchResolver(store, envelope, cacheEnabled);
  await createProvider(registry, benchProviderInput('github-01'));
  const key = { providerId: 'github-01', connectionId: 'alice' };
  await createConnection(registry, key.providerId, { id: key.connectionId });
  await createAccessPolicy(registry, key, { id: 'alice', kind: 'USER', objectId: 'alice' });
  const connection = (await store.getConnection(key))!;
  const { sealed, expiresAt } = sealBenchTokenSet(envelope, key);
  const written = await store.writeTokens(
    key,
    { tokens: sealed, tokenExpiresAt: expiresAt, lastRefreshedAt: new Date(), state: { status: 'CONNECTED' } },
    connection.tokenGeneration,
  );
  if (!written) throw new Error('could not store the benchmark token set');
  const request = callerRequest(key, 'alice');
  await resolver.resolve(request); // fails loudly here rather than inside the timed loop
  return { resolver, request, decrypt: () => openTokenSet(envelope, key, sealed) };
}

async function withSqlite<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'cg-micro-'));
  try {
    return await fn(`sqlite:${join(dir, 'credentials.db')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `fn` in a fresh schema of the benchmark database, dropped after; reason when unreachable. */
async function withPostgres<T>(fn: (schema: string) => Promise<T>): Promise<Maybe<T>> {
  if (!(await pgAvailable())) return { ok: false, reason: `PostgreSQL unreachable at ${redactedPgUrl()}` };
  const schema = await freshPgSchema('cg_bench');
  try {
    return { ok: true, ...(await fn(schema.schema)) };
  } finally {
    await schema.drop();
  }
}

async function storeHit(store: Store, warmup: number, iterations: number): Promise<Timing> {
  try {
    const { resolver, request } = await resolverFixture(store, false);
    return await time(() => resolver.resolve(request), warmup, iterations, 'us');
  } finally {
    await store.close();
  }
}

const ADMIN_PAGE = `query Page($first: Int!) {
  credentialProviders(first: $first) {
    items { id displayName grantType hasClientSecret version
      connections { items { id status tokenExpiresAt version accessPolicies { id kind objectId } } nextCursor } }
    nextCursor
  }
}`;

/** 50 providers, each with two connections and two policies per connection, then the page, timed. */
async function adminPage(
  storeUrl: string,
  warmup: number,
  iterations: number,
): Promise<Timing & { storeQueriesPerPage: number }> {
  const t = await startTestApp({ server: { exploration: false }, log: { level: 'silent' } }, { storeUrl });
  try {
    const admin = async (query: string, variables: Record<string, unknown>) => {
      const res = await t.admin(query, variables);
      if (res.status !== 200 || res.body.errors)
        throw new Error(`admin API: ${JSON.stringify(res.body.errors ?? res.status)}`);
      return res.body.data;
    };
    for (let p = 0; p < PAGE_PROVIDERS; p++) {
      const id = `provider-${String(p).padStart(3, '0')}`;
      await admin(
        `mutation($input: CreateCredentialProviderInput!) { createCredentialProvider(input: $input) { id } }`,
        {
          input: {
            id,
            identityProvider: 'oauth2',
            grantType: 'AUTHORIZATION_CODE',
            clientId: `client-${p}`,
            clientSecret: randomBytes(16).toString('base64url'),
            scopes: ['read'],
            parameters: [
              { name: 'authorizationUrl', value: 'http://127.0.0.1:1/authorize' },
              { name: 'tokenUrl', value: 'http://127.0.0.1:1/token' },
            ],
          },
        },
      );
      for (let c = 0; c < CONNECTIONS_PER_PROVIDER; c++) {
        const connectionId = `user-${c}`;
        await admin(
          `mutation($p: ID!, $input: CreateConnectionInput!) { createConnection(providerId: $p, input: $input) { id } }`,
          { p: id, input: { id: connectionId } },
        );
        await admin(
          `mutation($p: ID!, $c: ID!, $input: CreateAccessPolicyInput!) { createAccessPolicy(providerId: $p, connectionId: $c, input: $input) { id } }`,
          {
            p: id,
            c: connectionId,
            input: { id: 'owner', kind: 'USER', objectId: connectionId },
          },
        );
      }
    }
    const page = async () => {
      const data = await admin(ADMIN_PAGE, { first: PAGE_PROVIDERS });
      if (data.credentialProviders.items.length !== PAGE_PROVIDERS) throw new Error('admin page came back short');
    };
    for (let i = 0; i < warmup; i++) await page();
    const before = t.app.store.stats.queries;
    const timing = await time(page, 0, iterations, 'ms');
    const storeQueriesPerPage = (t.app.store.stats.queries - before) / iterations;
    return { ...timing, storeQueriesPerPage };
  } finally {
    await t.close();
  }
}

/** `fn`'s result, or why it failed (a benchmark that cannot run says so and the others go on). */
export const settle = async <T>(fn: () => Promise<T>): Promise<Maybe<T>> => {
  try {
    return { ok: true, ...(await fn()) };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
};

export async function runMicro(): Promise<MicroResults> {
  const [machine0, own0, wall0] = [machineBusyMicros(), process.cpuUsage(), performance.now()];
  const [cacheHit, decryptTokenSet] = await withSqlite(async (url) => {
    const store = await openStore(url);
    try {
      const { resolver, request, decrypt } = await resolverFixture(store, true);
      return [
        await time(() => resolver.resolve(request), 20_000, 200_000, 'us'),
        await time(async () => decrypt(), 2_000, 50_000, 'us'),
      ] as const;
    } finally {
      await store.close();
    }
  });
  const sqliteStore = await settle(() => withSqlite(async (url) => storeHit(await openStore(url), 2_000, 20_000)));
  const pgStore = await withPostgres(async (schema) =>
    storeHit(await openStore(pgUrl(), { pgSchema: schema }), 500, 5_000),
  ).catch((e: unknown): Maybe<Timing> => ({ ok: false, reason: String(e) }));
  const sqliteAdmin = await settle(() => withSqlite((url) => adminPage(url, 20, 200)));
  const pgAdmin = await withPostgres((schema) =>
    adminPage(`${pgUrl()}?options=${encodeURIComponent(`-c search_path=${schema}`)}`, 20, 200),
  ).catch((e: unknown): Maybe<Timing & { storeQueriesPerPage: number }> => ({ ok: false, reason: String(e) }));
  const [machine1, own1, wall1] = [machineBusyMicros(), process.cpuUsage(own0), performance.now()];
  const otherCpuPercent =
    machine0 === null || machine1 === null
      ? null
      : Math.max(0, (100 * (machine1 - machine0 - own1.user - own1.system)) / ((wall1 - wall0) * 1000 * cpus().length));
  return {
    otherCpuPercent,
    resolverCacheHit: cacheHit,
    decryptTokenSet,
    resolverStoreHit: { sqlite: sqliteStore, postgres: pgStore },
    adminPage: { sqlite: sqliteAdmin, postgres: pgAdmin },
    adminPageShape: {
      providers: PAGE_PROVIDERS,
      connections: PAGE_PROVIDERS * CONNECTIONS_PER_PROVIDER,
      accessPolicies: PAGE_PROVIDERS * CONNECTIONS_PER_PROVIDER * 2,
    },
  };
}

export function formatMicro(m: MicroResults): string {
  const us = (t: Maybe<Timing>) =>
    t.ok ? `median ${t.median.toFixed(1)} µs, p99 ${t.p99.toFixed(1)} µs (${t.iterations} calls)` : `n/a (${t.reason})`;
  const ms = (t: Maybe<Timing & { storeQueriesPerPage: number }>) =>
    t.ok
      ? `median ${t.median.toFixed(2)} ms, p99 ${t.p99.toFixed(2)} ms, ${t.storeQueriesPerPage} store queries per page (${t.iterations} pages)`
      : `n/a (${t.reason})`;
  const shape = m.adminPageShape;
  return [
    `Micro-benchmarks (in-process, one call at a time; other load meanwhile, PostgreSQL's own work included: ${m.otherCpuPercent === null ? 'n/a' : `${m.otherCpuPercent.toFixed(0)} %`})`,
    `  TokenResolver.resolve, cache hit                 ${us({ ok: true, ...m.resolverCacheHit })}`,
    `  decrypting one stored token set (openTokenSet)   ${us({ ok: true, ...m.decryptTokenSet })}`,
    `  TokenResolver.resolve, cache off, SQLite         ${us(m.resolverStoreHit.sqlite)}`,
    `  TokenResolver.resolve, cache off, PostgreSQL     ${us(m.resolverStoreHit.postgres)}`,
    `  admin page over HTTP, SQLite                     ${ms(m.adminPage.sqlite)}`,
    `  admin page over HTTP, PostgreSQL                 ${ms(m.adminPage.postgres)}`,
    `  (admin page: credentialProviders(first: ${shape.providers}) with ${shape.connections} connections and ${shape.accessPolicies} access policies)`,
  ].join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(formatMicro(await runMicro()));
}
