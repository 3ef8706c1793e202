/**
 * Lookups at scale: `TokenResolver.resolve` with the cache off (access policies and connection
 * read from the store at once, the token set decrypted) against a store of 1,000 connections and
 * one of 1,000,000, on SQLite and on PostgreSQL. A lookup that stays on the index costs about the
 * same at both sizes (one or two more B-tree levels); the target is a ratio 1M / 1k of at most 1.5.
 * Also the query plans of one lookup at the large size, as the databases explain them.
 *
 * The databases are kept between runs (bench/scaleData.ts): the first run fills them (a few
 * minutes), later ones reuse them. Lookups go to LOOKUP_TARGETS connections spread over the key
 * space, in a shuffled order, the two sizes taking turns in blocks so that other load on the
 * machine falls on both alike.
 *
 *   npx tsx bench/scale.ts                               # alone
 *   BENCH_SCALE_CONNECTIONS=100000 npx tsx bench/scale.ts  # a smaller large store
 */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { Envelope } from '../src/crypto/envelope.js';
import { sqliteFileOf, openStore } from '../src/store/open.js';
import type { Store } from '../src/store/types.js';
import { pgAvailable, pgUrl, redactedPgUrl } from '../test/support/pg.js';
import { benchResolver, callerRequest } from './benchResolver.js';
import { machineBusyMicros } from './cpuStat.js';
import { settle, type Maybe } from './micro.js';
import { explainPostgres, explainSqlite, recordPostgres, recordSqlite, type QueryPlan } from './queryPlans.js';
import {
  keyOf,
  layoutOf,
  LOOKUP_TARGETS,
  pgScaleDatabase,
  scaleEnvelope,
  sealTargets,
  sqliteScaleDatabase,
  type ScaleDatabase,
  type ScaleLayout,
} from './scaleData.js';
import { sample, timingOf, type Timing } from './timing.js';

export const SMALL_CONNECTIONS = 1_000;
export const DEFAULT_LARGE_CONNECTIONS = 1_000_000;
/** What "lookups scale" means here: the large store's median and p99 within this factor of the small one's. */
export const TARGET_RATIO = 1.5;
/** The two sizes take turns this many times. */
const BLOCKS = 10;

const ROUNDS = Object.freeze({
  sqlite: { warmup: 2_000, iterations: 20_000 },
  postgres: { warmup: 500, iterations: 5_000 },
});

export interface ScaleSide {
  readonly connections: number;
  readonly providers: number;
  readonly accessPolicies: number;
  /** On disk (SQLite file; PostgreSQL tables with their indexes and TOAST). */
  readonly bytes: number;
  /** Seconds spent filling the database in this run; null when a kept one was reused. */
  readonly populateSeconds: number | null;
  /** µs per lookup */
  readonly lookup: Timing;
}

export interface ScaleBackend {
  readonly small: ScaleSide;
  readonly large: ScaleSide;
  /** large / small */
  readonly ratio: { readonly median: number; readonly p99: number };
  /** The statements of one lookup in each store, explained. */
  readonly plans: { readonly small: readonly QueryPlan[]; readonly large: readonly QueryPlan[] };
}

export interface ScaleResults {
  readonly targets: number;
  readonly targetRatio: number;
  readonly sqlite: Maybe<ScaleBackend>;
  readonly postgres: Maybe<ScaleBackend>;
  /** Share of the machine's CPU that other processes (PostgreSQL's server included) used meanwhile, %; null off Linux. */
  readonly otherCpuPercent: number | null;
}

interface Lookups {
  readonly next: () => Promise<unknown>;
  close(): Promise<void>;
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function requestsOf(layout: ScaleLayout) {
  // The caller is the connection's user, admitted by its USER policy, as with `connection: "{jwt.sub}"`.
  return shuffled(layout.targets).map((n) => {
    const key = keyOf(layout, n);
    return callerRequest(key, key.connectionId);
  });
}

async function openDatabase(db: ScaleDatabase): Promise<Store> {
  return openStore(db.storeUrl, db.pgSchema === undefined ? {} : { pgSchema: db.pgSchema });
}

/** A store over `db` with fresh token sets in the targets, and a resolver (cache off) cycling through them. */
async function lookupsOver(db: ScaleDatabase, envelope: Envelope): Promise<Lookups> {
  const store = await openDatabase(db);
  try {
    await sealTargets(store, db.layout, envelope);
    const { resolver } = benchResolver(store, envelope, false);
    const requests = requestsOf(db.layout);
    let i = 0;
    const next = () => resolver.resolve(requests[i++ % requests.length]!);
    await next(); // fails loudly here rather than inside the timed loop
    return { next, close: () => store.close() };
  } catch (e) {
    await store.close();
    throw e;
  }
}

/** One lookup through a store opened for the purpose, with the statements it sent explained. */
async function plansOf(db: ScaleDatabase, envelope: Envelope): Promise<QueryPlan[]> {
  const store = await openDatabase(db);
  try {
    const { resolver } = benchResolver(store, envelope, false);
    const [request] = requestsOf(db.layout);
    const lookup = () => resolver.resolve(request!);
    if (db.pgSchema === undefined) return explainSqlite(sqliteFileOf(db.storeUrl), await recordSqlite(lookup));
    return await explainPostgres(db.storeUrl, db.pgSchema, await recordPostgres(lookup));
  } finally {
    await store.close();
  }
}

async function measure(
  open: (layout: ScaleLayout, envelope: Envelope) => Promise<ScaleDatabase>,
  largeConnections: number,
  rounds: { warmup: number; iterations: number },
): Promise<ScaleBackend> {
  const envelope = scaleEnvelope();
  const small = await open(layoutOf(SMALL_CONNECTIONS), envelope);
  const large = await open(layoutOf(largeConnections), envelope);
  const sides = [await lookupsOver(small, envelope)];
  try {
    sides.push(await lookupsOver(large, envelope));
    const plans = { small: await plansOf(small, envelope), large: await plansOf(large, envelope) };
    for (const side of sides) for (let i = 0; i < rounds.warmup; i++) await side.next();
    const perBlock = Math.ceil(rounds.iterations / BLOCKS);
    const samples: Float64Array[][] = [[], []];
    for (let b = 0; b < BLOCKS; b++) {
      // Alternate which size goes first, so neither always follows the other's cache footprint.
      const order = b % 2 === 0 ? [0, 1] : [1, 0];
      for (const s of order) samples[s]!.push(await sample(sides[s]!.next, perBlock));
    }
    const [smallLookup, largeLookup] = samples.map((blocks) => timingOf(concat(blocks), 'us')) as [Timing, Timing];
    const side = (db: ScaleDatabase, lookup: Timing): ScaleSide => ({
      connections: db.layout.connections,
      providers: db.layout.providers,
      accessPolicies: db.accessPolicies,
      bytes: db.bytes,
      populateSeconds: db.populateSeconds,
      lookup,
    });
    return {
      small: side(small, smallLookup),
      large: side(large, largeLookup),
      ratio: { median: largeLookup.median / smallLookup.median, p99: largeLookup.p99 / smallLookup.p99 },
      plans,
    };
  } finally {
    for (const side of sides) await side.close();
  }
}

function concat(blocks: readonly Float64Array[]): Float64Array {
  const out = new Float64Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

export async function runScale(largeConnections: number = DEFAULT_LARGE_CONNECTIONS): Promise<ScaleResults> {
  if (!Number.isSafeInteger(largeConnections) || largeConnections < SMALL_CONNECTIONS)
    throw new RangeError(`the large store needs at least ${SMALL_CONNECTIONS} connections (got ${largeConnections})`);
  const [machine0, own0, wall0] = [machineBusyMicros(), process.cpuUsage(), performance.now()];
  const sqlite = await settle(() => measure(sqliteScaleDatabase, largeConnections, ROUNDS.sqlite));
  const url = pgUrl();
  const postgres: Maybe<ScaleBackend> = (await pgAvailable(url))
    ? await settle(() =>
        measure((layout, envelope) => pgScaleDatabase(url, layout, envelope), largeConnections, ROUNDS.postgres),
      )
    : { ok: false, reason: `PostgreSQL unreachable at ${redactedPgUrl(url)}` };
  const [machine1, own1, wall1] = [machineBusyMicros(), process.cpuUsage(own0), performance.now()];
  const otherCpuPercent =
    machine0 === null || machine1 === null
      ? null
      : Math.max(0, (100 * (machine1 - machine0 - own1.user - own1.system)) / ((wall1 - wall0) * 1000 * cpus().length));
  return { targets: LOOKUP_TARGETS, targetRatio: TARGET_RATIO, sqlite, postgres, otherCpuPercent };
}

const count = (n: number): string => n.toLocaleString('en-US');

function size(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** The column list of a long SELECT, elided for reading. */
function shortStatement(statement: string): string {
  return statement.replace(/^SELECT (.{40,}?) FROM/, 'SELECT … FROM');
}

export function formatScale(r: ScaleResults): string {
  const lines = [
    `Lookups at scale: TokenResolver.resolve, cache off (policies and connection read at once; token set decrypted), ` +
      `${r.targets} connections spread over the key space, sizes interleaved; other load meanwhile, PostgreSQL's own work included: ` +
      `${r.otherCpuPercent === null ? 'n/a' : `${r.otherCpuPercent.toFixed(0)} %`}`,
  ];
  const timing = (t: Timing) => `median ${t.median.toFixed(1)} µs, p99 ${t.p99.toFixed(1)} µs`;
  const backends = [
    ['SQLite', r.sqlite],
    ['PostgreSQL', r.postgres],
  ] as const;
  for (const [name, b] of backends) {
    if (!b.ok) {
      lines.push(`  ${name.padEnd(11)} n/a (${b.reason})`);
      continue;
    }
    const verdict = b.ratio.median <= r.targetRatio && b.ratio.p99 <= r.targetRatio ? 'within' : 'NOT within';
    lines.push(
      `  ${name.padEnd(11)} ${count(b.small.connections).padStart(9)} connections: ${timing(b.small.lookup)} (${b.small.lookup.iterations} calls)`,
      `  ${''.padEnd(11)} ${count(b.large.connections).padStart(9)} connections: ${timing(b.large.lookup)} (${b.large.lookup.iterations} calls)`,
      `  ${''.padEnd(11)} ratio ${count(b.large.connections)} / ${count(b.small.connections)}: median ${b.ratio.median.toFixed(2)}, p99 ${b.ratio.p99.toFixed(2)} ` +
        `(${verdict} the ${r.targetRatio} target)`,
    );
  }
  for (const [name, b] of backends) {
    if (!b.ok) continue;
    const filled = (s: ScaleSide) =>
      s.populateSeconds === null ? 'kept from an earlier run' : `filled in ${s.populateSeconds.toFixed(0)} s`;
    lines.push(
      `  ${name} store of ${count(b.large.connections)}: ${count(b.large.providers)} providers, ${count(b.large.accessPolicies)} access policies, ` +
        `${size(b.large.bytes)} on disk, ${filled(b.large)}`,
    );
  }
  const planLines = (plans: readonly QueryPlan[]) =>
    plans.flatMap((p) => [
      `    ${p.reads}${p.indexed ? '' : ' (not on an index)'}: ${shortStatement(p.statement)}`,
      ...p.plan.map((line) => `      ${line}`),
    ]);
  for (const [name, b] of backends) {
    if (!b.ok) continue;
    lines.push(
      `  Query plans of one lookup at ${count(b.large.connections)} connections, ${name}:`,
      ...planLines(b.plans.large),
    );
    // The small store's plans only where they differ in kind: a full scan the large one avoids.
    const scans = b.plans.small.filter((p) => !p.indexed);
    if (scans.length > 0)
      lines.push(
        `  At ${count(b.small.connections)} connections, ${name} plans these differently:`,
        ...planLines(scans),
      );
  }
  return lines.join('\n');
}

export function largeConnectionsFromEnv(): number {
  const raw = process.env['BENCH_SCALE_CONNECTIONS'];
  if (raw === undefined || raw === '') return DEFAULT_LARGE_CONNECTIONS;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < SMALL_CONNECTIONS)
    throw new Error(`BENCH_SCALE_CONNECTIONS must be an integer ≥ ${SMALL_CONNECTIONS} (got ${raw})`);
  return n;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(formatScale(await runScale(largeConnectionsFromEnv())));
}
