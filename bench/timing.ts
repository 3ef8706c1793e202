/** Timed loops of in-process calls, one at a time, for the micro-benchmarks. */
import { performance } from 'node:perf_hooks';
import { summarize } from './stats.js';

export interface Timing {
  readonly iterations: number;
  readonly median: number;
  readonly p99: number;
}

export type TimeUnit = 'us' | 'ms';

/** Durations of `iterations` sequential calls of `fn`, ms each. */
export async function sample(fn: () => Promise<unknown>, iterations: number): Promise<Float64Array> {
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    await fn();
    samples[i] = performance.now() - t0;
  }
  return samples;
}

/** Median and p99 of samples taken in ms, in `unit`. */
export function timingOf(samplesMs: ArrayLike<number>, unit: TimeUnit): Timing {
  const s = summarize(samplesMs);
  const scale = unit === 'us' ? 1000 : 1;
  return Object.freeze({ iterations: s.count, median: s.p50 * scale, p99: s.p99 * scale });
}

/** Times `iterations` sequential calls after `warmup` untimed ones. */
export async function time(
  fn: () => Promise<unknown>,
  warmup: number,
  iterations: number,
  unit: TimeUnit,
): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await fn();
  return timingOf(await sample(fn, iterations), unit);
}
