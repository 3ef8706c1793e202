/**
 * store/sql.ts: statements as tagged templates whose values become bound parameters, spliced
 * fragments keep their own parameters in order, and multi-statement work runs the same
 * generator synchronously or asynchronously.
 */
import { describe, expect, it } from 'vitest';
import {
  EMPTY,
  Sql,
  join,
  raw,
  render,
  runWork,
  runWorkSync,
  sql,
  type Result,
  type Work,
} from '../../src/store/sql.js';

const question = () => '?';
const dollar = (i: number) => `$${i}`;

describe('sql', () => {
  it('turns every interpolated value into a bound parameter, never text', () => {
    const hostile = "x'; DROP TABLE providers; --";
    const s = sql`SELECT * FROM providers WHERE id = ${hostile} AND version = ${3}`;
    expect(render(s, dollar)).toBe('SELECT * FROM providers WHERE id = $1 AND version = $2');
    expect(s.values).toEqual([hostile, 3]);
  });

  it('splices a fragment with its own parameters in order', () => {
    const where = sql`id = ${'a'} AND kind = ${'USER'}`;
    const s = sql`SELECT 1 WHERE provider_id = ${'p'} AND ${where} LIMIT ${10}`;
    expect(render(s, dollar)).toBe('SELECT 1 WHERE provider_id = $1 AND id = $2 AND kind = $3 LIMIT $4');
    expect(s.values).toEqual(['p', 'a', 'USER', 10]);
  });

  it('renders SQLite placeholders', () => {
    expect(render(sql`a = ${1} AND b = ${2}`, question)).toBe('a = ? AND b = ?');
  });

  it('takes raw text as trusted SQL with no parameters', () => {
    const s = sql`SELECT ${raw('count(*)')} FROM t${EMPTY}`;
    expect(render(s, dollar)).toBe('SELECT count(*) FROM t');
    expect(s.values).toEqual([]);
  });

  it('joins fragments with a separator, numbering parameters across them', () => {
    const s = join([sql`a = ${1}`, sql`b = ${2}`, sql`c = ${3}`], ' OR ');
    expect(render(s, dollar)).toBe('a = $1 OR b = $2 OR c = $3');
    expect(s.values).toEqual([1, 2, 3]);
    expect(render(join([], ' OR '), dollar)).toBe('');
  });

  it('refuses a statement whose parts and values do not interleave', () => {
    expect(() => new Sql(['a', 'b'], [])).toThrow(TypeError);
  });

  it('freezes what it holds', () => {
    const s = sql`a = ${1}`;
    expect(Object.isFrozen(s.parts)).toBe(true);
    expect(Object.isFrozen(s.values)).toBe(true);
  });
});

describe('runWork / runWorkSync', () => {
  function* work(): Work<number> {
    const first = yield sql`SELECT ${1}`;
    const second = yield sql`SELECT ${first.rowCount + 1}`;
    return second.rowCount * 10;
  }
  const execute = (s: Sql): Result => ({ rows: [], rowCount: Number(s.values[0]) });

  it('feeds each statement its result and returns the work value, synchronously', () => {
    expect(runWorkSync(work(), execute)).toBe(20);
  });

  it('does the same asynchronously', async () => {
    await expect(runWork(work(), async (s) => execute(s))).resolves.toBe(20);
  });

  it('stops at the first failing statement', async () => {
    const seen: unknown[] = [];
    await expect(
      runWork(work(), async (s) => {
        seen.push(s.values[0]);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(seen).toEqual([1]);
  });
});
