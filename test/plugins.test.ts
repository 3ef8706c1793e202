/**
 * Apollo Server plugins see every operation: the prepared pipeline (which skips Apollo Server's
 * request pipeline for repeats) steps aside while any is configured. GraphOS usage reporting, a
 * plugin too, reports every operation to a local fake ingress when APOLLO_KEY and APOLLO_GRAPH_REF
 * are set, and nothing else is contacted.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { Report } from '@apollo/usage-reporting-protobuf';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { Agent, getGlobalDispatcher, setGlobalDispatcher, type Dispatcher } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayContext } from '../src/gateway/dataSource.js';
import { graphosFromEnv } from '../src/gateway/graphos.js';
import { startTestApp, type TestApp, type TestAppOptions } from './support/app.js';
import { tempDir, type TempDir } from './support/tmp.js';

const QUERY = '{ hello }';
const REPEATS = 6;

interface Recorded {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
}

/** A loopback HTTP server that records every request and answers with `answer(path, body)`. */
async function startRecorder(
  answer: (path: string, body: Buffer) => unknown,
): Promise<{ url: string; requests: Recorded[]; close(): Promise<void> }> {
  const requests: Recorded[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ path: req.url ?? '', headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer(req.url ?? '', body)));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Counts every hook of Apollo Server's request pipeline it is shown. */
function countingPlugin(): { plugin: ApolloServerPlugin<GatewayContext>; counts: Record<string, number> } {
  const counts = { requestDidStart: 0, didResolveOperation: 0, executionDidStart: 0, willSendResponse: 0 };
  return {
    counts,
    plugin: {
      async requestDidStart() {
        counts.requestDidStart++;
        return {
          async didResolveOperation() {
            counts.didResolveOperation++;
          },
          async executionDidStart() {
            counts.executionDidStart++;
          },
          async willSendResponse() {
            counts.willSendResponse++;
          },
        };
      },
    },
  };
}

describe('Apollo Server plugins and GraphOS reporting', () => {
  let dir: TempDir;
  let subgraph: Awaited<ReturnType<typeof startRecorder>>;
  let supergraphFile: string;
  let t: TestApp | null = null;

  beforeAll(async () => {
    dir = await tempDir('cg-plugins-');
    subgraph = await startRecorder(() => ({ data: { hello: 'world' } }));
    writeFileSync(dir.file('hello.graphql'), 'type Query { hello: String }\n');
    supergraphFile = dir.file('supergraph.yaml');
    writeFileSync(
      supergraphFile,
      `federation_version: =2.9.0\nsubgraphs:\n  hello:\n    routing_url: ${subgraph.url}/graphql\n    schema: { file: ${dir.file('hello.graphql')} }\n`,
    );
  });
  afterEach(async () => {
    await t?.close();
    t = null;
  });
  afterAll(async () => {
    await subgraph.close();
    await dir.cleanup();
  });

  async function start(options: TestAppOptions): Promise<TestApp> {
    t = await startTestApp({ supergraph: supergraphFile }, options);
    return t;
  }

  async function queryRepeatedly(app: TestApp): Promise<void> {
    for (let i = 0; i < REPEATS; i++) {
      const res = await fetch(`${app.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: QUERY }),
      });
      expect({ status: res.status, body: await res.json() }).toEqual({
        status: 200,
        body: { data: { hello: 'world' } },
      });
    }
  }

  async function pipelines(app: TestApp): Promise<{ full: number; prepared: number }> {
    const text = await (await fetch(`${app.url}/metrics`)).text();
    const count = (pipeline: string) =>
      Number(new RegExp(`^cg_graphql_operations_total\\{pipeline="${pipeline}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    return { full: count('full'), prepared: count('prepared') };
  }

  it('without plugins, repeats of an operation take the prepared pipeline (what a plugin would miss)', async () => {
    const app = await start({});
    await queryRepeatedly(app);
    expect(await pipelines(app)).toEqual({ full: 1, prepared: REPEATS - 1 });
  });

  it('a plugin sees every hook of every operation, repeats included, and the step-aside is logged', async () => {
    const { plugin, counts } = countingPlugin();
    const logLines: string[] = [];
    const app = await start({ plugins: [plugin], logLines });
    await queryRepeatedly(app);
    expect(counts).toEqual({
      requestDidStart: REPEATS,
      didResolveOperation: REPEATS,
      executionDidStart: REPEATS,
      willSendResponse: REPEATS,
    });
    expect(await pipelines(app)).toEqual({ full: REPEATS, prepared: 0 });
    expect(logLines.some((l) => l.includes('the prepared pipeline is off'))).toBe(true);
  });

  describe('GraphOS reporting to a local fake endpoint', () => {
    let ingress: Awaited<ReturnType<typeof startRecorder>>;
    let previous: Dispatcher;
    const origins: string[] = [];

    beforeAll(async () => {
      ingress = await startRecorder((path) =>
        path.startsWith('/schema')
          ? {
              data: {
                me: { __typename: 'ServiceMutation' },
                reportSchema: { __typename: 'ReportSchemaResponse', inSeconds: 3600, withCoreSchema: false },
              },
            }
          : {},
      );
      // Every fetch of this process (Apollo's reporting uses the global one) is recorded by origin.
      previous = getGlobalDispatcher();
      const agent = new Agent();
      const recording = Object.create(agent) as Agent;
      recording.dispatch = (opts, handler) => {
        origins.push(String(opts.origin));
        return agent.dispatch(opts, handler);
      };
      setGlobalDispatcher(recording);
    });
    afterAll(async () => {
      setGlobalDispatcher(previous);
      await ingress.close();
    });

    it('stays off unless both APOLLO_KEY and APOLLO_GRAPH_REF are set', () => {
      expect(graphosFromEnv({})).toBeNull();
      expect(graphosFromEnv({ APOLLO_KEY: 'service:g:secret' })).toBeNull();
      expect(graphosFromEnv({ APOLLO_GRAPH_REF: 'g@current' })).toBeNull();
      expect(() =>
        graphosFromEnv({
          APOLLO_KEY: 'k',
          APOLLO_GRAPH_REF: 'g@current',
          APOLLO_USAGE_REPORTING_ENDPOINT_URL: 'ftp://x',
        }),
      ).toThrow(/APOLLO_USAGE_REPORTING_ENDPOINT_URL must be an http\(s\) URL/);
    });

    it('reports usage of every operation, repeats included, and the schema, to the configured endpoints only', async () => {
      const graphos = graphosFromEnv({
        APOLLO_KEY: 'service:cg-test:not-a-real-key',
        APOLLO_GRAPH_REF: 'cg-test@current',
        APOLLO_SCHEMA_REPORTING: 'true',
        APOLLO_USAGE_REPORTING_ENDPOINT_URL: ingress.url,
        APOLLO_SCHEMA_REPORTING_ENDPOINT_URL: `${ingress.url}/schema`,
      })!;
      const app = await start({ graphos });
      await queryRepeatedly(app);
      expect(await pipelines(app)).toEqual({ full: REPEATS, prepared: 0 });
      // Schema reporting waits a random 0–10 s before its first report.
      const deadline = Date.now() + 20_000;
      while (!ingress.requests.some((r) => r.path === '/schema') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      // Stopping sends the usage report still buffered.
      await app.close();
      t = null;

      const usage = ingress.requests.filter((r) => r.path === '/api/ingress/traces');
      expect(usage.length).toBeGreaterThan(0);
      expect(usage.every((r) => r.headers['x-api-key'] === 'service:cg-test:not-a-real-key')).toBe(true);
      let operations = 0;
      for (const r of usage) {
        const report = Report.decode(gunzipSync(r.body));
        expect(report.header?.graphRef).toBe('cg-test@current');
        for (const entry of Object.values(report.tracesPerQuery ?? {})) {
          operations += entry.trace?.length ?? 0;
          for (const s of (entry.statsWithContext ?? []) as { queryLatencyStats?: { requestCount?: unknown } | null }[])
            operations += Number(s.queryLatencyStats?.requestCount ?? 0);
        }
      }
      expect(operations).toBe(REPEATS);

      const schema = ingress.requests.filter((r) => r.path === '/schema');
      expect(schema.length).toBeGreaterThan(0);
      expect(JSON.parse(schema[0]!.body.toString('utf8')).variables.report.graphRef).toBe('cg-test@current');
      // Nothing but loopback: the fake ingress (and nothing else went through the global fetch).
      expect([...new Set(origins)].filter((o) => !o.startsWith('http://127.0.0.1:'))).toEqual([]);
      expect(origins.length).toBeGreaterThan(0);
    }, 60_000);
  });
});
