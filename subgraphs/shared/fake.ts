/** Deterministic fake data: the same subject always gets the same answers, in every run. */
import { createHash } from 'node:crypto';

/** A number in [0, modulo) derived from `text`. */
export function stableNumber(text: string, modulo: number): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0) % modulo;
}

export function pick<T>(text: string, choices: readonly [T, ...T[]]): T {
  return choices[stableNumber(text, choices.length)] ?? choices[0];
}
