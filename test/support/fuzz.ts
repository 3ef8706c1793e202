/**
 * Property runs for the hostile-input tests: one fixed seed (FC_SEED overrides it, to replay a
 * failure or explore further), a run count per property, and the number of cases actually run
 * printed per property. A failure message carries fast-check's report: seed, path, counterexample.
 */
import * as fc from 'fast-check';

const DEFAULT_SEED = 20_240_611;

function seedFromEnv(): number {
  const raw = process.env['FC_SEED'];
  if (raw === undefined || raw === '') return DEFAULT_SEED;
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed)) throw new Error(`FC_SEED must be an integer, got ${JSON.stringify(raw)}`);
  return seed;
}

export const FUZZ_SEED = seedFromEnv();

/** Strings that stress every layer: unicode planes, lone surrogates, control characters, huge. */
export function hostileString(maxLength = 64): fc.Arbitrary<string> {
  const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
  const control = fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c));
  const special = fc.constantFrom(
    '/',
    '?',
    '#',
    '&',
    '+',
    ':',
    '<',
    '>',
    '*',
    '%',
    '.',
    '..',
    '{',
    '}',
    '\\',
    '"',
    "'",
    ' ',
    '\u2028',
    '\u202e',
    '\ufeff',
    '\u00a0',
  );
  const unit = fc.oneof(
    { weight: 6, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
    { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
    { weight: 2, arbitrary: special },
    { weight: 1, arbitrary: control },
    { weight: 1, arbitrary: loneSurrogate },
  );
  return fc.oneof(
    { weight: 8, arbitrary: fc.string({ unit, maxLength }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('', ' ', '\u0000', 'null', 'undefined', '__proto__', 'constructor', '-1', 'NaN'),
    },
    // Huge values: past every per-field maximum, within the HTTP body limit (256 KiB: a few of
    // them, in 4-byte characters, in one request).
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(257, 1025, 2049, 4097, 10_000), fc.constantFrom('a', 'é', '😀', '%'))
        .map(([n, c]) => c.repeat(n)),
    },
  );
}

/**
 * Runs `property` `numRuns` times from FUZZ_SEED, prints how many cases ran, and fails with
 * fast-check's report (seed included) when a case fails. Returns the number of cases run.
 */
export async function runProperty<Ts>(
  name: string,
  property: fc.IAsyncProperty<Ts> | fc.IProperty<Ts>,
  numRuns: number,
): Promise<number> {
  const details = await fc.check(property as fc.IRawProperty<Ts>, { seed: FUZZ_SEED, numRuns });
  console.info(`[fuzz] ${name}: ${details.numRuns} cases, seed ${details.seed}${details.failed ? ' - FAILED' : ''}`);
  if (details.failed) {
    const cause =
      details.errorInstance instanceof Error ? details.errorInstance : new Error(String(details.errorInstance));
    throw new Error(`${name}\n${fc.defaultReportMessage(details)}\nFailure: ${cause.message}`, { cause });
  }
  return details.numRuns;
}
