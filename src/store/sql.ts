/**
 * The small SQL toolkit both stores share. Statements are written once, as tagged templates whose
 * interpolations become bound parameters, and each driver renders the placeholders of its dialect.
 * Multi-statement work is a generator that yields statements and receives their results, so the
 * same logic runs synchronously inside a better-sqlite3 transaction (nothing can interleave) and
 * asynchronously on a PostgreSQL client.
 */

export type Row = Readonly<Record<string, unknown>>;

export interface Result {
  readonly rows: readonly Row[];
  /** Rows written by INSERT / UPDATE / DELETE (or returned, for a query). */
  readonly rowCount: number;
}

/** A statement: literal text parts with one bound value between each two of them. */
export class Sql {
  readonly parts: readonly string[];
  readonly values: readonly unknown[];

  constructor(parts: readonly string[], values: readonly unknown[]) {
    if (parts.length !== values.length + 1) throw new TypeError('a statement has one more text part than values');
    this.parts = Object.freeze([...parts]);
    this.values = Object.freeze([...values]);
  }
}

/** Values become parameters; an interpolated `Sql` is spliced in with its own parameters. */
export function sql(strings: TemplateStringsArray, ...values: readonly unknown[]): Sql {
  const parts: string[] = [strings[0] ?? ''];
  const out: unknown[] = [];
  values.forEach((value, i) => {
    const after = strings[i + 1] ?? '';
    if (value instanceof Sql) {
      parts[parts.length - 1] += value.parts[0] ?? '';
      for (let j = 0; j < value.values.length; j++) {
        out.push(value.values[j]);
        parts.push(value.parts[j + 1] ?? '');
      }
      parts[parts.length - 1] += after;
    } else {
      out.push(value);
      parts.push(after);
    }
  });
  return new Sql(parts, out);
}

/** Trusted SQL text (identifiers, keywords chosen by the code, never by a caller). */
export function raw(text: string): Sql {
  return new Sql([text], []);
}

export const EMPTY: Sql = raw('');

/** `parts` one after the other, `separator` (trusted text) between each two. */
export function join(parts: readonly Sql[], separator: string): Sql {
  return parts.reduce((all, part, i) => (i === 0 ? part : sql`${all}${raw(separator)}${part}`), EMPTY);
}

/** Renders the text with `?` (SQLite) or `$n` (PostgreSQL) placeholders. */
export function render(statement: Sql, placeholder: (index: number) => string): string {
  let text = statement.parts[0] ?? '';
  for (let i = 1; i < statement.parts.length; i++) text += placeholder(i) + statement.parts[i];
  return text;
}

/** Work done in one transaction: yields statements, receives their results, returns a value. */
export type Work<T> = Generator<Sql, T, Result>;

export function runWorkSync<T>(work: Work<T>, execute: (statement: Sql) => Result): T {
  let step = work.next();
  while (!step.done) step = work.next(execute(step.value));
  return step.value;
}

export async function runWork<T>(work: Work<T>, execute: (statement: Sql) => Promise<Result>): Promise<T> {
  let step = work.next();
  while (!step.done) step = work.next(await execute(step.value));
  return step.value;
}

/** What differs between the two databases; everything else is shared SQL. */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /** Column types for the migrations. `id` compares byte-wise in both, so pages sort alike. */
  readonly types: Readonly<{ id: string; text: string; int: string; ms: string; json: string; tableSuffix: string }>;
  /** A one-column subquery (`v`) of the strings in a JSON array parameter. */
  textsOf(json: string): Sql;
  /** A two-column subquery (`a`, `b`) of the string pairs in a JSON array-of-arrays parameter. */
  pairsOf(json: string): Sql;
  /** Appended to a SELECT that reads a row the transaction is about to change or count under. */
  readonly forUpdate: Sql;
  /** Appended to a SELECT that claims queued rows: rows another transaction holds are passed over (empty on SQLite). */
  readonly skipLocked: Sql;
  /**
   * A statement that serializes this transaction with every other one taking the same named lock,
   * or null where write transactions are serialized anyway (SQLite's BEGIN IMMEDIATE).
   */
  transactionLock(name: string): Sql | null;
}

/** Access to the database the shared store logic needs; one implementation per dialect. */
export interface Driver {
  readonly dialect: Dialect;
  /** Statements sent since opening, including BEGIN / COMMIT / ROLLBACK and lock calls. */
  readonly queries: number;
  /** One statement on its own (autocommit). */
  run(statement: Sql): Promise<Result>;
  /** `work` in one write transaction that no other transaction of this store interleaves with. */
  transaction<T>(work: () => Work<T>): Promise<T>;
  /** Runs `fn` holding a lock named `name` that other processes sharing the database respect. */
  withSessionLock<T>(name: string, fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
