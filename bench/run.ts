/**
 * `npm run bench`: gateway throughput and latency, side by side, from one run; then the in-process
 * micro-benchmarks (bench/micro.ts) and the lookups at scale (bench/scale.ts). Results go to
 * bench/results/<timestamp>.json and latest.json, and the chart to docs/benchmarks.svg.
 * docs/benchmarks.md says what each case is and how to read the figures.
 *
 *   BENCH_SECONDS=8 BENCH_CONNECTIONS=32 BENCH_WARMUP_SECONDS=2 BENCH_ROUNDS=2 npm run bench
 *   BENCH_CASES=a,c BENCH_MICRO=0 BENCH_SCALE=0 npm run bench   # a subset, no micro-benchmarks, no scale
 *   BENCH_CASES=none BENCH_MICRO=0 npm run bench               # the lookups at scale only
 *   BENCH_QUIET_SECONDS=20 npm run bench            # before each case, wait up to 20 s for other load to stop
 *   BENCH_CPU_PROF=/tmp/prof npm run bench          # V8 CPU profiles of the gateways (node --cpu-prof)
 *
 * Processes: this one runs the backends (authorization servers, caller-JWT issuer, subgraphs); each
 * gateway runs in its own child (bench/gateways.ts); the load generator in another (bench/load.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  GATEWAY_OF,
  gatewayStep,
  LABELS,
  QUERIES,
  setUpOurs,
  startSpec,
  type DirectTokens,
  type GatewayCaseId,
  type QuerySpec,
} from './cases.js';
import { GatewayProcess, LoadProcess, type GatewayStarted } from './children.js';
import { machineBusyMicros } from './cpuStat.js';
import { writeChart } from './chart.js';
import { formatMicro, runMicro, type MicroResults } from './micro.js';
import type { LoadStep } from './protocol.js';
import {
  CASE_IDS,
  formatQueryTable,
  formatRatios,
  leastDisturbed,
  RATIOS,
  ratioOf,
  type CaseFigures,
  type CaseId,
  type CaseOutcome,
  type QueryReport,
} from './report.js';
import { formatScale, largeConnectionsFromEnv, runScale, type ScaleResults } from './scale.js';
import { BENCH_USER, startBenchStage, type BenchStage } from './stage.js';

const RESULTS_DIR = new URL('./results/', import.meta.url).pathname;
const CALLER_JWT_TTL_SECONDS = 3_600;
const PAUSE_BETWEEN_CASES_MS = 500;
/** Other processes using less than this share of the machine count as quiet. */
const QUIET_OTHER_CPU_PERCENT = 10;

function envNumber(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number ≥ ${min} (got ${raw})`);
  return value;
}

function envCases(): readonly CaseId[] {
  const raw = process.env['BENCH_CASES'];
  if (!raw) return CASE_IDS;
  if (raw.trim() === 'none') return [];
  const wanted = raw.split(',').map((s) => s.trim());
  const unknown = wanted.filter((w) => !(CASE_IDS as readonly string[]).includes(w));
  if (unknown.length > 0)
    throw new Error(`BENCH_CASES: unknown case ${unknown.join(', ')} (use ${CASE_IDS.join(',')}, or none)`);
  return CASE_IDS.filter((id) => wanted.includes(id));
}

const SETTINGS = Object.freeze({
  /** Measured seconds per case and query, over all rounds. */
  seconds: envNumber('BENCH_SECONDS', 8, 1),
  connections: Math.floor(envNumber('BENCH_CONNECTIONS', 32, 1)),
  warmupSeconds: envNumber('BENCH_WARMUP_SECONDS', 2, 0),
  rounds: Math.floor(envNumber('BENCH_ROUNDS', 2, 1)),
  cases: envCases(),
  micro: process.env['BENCH_MICRO'] !== '0',
  /** Connections of the large store of the lookups at scale; null: skipped (BENCH_SCALE=0). */
  scaleConnections: process.env['BENCH_SCALE'] === '0' ? null : largeConnectionsFromEnv(),
  cpuProfileDir: process.env['BENCH_CPU_PROF'] || null,
  quietWaitSeconds: envNumber('BENCH_QUIET_SECONDS', 0, 0),
});

function machine() {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${platform()} ${release()}`,
    totalMemoryGiB: Math.round(totalmem() / 2 ** 30),
    loadAverage1mAtStart: loadavg()[0]!,
  };
}

/**
 * The pause between cases; with BENCH_QUIET_SECONDS, prolonged (up to that long) while other
 * processes keep the machine busy.
 */
async function pauseForQuiet(cores: number): Promise<void> {
  const deadline = performance.now() + SETTINGS.quietWaitSeconds * 1000;
  for (;;) {
    const [m0, c0, t0] = [machineBusyMicros(), process.cpuUsage(), performance.now()];
    await new Promise((r) => setTimeout(r, PAUSE_BETWEEN_CASES_MS));
    const [m1, c1, t1] = [machineBusyMicros(), process.cpuUsage(c0), performance.now()];
    const other = m0 === null || m1 === null ? 0 : (100 * (m1 - m0 - c1.user - c1.system)) / ((t1 - t0) * 1000 * cores);
    if (other < QUIET_OTHER_CPU_PERCENT || performance.now() >= deadline) return;
  }
}

/** CPU times, subgraph calls and wall time at one instant, to charge a measured window with. */
async function snapshot(stage: BenchStage, gateway: GatewayProcess | null) {
  const here = process.cpuUsage();
  return {
    wallMicros: performance.now() * 1000,
    machine: machineBusyMicros(),
    calls: stage.subgraphCalls(),
    subgraphs: here.user + here.system,
    gateway: gateway ? await gateway.cpuMicros() : 0,
  };
}

/** One measured window of one case: load from the child process, CPU charged per request. */
async function measure(
  stage: BenchStage,
  load: LoadProcess,
  gateway: GatewayProcess | null,
  steps: LoadStep[],
  cores: number,
): Promise<CaseFigures> {
  stage.forgetSeen();
  await pauseForQuiet(cores);
  let atStart: ReturnType<typeof snapshot> | null = null;
  const result = await load.run(
    {
      steps,
      connections: SETTINGS.connections,
      warmupMs: SETTINGS.warmupSeconds * 1000,
      durationMs: (SETTINGS.seconds / SETTINGS.rounds) * 1000,
    },
    () => {
      atStart = snapshot(stage, gateway);
    },
  );
  const end = await snapshot(stage, gateway);
  const start = (await (atStart as ReturnType<typeof snapshot> | null)) ?? end;
  const perRequest = (n: number) => (result.completed > 0 ? n / result.completed : Number.NaN);
  const ours = end.gateway - start.gateway + (end.subgraphs - start.subgraphs) + result.cpuMicros;
  return {
    ...result,
    gatewayCpuMicrosPerRequest: gateway ? perRequest(end.gateway - start.gateway) : null,
    subgraphCpuMicrosPerRequest: perRequest(end.subgraphs - start.subgraphs),
    subgraphCallsPerRequest: perRequest(end.calls - start.calls),
    otherCpuPercent:
      end.machine === null || start.machine === null
        ? null
        : Math.max(0, (100 * (end.machine - start.machine - ours)) / ((end.wallMicros - start.wallMicros) * cores)),
  };
}

/** Every selected case, round after round, each gateway in its own child; one report per query. */
async function runHttp(
  cores: number,
): Promise<{ reports: QueryReport[]; started: ReadonlyMap<GatewayCaseId, GatewayStarted> }> {
  const stage = await startBenchStage();
  const load = new LoadProcess();
  const gateways = new Map<GatewayCaseId, GatewayProcess>();
  const started = new Map<GatewayCaseId, GatewayStarted>();
  const rounds = new Map<string, CaseFigures[]>();
  const reports: QueryReport[] = [];
  try {
    const jwt = await stage.idp.sign({ sub: BENCH_USER }, { expiresIn: CALLER_JWT_TTL_SECONDS });
    // Case a's tokens come from case c's gateway, so c's gateway starts whenever a runs.
    const needed = (id: GatewayCaseId) => SETTINGS.cases.includes(id) || (id === 'c' && SETTINGS.cases.includes('a'));
    for (const id of ['c', 'b', "b'", 'd', 'd+'] as const) {
      if (!needed(id)) continue;
      const proc = new GatewayProcess({ cpuProfileDir: SETTINGS.cpuProfileDir });
      gateways.set(id, proc);
      started.set(id, await proc.start(startSpec(GATEWAY_OF[id], stage)));
    }
    let direct: DirectTokens | null = null;
    const ours = started.get('c');
    if (ours) {
      if (!ours.ok) throw new Error(`this gateway did not start: ${ours.reason}`);
      direct = await setUpOurs(stage, new URL(ours.url).origin, jwt);
    }
    for (const [id, s] of started)
      console.log(`${id.padEnd(3)} ${s.ok ? `${s.version} at ${s.url}` : `n/a (${s.reason})`}`);
    console.log();

    const stepsOf = (q: QuerySpec, id: CaseId): LoadStep[] | null => {
      if (id === 'a') return q.direct(stage, direct!);
      const s = started.get(id)!;
      return s.ok ? [gatewayStep(id, s.url, q, jwt)] : null;
    };
    for (let round = 1; round <= SETTINGS.rounds; round++) {
      for (const q of QUERIES) {
        for (const id of SETTINGS.cases) {
          const steps = stepsOf(q, id);
          if (steps === null) continue;
          const figures = await measure(stage, load, id === 'a' ? null : gateways.get(id)!, steps, cores);
          rounds.set(`${q.id}/${id}`, [...(rounds.get(`${q.id}/${id}`) ?? []), figures]);
          process.stderr.write(
            `  round ${round} ${q.id} ${id.padEnd(3)} ${figures.requestsPerSecond.toFixed(0).padStart(6)} req/s, ${figures.errors} errors, ` +
              `other load ${figures.otherCpuPercent?.toFixed(0) ?? 'n/a'} %\n`,
          );
        }
      }
    }
    for (const q of QUERIES) {
      const cases: Partial<Record<CaseId, CaseOutcome>> = {};
      for (const id of SETTINGS.cases) {
        const s = id === 'a' ? null : started.get(id)!;
        cases[id] = s && !s.ok ? { ran: false, reason: s.reason } : leastDisturbed(rounds.get(`${q.id}/${id}`)!);
      }
      reports.push({ id: q.id, title: q.title, query: q.query, cases });
    }
  } finally {
    await load.stop();
    for (const proc of gateways.values()) await proc.stop();
    await stage.close();
  }

  return { reports, started };
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const host = machine();
  const roundSeconds = SETTINGS.seconds / SETTINGS.rounds;
  console.log(`credential-gateway bench — ${startedAt.toISOString()}`);
  console.log(
    `machine: ${host.cpus} × ${host.cpuModel}, ${host.totalMemoryGiB} GiB, node ${host.node}, ${host.platform}, load average ${host.loadAverage1mAtStart.toFixed(2)}`,
  );
  console.log(
    `settings: ${SETTINGS.connections} concurrent requests (closed loop); per case ${SETTINGS.rounds} round(s) of ${roundSeconds} s after ${SETTINGS.warmupSeconds} s warm-up, ` +
      `the round with the least other load shown; cases ${SETTINGS.cases.join(' ') || 'none'}` +
      (SETTINGS.quietWaitSeconds > 0
        ? `; waiting up to ${SETTINGS.quietWaitSeconds} s per case for other load to stop`
        : ''),
  );
  if (SETTINGS.cases.length > 0)
    console.log(
      'processes: backends (authorization servers, JWT issuer, subgraphs) here; each gateway in its own child; the load generator in another child (undici Pool, keep-alive)',
    );
  console.log();

  const http = SETTINGS.cases.length > 0 ? await runHttp(host.cpus) : null;
  const reports = http?.reports ?? [];
  const started = http?.started ?? new Map<GatewayCaseId, GatewayStarted>();

  if (http) {
    console.log(`\nHTTP, ${SETTINGS.connections} concurrent requests, ${roundSeconds} s windows\n`);
    for (const r of reports) console.log(`${formatQueryTable(r, LABELS)}\n`);
    console.log(`${formatRatios(reports)}\n`);
  }

  let micro: MicroResults | null = null;
  if (SETTINGS.micro) {
    micro = await runMicro();
    console.log(`${formatMicro(micro)}\n`);
  }

  let scale: ScaleResults | null = null;
  if (SETTINGS.scaleConnections !== null) {
    scale = await runScale(SETTINGS.scaleConnections);
    console.log(`${formatScale(scale)}\n`);
  }

  const finishedAt = new Date();
  const results = {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    machine: { ...host, loadAverage1mAtEnd: loadavg()[0]! },
    settings: SETTINGS,
    loadGenerator:
      'bench/load.ts in a child process (child_process.fork): closed loop, undici Pool per origin, keep-alive, pipelining 1',
    cases: Object.fromEntries(
      CASE_IDS.map((id) => {
        const s = id === 'a' ? null : started.get(id);
        return [
          id,
          { label: LABELS[id], version: s?.ok ? s.version : null, unavailable: s && !s.ok ? s.reason : null },
        ];
      }),
    ),
    http: reports,
    ratios: Object.fromEntries(
      RATIOS.map((ratio) => [ratio.name, Object.fromEntries(reports.map((r) => [r.id, ratioOf(r, ratio)]))]),
    ),
    micro,
    scale,
  };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const text = `${JSON.stringify(results, null, 2)}\n`;
  const file = `${RESULTS_DIR}${startedAt.toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, text);
  const elapsed = `${((finishedAt.getTime() - startedAt.getTime()) / 1000).toFixed(0)} s in all`;
  if (!http) {
    // latest.json and the chart stay with the last run that measured the gateways.
    console.log(
      `results: bench/results/${file.slice(RESULTS_DIR.length)} (no HTTP cases: latest.json and docs/benchmarks.svg left as they were); ${elapsed}`,
    );
    return;
  }
  writeFileSync(`${RESULTS_DIR}latest.json`, text);
  let chart = 'docs/benchmarks.svg';
  try {
    writeChart(results);
  } catch (e) {
    chart = `not redrawn (${e instanceof Error ? e.message : String(e)})`;
  }
  console.log(
    `results: bench/results/${file.slice(RESULTS_DIR.length)} and bench/results/latest.json; chart: ${chart}; ${elapsed}`,
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
