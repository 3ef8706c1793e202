/**
 * `npm run bench:ecosystem`: what tracing and Apollo Server plugins cost, in one run on one machine.
 * The same gateway (its own process) in front of one local subgraph, four ways:
 *
 *   prepared     no plugin, tracing off (the default)
 *   plugin       one no-op Apollo Server plugin: every operation takes the full pipeline
 *   traced-100   OTLP/protobuf export of every trace to a local sink (OTEL_TRACES_SAMPLER_ARG=1)
 *   traced-1     the same, 1 % of traces sampled
 *
 * Each is driven by a closed loop of CONNECTIONS kept-alive clients repeating one query; rounds
 * alternate the variants so drift on a shared machine falls on all of them. Reports the median
 * throughput of each and the ratios off/on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const MEASURE_MS = Number(process.env['BENCH_MEASURE_MS'] ?? 6_000);
const WARMUP_MS = 1_500;
const CONNECTIONS = 16;
const QUERY = JSON.stringify({ query: 'query Hello { hello }' });
const ENTRY = fileURLToPath(new URL('./ecosystemGateway.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../', import.meta.url));

type Variant = 'prepared' | 'plugin' | 'traced-100' | 'traced-1';
const ALL_VARIANTS: readonly Variant[] = ['prepared', 'plugin', 'traced-100', 'traced-1'];
/** `BENCH_VARIANTS=prepared` runs only that one (e.g. to compare two checkouts). */
const VARIANTS: readonly Variant[] = process.env['BENCH_VARIANTS']
  ? ALL_VARIANTS.filter((v) => process.env['BENCH_VARIANTS']!.split(',').includes(v))
  : ALL_VARIANTS;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** A subgraph answering at once, and an OTLP sink that accepts and drops every export (counting spans' bytes). */
async function startPeers(): Promise<{ subgraph: string; sink: string; sinkBytes: () => number; close(): void }> {
  const subgraph = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"data":{"hello":"world"}}');
    });
  });
  let bytes = 0;
  const sink = createServer((req, res) => {
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
  });
  const [s, k] = await Promise.all([listen(subgraph), listen(sink)]);
  return {
    subgraph: s,
    sink: k,
    sinkBytes: () => bytes,
    close: () => {
      subgraph.close();
      sink.close();
    },
  };
}

function envOf(variant: Variant, dir: string, sink: string): Record<string, string> {
  const base: Record<string, string> = {
    CG_SERVER_PORT: '0',
    CG_SUPERGRAPH: join(dir, 'supergraph.yaml'),
    CG_STORE_URL: `sqlite:${join(dir, `${variant}.db`)}`,
    CG_KEYS_KEY: `bench:${randomBytes(32).toString('base64')}`,
    CG_ADMIN_API_KEYS: 'cgk_bench-admin-key-0123456789abcdefghijklmnop',
    CG_LOG_LEVEL: 'warn',
    CG_SERVER_DRAIN_TIMEOUT_SECONDS: '0',
  };
  if (variant === 'plugin') base['BENCH_NOOP_PLUGIN'] = '1';
  if (variant.startsWith('traced')) {
    Object.assign(base, {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: sink,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: variant === 'traced-100' ? '1' : '0.01',
    });
  }
  return base;
}

async function startGateway(env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.startsWith('OTEL_') && !k.startsWith('CG_') && !k.startsWith('APOLLO_'),
    ),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY], {
    cwd: REPO,
    env: { ...clean, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /READY (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
  });
  return { url, child };
}

/** Requests per second over `ms`, from CONNECTIONS clients each sending its next request when answered. */
async function drive(url: string, ms: number): Promise<number> {
  const origin = new URL(url).origin;
  const pool = new Pool(origin, { connections: CONNECTIONS, pipelining: 1 });
  let done = 0;
  const end = performance.now() + ms;
  const client = async () => {
    while (performance.now() < end) {
      const res = await pool.request({
        method: 'POST',
        path: '/graphql',
        headers: { 'content-type': 'application/json' },
        body: QUERY,
      });
      const text = await res.body.text();
      if (res.statusCode !== 200 || !text.includes('world'))
        throw new Error(`unexpected answer ${res.statusCode} ${text}`);
      done++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, client));
  const elapsed = performance.now() - started;
  await pool.close();
  return (done * 1000) / elapsed;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cg-bench-eco-'));
  const peers = await startPeers();
  writeFileSync(join(dir, 'hello.graphql'), 'type Query { hello: String }\n');
  writeFileSync(
    join(dir, 'supergraph.yaml'),
    `federation_version: =2.9.0\nsubgraphs:\n  hello:\n    routing_url: ${peers.subgraph}/graphql\n    schema: { file: ${join(dir, 'hello.graphql')} }\n`,
  );
  const results: Record<Variant, number[]> = { prepared: [], plugin: [], 'traced-100': [], 'traced-1': [] };
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const variant of VARIANTS) {
        const { url, child } = await startGateway(envOf(variant, dir, peers.sink));
        try {
          await drive(url, WARMUP_MS);
          const rps = await drive(url, MEASURE_MS);
          results[variant].push(rps);
          process.stderr.write(`round ${round} ${variant.padEnd(10)} ${rps.toFixed(0)} req/s\n`);
        } finally {
          child.kill('SIGTERM');
          await new Promise((r) => child.once('exit', r));
        }
      }
    }
  } finally {
    peers.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const m = Object.fromEntries(VARIANTS.map((v) => [v, median(results[v])])) as Record<Variant, number>;
  const ratio = (a: number | undefined, b: number | undefined) => (a && b ? (a / b).toFixed(2) : 'not run');
  const lines = [
    `node ${process.version}, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${MEASURE_MS} ms (median req/s; each round: ${VARIANTS.join(', ')})`,
    ...VARIANTS.map(
      (v) => `  ${v.padEnd(10)} ${m[v].toFixed(0)}   (rounds: ${results[v].map((x) => x.toFixed(0)).join(', ')})`,
    ),
    `tracing off/on (100% sampled): ${ratio(m.prepared, m['traced-100'])}`,
    `tracing off/on (1% sampled):   ${ratio(m.prepared, m['traced-1'])}`,
    `plugin off/on (prepared vs one no-op plugin): ${ratio(m.prepared, m.plugin)}`,
    `OTLP bytes received by the sink: ${peers.sinkBytes()}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
