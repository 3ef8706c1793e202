/**
 * A subgraph that misbehaves: a real HTTP server in front of the github subgraph that, on demand,
 * answers HTML, a JSON array, an error page naming a secret, far too much, or resets the
 * connection. Its fields fail with DOWNSTREAM_SERVICE_ERROR naming the subgraph, the other
 * subgraph's fields are served, nothing of what it sent is copied to the caller, and the next
 * request (prepared or not) is served normally once it behaves again.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_SUBGRAPH_RESPONSE_BYTES } from '../src/gateway/httpClient.js';
import { consentToAll } from './support/backends.js';
import { startStage, type Stage } from './support/federation.js';

type Fault = 'none' | 'html' | 'jsonArray' | 'http502' | 'huge' | 'reset' | 'nullForNonNull';

const QUERY = `{ githubTokenInfo { subject } graphTokenInfo { subject } }`;
const SECRET_IN_BODY = 'internal-stack-trace-with-db-password-hunter2';

/** Forwards to `target` until told to misbehave. */
async function startFaultyProxy(target: () => string): Promise<{ url: string; fault: Fault; close(): Promise<void> }> {
  const state = { fault: 'none' as Fault };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      switch (state.fault) {
        case 'html':
          res.writeHead(200, { 'content-type': 'text/html' }).end(`<html><body>${SECRET_IN_BODY}</body></html>`);
          return;
        case 'jsonArray':
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify([SECRET_IN_BODY]));
          return;
        case 'http502':
          res
            .writeHead(502, { 'content-type': 'application/json' })
            .end(JSON.stringify({ errors: [{ message: SECRET_IN_BODY }] }));
          return;
        case 'huge': {
          // A valid start, then more than the gateway takes: it must stop reading, not buffer it all.
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write(`{"data":{"githubTokenInfo":{"subject":"`);
          const block = Buffer.alloc(1024 * 1024, 'a');
          let sent = 0;
          const more = (): void => {
            while (sent <= MAX_SUBGRAPH_RESPONSE_BYTES + block.length) {
              sent += block.length;
              if (!res.write(block)) return void res.once('drain', more);
            }
            res.end('"}}}');
          };
          res.on('error', () => {});
          more();
          return;
        }
        case 'reset':
          req.socket.destroy();
          return;
        case 'nullForNonNull':
          // `subject: String!` answered null: a subgraph breaking its own schema.
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ data: { githubTokenInfo: { subject: null } } }));
          return;
        case 'none': {
          const upstream = new URL(target());
          const forward = httpRequest(upstream, { method: 'POST', headers: req.headers }, (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          });
          forward.end(Buffer.concat(chunks));
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    get fault() {
      return state.fault;
    },
    set fault(f: Fault) {
      state.fault = f;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('a subgraph that misbehaves', () => {
  let s: Stage;
  let proxy: Awaited<ReturnType<typeof startFaultyProxy>>;
  let alice: string;

  beforeAll(async () => {
    proxy = await startFaultyProxy(() => s.github.url);
    s = await startStage({
      editSupergraph: (yaml) => yaml.replace(/(github:\n\s+routing_url: )\S+/, `$1${proxy.url}`),
    });
    alice = await s.jwtFor('alice');
    const first = await s.query(QUERY, alice);
    expect(await consentToAll(first.body.errors, 'alice', alice)).toBe(2);
  }, 60_000);

  afterAll(async () => {
    await s?.close();
    await proxy?.close();
  });

  it('is reached through the proxy while it behaves', async () => {
    const res = await s.query(QUERY, alice);
    expect(res.body).toEqual({ data: { githubTokenInfo: { subject: 'alice' }, graphTokenInfo: { subject: 'alice' } } });
  });

  it.each([
    [
      'answers an HTML page with HTTP 200',
      'html',
      'subgraph github answered with something that is not a GraphQL response',
    ],
    ['answers a JSON array', 'jsonArray', 'subgraph github answered with something that is not a GraphQL response'],
    ['answers HTTP 502 with a body of its own', 'http502', 'subgraph github answered HTTP 502'],
    [
      'answers more than the gateway accepts',
      'huge',
      `subgraph github answered with more than ${MAX_SUBGRAPH_RESPONSE_BYTES} bytes`,
    ],
    ['resets the connection', 'reset', 'subgraph github could not be reached or did not answer in time'],
  ] as const)(
    '%s: its fields fail with DOWNSTREAM_SERVICE_ERROR, the rest is served, nothing it sent is copied',
    async (_, fault, message) => {
      proxy.fault = fault;
      try {
        // Twice: the first answer may come from the full pipeline, the second from the prepared one.
        for (let i = 0; i < 2; i++) {
          const res = await s.query(QUERY, alice);
          expect(res.status).toBe(200);
          expect(res.body.data).toEqual({ githubTokenInfo: null, graphTokenInfo: { subject: 'alice' } });
          expect(res.body.errors).toEqual([
            { message, extensions: { code: 'DOWNSTREAM_SERVICE_ERROR', serviceName: 'github' } },
          ]);
          expect(JSON.stringify(res.body)).not.toContain(SECRET_IN_BODY);
        }
      } finally {
        proxy.fault = 'none';
      }
      const healed = await s.query(QUERY, alice);
      expect(healed.body).toEqual({
        data: { githubTokenInfo: { subject: 'alice' }, graphTokenInfo: { subject: 'alice' } },
      });
    },
  );

  it('answers a subgraph that breaks its own schema (null for a non-null field) the same through both pipelines', async () => {
    proxy.fault = 'nullForNonNull';
    try {
      const full = await s.query(`${QUERY} `, alice);
      const prepared = await s.query(QUERY, alice);
      expect(prepared).toEqual(full);
      expect(prepared.body.data).toEqual({ githubTokenInfo: null, graphTokenInfo: { subject: 'alice' } });
    } finally {
      proxy.fault = 'none';
    }
  });
});
