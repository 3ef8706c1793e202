/**
 * The query plans of one token lookup: the statements the store sends while `TokenResolver.resolve`
 * runs once (recorded at the driver, text and bound values exactly as sent), each explained by the
 * database that ran it. Recording wraps better-sqlite3's `prepare` / pg's `Client#query` for the
 * duration of one call; the store's code is untouched.
 */
import { createRequire } from 'node:module';
import Database from 'better-sqlite3';
import { withPgClient } from '../test/support/pg.js';

/** pg as the store loads it (bench/node_modules may hold other pg typings, never another pg). */
const storeRequire = createRequire(new URL('../src/store/postgres.ts', import.meta.url));

export interface RecordedStatement {
  readonly text: string;
  readonly values: readonly unknown[];
}

export interface QueryPlan {
  /** The store method the statement belongs to, from the table it reads. */
  readonly reads: string;
  readonly statement: string;
  readonly plan: readonly string[];
  /** No full scan of `connections` or `access_policies`, and an index named for each of them read. */
  readonly indexed: boolean;
}

const METHOD_OF_TABLE: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bFROM access_policies\b/, 'listAccessPolicies'],
  [/\bFROM connections\b/, 'getConnection'],
  [/\bFROM providers\b/, 'getProvider'],
];

function readsOf(text: string): string {
  return METHOD_OF_TABLE.find(([pattern]) => pattern.test(text))?.[1] ?? 'other';
}

const oneLine = (text: string): string => text.replace(/\s+/g, ' ').trim();

/**
 * Runs `fn` while recording the SELECTs that better-sqlite3 statements prepared meanwhile execute.
 * Use a store opened for the purpose: statements its driver prepared earlier are not seen again.
 */
export async function recordSqlite(fn: () => Promise<unknown>): Promise<RecordedStatement[]> {
  const recorded: RecordedStatement[] = [];
  const proto = Database.prototype;
  const prepare = proto.prepare;
  let recording = true;
  proto.prepare = function (this: Database.Database, source: string) {
    const statement = prepare.call(this, source) as Database.Statement & { all: (...values: unknown[]) => unknown[] };
    const all = statement.all;
    statement.all = (...values: unknown[]) => {
      if (recording) recorded.push({ text: source, values });
      return all.apply(statement, values);
    };
    return statement;
  } as typeof proto.prepare;
  try {
    await fn();
  } finally {
    recording = false;
    proto.prepare = prepare;
  }
  return recorded;
}

/** Runs `fn` while recording every parameterized statement a pg client sends. */
export async function recordPostgres(fn: () => Promise<unknown>): Promise<RecordedStatement[]> {
  const recorded: RecordedStatement[] = [];
  const proto = (storeRequire('pg') as { Client: { prototype: { query: (...args: unknown[]) => unknown } } }).Client
    .prototype;
  const query = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    // The store sends a query config ({ text, values, name }: a named prepared statement).
    const [first, second] = args;
    const { text, values } =
      typeof first === 'object' && first !== null
        ? (first as { text?: unknown; values?: unknown })
        : { text: first, values: second };
    if (typeof text === 'string' && Array.isArray(values) && /^\s*SELECT\b/i.test(text))
      recorded.push({ text, values: [...values] });
    return query.apply(this, args);
  };
  try {
    await fn();
  } finally {
    proto.query = query;
  }
  return recorded;
}

const FULL_SCAN_SQLITE = /^SCAN (connections|access_policies)\b/;
const FULL_SCAN_PG = /Seq Scan on (connections|access_policies)\b/;

function indexedIn(
  plan: readonly string[],
  fullScan: RegExp,
  indexUse: (table: string) => RegExp,
  text: string,
): boolean {
  if (plan.some((line) => fullScan.test(line.trim()))) return false;
  const tables = ['connections', 'access_policies'].filter((t) => new RegExp(`\\bFROM ${t}\\b`).test(text));
  return tables.every((t) => plan.some((line) => indexUse(t).test(line)));
}

/** EXPLAIN QUERY PLAN of each statement, on the SQLite file `file` (opened read-only). */
export function explainSqlite(file: string, statements: readonly RecordedStatement[]): QueryPlan[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return statements.map((s) => {
      const rows = db.prepare(`EXPLAIN QUERY PLAN ${s.text}`).all(...s.values) as {
        id: number;
        parent: number;
        detail: string;
      }[];
      const depth = new Map<number, number>([[0, 0]]);
      const plan = rows.map((r) => {
        const d = (depth.get(r.parent) ?? 0) + 1;
        depth.set(r.id, d);
        return `${'  '.repeat(d - 1)}${r.detail}`;
      });
      const indexed = indexedIn(
        plan,
        FULL_SCAN_SQLITE,
        (t) => new RegExp(`SEARCH ${t} USING .*(INDEX|PRIMARY KEY)`),
        s.text,
      );
      return { reads: readsOf(s.text), statement: oneLine(s.text), plan, indexed };
    });
  } finally {
    db.close();
  }
}

/** EXPLAIN (ANALYZE, BUFFERS) of each statement, in `schema`: the plan it ran with and the pages it touched. */
export async function explainPostgres(
  url: string,
  schema: string,
  statements: readonly RecordedStatement[],
): Promise<QueryPlan[]> {
  return withPgClient(async (client) => {
    await client.query(`SET search_path TO "${schema}"`);
    const plans: QueryPlan[] = [];
    for (const s of statements) {
      const result = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) ${s.text}`,
        [...s.values],
      );
      const lines = result.rows.map((r) => r['QUERY PLAN']);
      // Planning in this new session reads the catalog, which the store's pooled sessions hold cached.
      const planning = lines.findIndex((line) => line.startsWith('Planning:'));
      const plan = planning < 0 ? lines : lines.slice(0, planning);
      const indexed = indexedIn(
        plan,
        FULL_SCAN_PG,
        (t) => new RegExp(`(Index (Only )?Scan using \\S+|Bitmap Heap Scan) on ${t}\\b`),
        s.text,
      );
      plans.push({ reads: readsOf(s.text), statement: oneLine(s.text), plan, indexed });
    }
    return plans;
  }, url);
}
