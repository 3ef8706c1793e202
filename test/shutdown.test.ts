/**
 * Health for orchestrators: on SIGTERM the gateway process stops accepting connections, lets the
 * requests already in flight finish, then exits, and a request stuck past `server.drainTimeoutSeconds`
 * does not hold the process. The gateway runs as its own process (test/support/replica.ts) in front
 * of a real subgraph that answers only when the test lets it.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startReplica, type Replica } from './support/replicas.js';
import { tempDir, type TempDir } from './support/tmp.js';

interface HeldSubgraph {
  readonly url: string;
  /** Resolves when the gateway's fetch of `slow` has arrived (and is being held). */
  readonly arrived: Promise<void>;
  release(): void;
  close(): Promise<void>;
}

/** A subgraph whose `slow` field answers only after `release()`; anything else answers at once. */
async function startHeldSubgraph(): Promise<HeldSubgraph> {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let arrive!: () => void;
  const arrived = new Promise<void>((r) => (arrive = r));
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const answer = () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ data: { slow: 'done' } }));
      };
      if (!body.includes('slow')) return answer();
      arrive();
      void released.then(answer);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    arrived,
    release,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function writeSupergraph(dir: TempDir, subgraphUrl: string): string {
  writeFileSync(dir.file('slow.graphql'), 'type Query { slow: String }\n');
  const file = dir.file('supergraph.yaml');
  writeFileSync(
    file,
    `federation_version: =2.9.0\nsubgraphs:\n  slow:\n    routing_url: ${subgraphUrl}\n    schema: { file: ${dir.file('slow.graphql')} }\n`,
  );
  return file;
}

/** Whether a new TCP connection to the gateway is refused (its listener closed). */
function refused(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('SIGTERM drains in-flight requests, then exits', () => {
  let dir: TempDir;
  let subgraph: HeldSubgraph;
  let gateway: Replica | null = null;

  beforeEach(async () => {
    dir = await tempDir('cg-drain-');
    subgraph = await startHeldSubgraph();
  });
  afterEach(async () => {
    subgraph.release();
    await gateway?.stop();
    gateway = null;
    await subgraph.close();
    await dir.cleanup();
  });

  async function start(drainTimeoutSeconds: number): Promise<Replica> {
    gateway = await startReplica({
      CG_SUPERGRAPH: writeSupergraph(dir, subgraph.url),
      CG_STORE_URL: `sqlite:${dir.file('credentials.db')}`,
      CG_KEYS_KEY: `drain:${randomBytes(32).toString('base64')}`,
      CG_SERVER_DRAIN_TIMEOUT_SECONDS: String(drainTimeoutSeconds),
    });
    return gateway;
  }

  function querySlow(url: string): Promise<{ status: number; body: any }> {
    return fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ slow }' }),
    }).then(async (res) => ({ status: res.status, body: await res.json() }));
  }

  it('an in-flight request completes with 200 after SIGTERM while new connections are refused, then the process exits 0', async () => {
    const g = await start(30);
    const inFlight = querySlow(g.url);
    await subgraph.arrived;
    process.kill(g.pid, 'SIGTERM');
    await waitUntil(() => refused(g.url), 'new connections are refused');
    // Still draining: the held request has not been answered, so the process is still up.
    expect(
      await Promise.race([g.exited.then(() => 'exited'), new Promise((r) => setTimeout(() => r('running'), 300))]),
    ).toBe('running');
    subgraph.release();
    expect(await inFlight).toEqual({ status: 200, body: { data: { slow: 'done' } } });
    expect(await g.exited).toBe(0);
  }, 90_000);

  it('a request stuck past server.drainTimeoutSeconds does not keep the process from exiting', async () => {
    const g = await start(1);
    const inFlight = querySlow(g.url).then(
      (r) => r.status,
      () => 'connection closed',
    );
    await subgraph.arrived;
    process.kill(g.pid, 'SIGTERM');
    // The subgraph never answers: the bound, not the request, ends the drain.
    expect(await g.exited).toBe(0);
    expect(await inFlight).toBe('connection closed');
  }, 90_000);
});
