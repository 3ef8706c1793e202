/**
 * `npx tsx bench/edgeInput.ts`: what hostile anonymous input at the edge costs everyone else, in one
 * run against one gateway in its own process (bench/edgeGateway.ts):
 *
 *   1. A normal federated query (`{ githubTokenInfo { subject } graphTokenInfo { subject } }`, a
 *      consented caller, tokens cached) sent back to back by one client: its latency idle, then
 *      while EDGE_HOSTILE_CLIENTS anonymous clients post, back to back, `/graphql` bodies of 1 MiB
 *      (the issue's attack), then of the largest size the gateway accepts (MAX_GRAPHQL_BODY_BYTES),
 *      their variables nested as deep as fits or holding as many keys as fit (the operation
 *      declares none), then the control: `{ __typename }`. Printed: each p50 and its ratio to idle.
 *   2. The gateway's RSS and heap (after a full collection) before and after EDGE_LONG_ID_REQUESTS
 *      `/tokens/github-01/<id>` requests by a signed-in caller, each with a distinct id of
 *      EDGE_LONG_ID_CHARS characters, and the bytes of log it wrote meanwhile.
 *
 *   EDGE_SECONDS=10 EDGE_HOSTILE_CLIENTS=4 EDGE_LONG_ID_REQUESTS=10000 EDGE_LONG_ID_CHARS=15000 npx tsx bench/edgeInput.ts
 *   EDGE_CPU_PROF=/tmp/prof npx tsx bench/edgeInput.ts     # a V8 CPU profile of the gateway
 *
 * docs/benchmarks.md has the figures before and after the edge checks.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { MAX_GRAPHQL_BODY_BYTES } from '../src/server/apolloHttp.js';
import { ADMIN_KEY } from '../test/support/app.js';
import { consentToAll, createOidcProviders, startBackends } from '../test/support/backends.js';
import type { MemoryFigures } from './edgeGateway.js';
import { percentile } from './stats.js';

const NORMAL_QUERY = JSON.stringify({ query: '{ githubTokenInfo { subject } graphTokenInfo { subject } }' });
const WARMUP_REQUESTS = 300;
/** Hostile clients start sending this long before the measured phase begins. */
const HOSTILE_RAMP_MS = 500;
const LONG_ID_CONCURRENCY = 8;

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw ? Number(raw) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer (got ${raw})`);
  return value;
}

const SETTINGS = Object.freeze({
  seconds: envInt('EDGE_SECONDS', 10),
  hostileClients: envInt('EDGE_HOSTILE_CLIENTS', 4),
  longIdRequests: envInt('EDGE_LONG_ID_REQUESTS', 10_000),
  longIdChars: envInt('EDGE_LONG_ID_CHARS', 15_000),
});

interface Answer {
  readonly status: number;
  readonly body: string;
}

function send(
  agent: Agent,
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      {
        agent,
        host: u.hostname,
        port: u.port,
        method,
        path,
        headers: { ...headers, ...(body && { 'content-length': String(body.length) }) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The hostile clients, in a worker thread: their own event loop, so that sending the bodies does
 * not delay the measuring client's. Plain JavaScript (workers do not go through tsx).
 */
const HOSTILE_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { Agent, request } = require('node:http');
const { url, clients, bytes, plain } = workerData;
function deepBody() {
  const head = '{"query":"{ __typename }","variables":{"v":';
  const levels = Math.floor((bytes - head.length - 2) / 2);
  return Buffer.from(head + '['.repeat(levels) + ']'.repeat(levels) + '}}');
}
function keysBody() {
  const head = '{"query":"{ __typename }","variables":{"v":{';
  const parts = [];
  let size = head.length + 3;
  for (let i = 0; ; i++) {
    const part = '"k' + i + '":' + i;
    if (size + part.length + 1 > bytes) break;
    parts.push(part);
    size += part.length + 1;
  }
  return Buffer.from(head + parts.join(',') + '}}}');
}
const bodies = plain ? [Buffer.from('{"query":"{ __typename }"}')] : [deepBody(), keysBody()];
const statuses = {};
let running = true;
const u = new URL(url);
function post(agent, body) {
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: u.hostname, port: u.port, method: 'POST', path: '/graphql', headers: { 'content-type': 'application/json', 'content-length': String(body.length) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
const loops = Array.from({ length: clients }, async (_, i) => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  for (let n = i; running; n++) {
    const status = await post(agent, bodies[n % bodies.length]).catch((e) => e.code || 'error');
    statuses[status] = (statuses[status] || 0) + 1;
  }
  agent.destroy();
});
parentPort.on('message', async () => {
  running = false;
  await Promise.all(loops);
  parentPort.postMessage(statuses);
});
`;

/**
 * Anonymous clients posting back to back until stopped: bodies of `bytes` (deep, then many keys),
 * or with `bytes` null the control, `{ __typename }`. Counts answers by status.
 */
function hostileClients(
  url: string,
  clients: number,
  bytes: number | null,
): { stop(): Promise<Record<string, number>> } {
  const worker = new Worker(HOSTILE_WORKER, {
    eval: true,
    workerData: { url, clients, bytes: bytes ?? 0, plain: bytes === null },
  });
  return {
    async stop() {
      worker.postMessage('stop');
      const [statuses] = (await once(worker, 'message')) as [Record<string, number>];
      await worker.terminate();
      return statuses;
    },
  };
}

class Gateway {
  readonly #child: ChildProcess;
  logBytes = 0;

  constructor(env: Record<string, string>) {
    this.#child = fork(new URL('./edgeGateway.ts', import.meta.url).pathname, [], {
      execArgv: [
        ...process.execArgv,
        '--expose-gc',
        ...(process.env['EDGE_CPU_PROF'] ? ['--cpu-prof', `--cpu-prof-dir=${process.env['EDGE_CPU_PROF']}`] : []),
      ],
      env: { ...process.env, ...env, APOLLO_TELEMETRY_DISABLED: '1', NODE_ENV: 'production' },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    this.#child.stdout!.on('data', (c: Buffer) => (this.logBytes += c.length));
  }

  async ready(): Promise<string> {
    const [m] = (await once(this.#child, 'message')) as [{ type: string; url: string }];
    if (m.type !== 'ready') throw new Error(`gateway said ${m.type}`);
    return m.url;
  }

  async memory(): Promise<MemoryFigures> {
    this.#child.send({ type: 'memory' });
    const [m] = (await once(this.#child, 'message')) as [MemoryFigures];
    return m;
  }

  async stop(): Promise<void> {
    const exited = once(this.#child, 'exit');
    this.#child.send({ type: 'stop' });
    await exited;
  }
}

interface Latency {
  readonly requests: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
}

async function normalQueries(url: string, jwt: string, seconds: number): Promise<Latency> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${jwt}` };
  const body = Buffer.from(NORMAL_QUERY);
  const samples: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const started = performance.now();
    const r = await send(agent, url, 'POST', '/graphql', headers, body);
    samples.push(performance.now() - started);
    if (r.status !== 200 || r.body.includes('"errors"'))
      throw new Error(`normal query failed: ${r.status} ${r.body.slice(0, 300)}`);
  }
  agent.destroy();
  samples.sort((a, b) => a - b);
  return { requests: samples.length, p50Ms: percentile(samples, 0.5), p95Ms: percentile(samples, 0.95) };
}

async function longIds(url: string, jwt: string, requests: number, chars: number): Promise<Record<string, number>> {
  const statuses: Record<string, number> = {};
  let next = 0;
  const filler = 'x'.repeat(chars);
  await Promise.all(
    Array.from({ length: LONG_ID_CONCURRENCY }, async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      for (let i = next++; i < requests; i = next++) {
        const id = `${i}-${filler}`.slice(0, chars);
        const r = await send(agent, url, 'GET', `/tokens/github-01/${id}`, { authorization: `Bearer ${jwt}` });
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      }
      agent.destroy();
    }),
  );
  return statuses;
}

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

async function main(): Promise<void> {
  const b = await startBackends({ accessTokenTtlSeconds: 3_600 });
  const gateway = new Gateway({
    CG_SERVER_HOST: '127.0.0.1',
    CG_SERVER_PORT: '0',
    CG_ADMIN_API_KEYS: ADMIN_KEY,
    CG_OAUTH_ALLOW_INSECURE_HTTP: 'true',
    CG_OAUTH_ALLOW_PRIVATE_NETWORKS: 'true',
    CG_LOG_LEVEL: 'info',
    CG_STORE_URL: `sqlite:${b.dir.file('credentials.db')}`,
    CG_KEYS_KEY: `bench:${randomBytes(32).toString('base64')}`,
    CG_SUPERGRAPH: b.supergraphFile,
    CG_IDENTITY_ISSUERS: JSON.stringify([b.idp.issuerConfig()]),
  });
  try {
    const url = await gateway.ready();
    const admin = async (query: string, variables?: Record<string, unknown>) => {
      const res = await fetch(`${url}/admin/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': ADMIN_KEY },
        body: JSON.stringify({ query, variables }),
      });
      return (await res.json()) as { errors?: unknown[] };
    };
    await createOidcProviders(admin, b);
    const alice = await b.idp.sign({ sub: 'alice' }, { expiresIn: 3_600 });
    const first = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${alice}` },
      body: NORMAL_QUERY,
    });
    await consentToAll(((await first.json()) as { errors?: [] }).errors, 'alice', alice);

    console.log(`${SETTINGS.hostileClients} anonymous clients sending back to back; ${SETTINGS.seconds} s per phase`);
    await normalQueries(url, alice, Math.max(1, WARMUP_REQUESTS / 500));
    const idle = await normalQueries(url, alice, SETTINGS.seconds);
    const line = (label: string, l: Latency) =>
      console.log(
        `${label.padEnd(58)} p50 ${l.p50Ms.toFixed(2).padStart(8)} ms  p95 ${l.p95Ms.toFixed(2).padStart(8)} ms  (${l.requests} requests)  p50 ratio to idle ${(l.p50Ms / idle.p50Ms).toFixed(2)}`,
      );
    line('normal query, idle', idle);
    const phases: readonly [string, number | null][] = [
      ['1 MiB bodies, variables deep or with many keys (the issue)', 2 ** 20],
      [`${MAX_GRAPHQL_BODY_BYTES}-byte bodies (the largest accepted), deep or many keys`, MAX_GRAPHQL_BODY_BYTES],
      ['control: `{ __typename }`, a small valid query', null],
    ];
    for (const [label, bytes] of phases) {
      const hostile = hostileClients(url, SETTINGS.hostileClients, bytes);
      await new Promise((r) => setTimeout(r, HOSTILE_RAMP_MS));
      const attacked = await normalQueries(url, alice, SETTINGS.seconds);
      const statuses = await hostile.stop();
      line(`normal query, while: ${label}`, attacked);
      console.log(`    their answers by status: ${JSON.stringify(statuses)}`);
    }

    const before = await gateway.memory();
    const logBefore = gateway.logBytes;
    const started = performance.now();
    const statuses = await longIds(url, alice, SETTINGS.longIdRequests, SETTINGS.longIdChars);
    const seconds = (performance.now() - started) / 1000;
    const after = await gateway.memory();
    console.log(
      `${SETTINGS.longIdRequests} /tokens requests with distinct ${SETTINGS.longIdChars}-character ids in ${seconds.toFixed(1)} s, answers by status: ${JSON.stringify(statuses)}`,
    );
    console.log(
      `  RSS  ${mib(before.rssBytes)} → ${mib(after.rssBytes)} MiB (${after.rssBytes >= before.rssBytes ? '+' : ''}${mib(after.rssBytes - before.rssBytes)})`,
    );
    console.log(
      `  heap ${mib(before.heapUsedBytes)} → ${mib(after.heapUsedBytes)} MiB (${after.heapUsedBytes >= before.heapUsedBytes ? '+' : ''}${mib(after.heapUsedBytes - before.heapUsedBytes)}), after a full collection`,
    );
    console.log(`  log written meanwhile: ${mib(gateway.logBytes - logBefore)} MiB`);
  } finally {
    await gateway.stop();
    await b.close();
  }
}

await main();
