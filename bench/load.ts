/**
 * The load generator, run as a child process of bench/run.ts so that it does not share an event
 * loop with the servers it measures. Closed loop: `connections` virtual clients, each sending its
 * next request as soon as the previous one is answered, over undici pools with kept-alive
 * connections. Every answer is checked (status 200, no GraphQL errors, the expected data) and
 * every latency of the measured window is recorded.
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import type { FromLoad, LoadJob, LoadResult, LoadStep, ToLoad } from './protocol.js';
import { summarize } from './stats.js';

const KEEP_ALIVE_MS = 30_000;

function send(message: FromLoad): void {
  process.send?.(message);
}

class CheckFailed extends Error {}

async function perform(pools: Map<string, Pool>, step: LoadStep): Promise<void> {
  const url = new URL(step.url);
  const pool = pools.get(url.origin)!;
  const res = await pool.request({
    method: 'POST',
    path: url.pathname + url.search,
    headers: step.headers,
    body: step.body,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new CheckFailed(`HTTP ${res.statusCode}`);
  const answer = JSON.parse(text) as { data?: unknown; errors?: { message?: string }[] };
  if (answer.errors !== undefined) throw new CheckFailed(`GraphQL: ${answer.errors[0]?.message ?? 'error'}`);
  if (JSON.stringify(answer.data) !== step.expectData) throw new CheckFailed('unexpected data');
}

function kindOf(error: unknown): string {
  if (error instanceof CheckFailed) return error.message;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : String(error);
}

export async function runLoad(job: LoadJob, onMeasuring: () => void = () => {}): Promise<LoadResult> {
  const pools = new Map<string, Pool>();
  for (const step of job.steps) {
    const origin = new URL(step.url).origin;
    if (!pools.has(origin))
      pools.set(
        origin,
        new Pool(origin, { connections: job.connections, pipelining: 1, keepAliveTimeout: KEEP_ALIVE_MS }),
      );
  }
  const latencies: number[] = [];
  const errorKinds: Record<string, number> = {};
  let errors = 0;
  let warmupErrors = 0;
  let firstError: string | null = null;
  const start = performance.now();
  const measureFrom = start + job.warmupMs;
  const measureTo = measureFrom + job.durationMs;
  let cpuAtStart = process.cpuUsage();
  const measuring = setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    onMeasuring();
  }, job.warmupMs);

  async function client(): Promise<void> {
    while (performance.now() < measureTo) {
      const t0 = performance.now();
      let failure: string | null = null;
      try {
        for (const step of job.steps) await perform(pools, step);
      } catch (e) {
        failure = kindOf(e);
      }
      const t1 = performance.now();
      if (failure !== null) firstError ??= failure;
      // Counted when it ends inside the window: warm-up and stragglers stay out, the rate is exact.
      if (t1 < measureFrom || t1 > measureTo) {
        if (failure !== null && t1 < measureFrom) warmupErrors += 1;
        continue;
      }
      if (failure === null) latencies.push(t1 - t0);
      else {
        errors += 1;
        errorKinds[failure] = (errorKinds[failure] ?? 0) + 1;
      }
    }
  }

  try {
    await Promise.all(Array.from({ length: job.connections }, client));
  } finally {
    clearTimeout(measuring);
    await Promise.all([...pools.values()].map((p) => p.close()));
  }
  const cpu = process.cpuUsage(cpuAtStart);
  const completed = latencies.length + errors;
  return Object.freeze({
    completed,
    errors,
    errorKinds: Object.freeze(errorKinds),
    warmupErrors,
    firstError,
    measuredMs: job.durationMs,
    requestsPerSecond: completed / (job.durationMs / 1000),
    latencyMs: summarize(latencies),
    cpuMicros: cpu.user + cpu.system,
  });
}

if (process.send !== undefined) {
  process.on('message', (message: ToLoad) => {
    if (message.type === 'exit') return void process.disconnect();
    runLoad(message.job, () => send({ type: 'measuring' })).then(
      (result) => send({ type: 'result', result }),
      (e: unknown) => send({ type: 'failed', message: String(e) }),
    );
  });
}
