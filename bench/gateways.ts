/**
 * One gateway under test, run as a child process of bench/run.ts: told which kind to start, it
 * answers with its URL, then reports its own CPU time on request so that run.ts can charge each
 * case the gateway CPU it used per request.
 *
 *   stock            @apollo/gateway + @apollo/server standalone, default data source and fetcher
 *   stock-keepalive  the same, with undici's fetch over our gateway's kept-alive pool (src/gateway/httpClient.ts)
 *   ours             startApp(config): caller JWT, per-subgraph tokens from the store, cache on
 *   hive             @graphql-hive/gateway (bench/node_modules) forwarding the caller's Authorization,
 *                    with its in-flight de-duplication of identical subgraph calls turned off
 *   hive-dedupe      the same with Hive's defaults (identical concurrent subgraph calls shared)
 */
import { createWriteStream } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { fetch as undiciFetch, type Dispatcher } from 'undici';
import { validateConfig } from '../src/config/schema.js';
import { createSubgraphHttpClient } from '../src/gateway/httpClient.js';
import { createLogger } from '../src/log.js';
import { startApp } from '../src/server/wire.js';
import type { FromGateway, GatewayStart, ToGateway } from './protocol.js';

/** The specifier is a variable so that `tsc` never needs bench/node_modules (CI does not install it). */
const HIVE_PACKAGE = '@graphql-hive/gateway';
const SUBGRAPH_TIMEOUT_MS = 30_000;
const requireHere = createRequire(import.meta.url);

interface Running {
  readonly url: string;
  readonly version: string;
  stop(): Promise<void>;
}

function versionOf(pkg: string): string {
  try {
    return (requireHere(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

type Fetcher = NonNullable<NonNullable<ConstructorParameters<typeof RemoteGraphQLDataSource>[0]>['fetcher']>;

/** undici's fetch over our gateway's kept-alive pool, in the shape stock Apollo's data source takes. */
function fetcherOver(dispatcher: Dispatcher): Fetcher {
  return ((url: string, init?: Record<string, unknown>) =>
    undiciFetch(url, { ...(init as object), dispatcher })) as unknown as Fetcher;
}

async function startStock(sdl: string, keepAlive: boolean): Promise<Running> {
  const http = keepAlive ? createSubgraphHttpClient({ timeoutMs: SUBGRAPH_TIMEOUT_MS }) : null;
  const gateway = new ApolloGateway({
    supergraphSdl: sdl,
    ...(http && {
      buildService: ({ url }) => new RemoteGraphQLDataSource({ url: url!, fetcher: fetcherOver(http.dispatcher) }),
    }),
  });
  const server = new ApolloServer({ gateway });
  const { url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } });
  return {
    url: new URL('/graphql', url).href,
    version: `@apollo/gateway ${versionOf('@apollo/gateway')}`,
    async stop() {
      await server.stop();
      await http?.close();
    },
  };
}

async function startOurs(raw: Record<string, unknown>, logFile: string): Promise<Running> {
  const config = validateConfig(raw);
  const log = createWriteStream(logFile, { flags: 'a' });
  const app = await startApp(config, { logger: createLogger(config.log.level, log) });
  return {
    url: `${app.url}/graphql`,
    version: `credential-gateway ${(requireHere('../package.json') as { version: string }).version}`,
    async stop() {
      await app.close();
      log.end();
    },
  };
}

interface HiveRuntime {
  (req: unknown, res: unknown): void;
  dispose?(): Promise<void> | void;
}
interface HiveModule {
  createGatewayRuntime(options: Record<string, unknown>): HiveRuntime;
}

async function startHive(sdl: string, dedupe: boolean): Promise<Running> {
  const hive = (await import(HIVE_PACKAGE).catch((e: unknown) => {
    const missing =
      (e as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND' &&
      String((e as Error).message).includes(`'${HIVE_PACKAGE}'`);
    if (missing) throw new Error(`${HIVE_PACKAGE} is not installed (cd bench && npm install)`);
    throw e;
  })) as HiveModule;
  const gateway = hive.createGatewayRuntime({
    supergraph: sdl,
    logging: false,
    // One user sending one query 32 times at once is where sharing subgraph calls pays most, and
    // real traffic (many users, many tokens) rarely; off, every gateway here does the same work.
    ...(dedupe ? {} : { transportEntries: { '*.http': { options: { deduplicateInflightRequests: false } } } }),
    propagateHeaders: {
      fromClientToSubgraphs: ({ request }: { request: Request }) => ({
        authorization: request.headers.get('authorization'),
      }),
    },
  });
  const server: Server = createServer(gateway as never);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    version: `@graphql-hive/gateway ${versionOf(`${HIVE_PACKAGE}`)}`,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await gateway.dispose?.();
    },
  };
}

function start(spec: GatewayStart): Promise<Running> {
  switch (spec.kind) {
    case 'stock':
      return startStock(spec.supergraphSdl!, false);
    case 'stock-keepalive':
      return startStock(spec.supergraphSdl!, true);
    case 'ours':
      return startOurs(spec.config!, spec.logFile!);
    case 'hive':
      return startHive(spec.supergraphSdl!, false);
    case 'hive-dedupe':
      return startHive(spec.supergraphSdl!, true);
  }
}

function send(message: FromGateway): void {
  process.send?.(message);
}

if (process.send !== undefined) {
  // Under 32 concurrent requests Hive's runtime adds more than 10 abort listeners to one signal and
  // Node prints a leak warning into the table; it is Hive's and says nothing about the figures.
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (w.name !== 'MaxListenersExceededWarning') console.warn(w);
  });
  // Apollo's gateway reports to an outside host unless told not to; nothing leaves loopback here.
  process.env['APOLLO_TELEMETRY_DISABLED'] = '1';
  let running: Running | null = null;
  process.on('message', (message: ToGateway) => {
    switch (message.type) {
      case 'start':
        start(message.start).then(
          (r) => {
            running = r;
            send({ type: 'started', url: r.url, version: r.version });
          },
          (e: unknown) =>
            send({ type: 'unavailable', reason: e instanceof Error ? e.message.split('\n')[0]! : String(e) }),
        );
        return;
      case 'cpu':
        return send({ type: 'cpu', id: message.id, usage: process.cpuUsage() });
      case 'stop':
        void (running?.stop() ?? Promise.resolve())
          .catch(() => {})
          // Exiting (rather than waiting for handles to drain) also writes a --cpu-prof profile.
          .then(() => process.send?.({ type: 'stopped' } satisfies FromGateway, () => process.exit(0)));
        return;
    }
  });
}
