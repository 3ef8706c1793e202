/**
 * The HTTP side of a sample subgraph: a node:http server in front of Apollo Server that records
 * each request's Authorization header and authenticates every operation except the gateway's
 * `{ __typename }` health check (and, with `allowAnonymous`, requests that carry no token at all).
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLSchemaModule } from '@apollo/subgraph/dist/buildSubgraphSchema.js';
import { Kind, parse, type GraphQLSchema } from 'graphql';
import { createTokenVerifier, unauthenticated, type TokenClaims, type TokenOptions } from './auth.js';

const MAX_BODY_BYTES = 1024 * 1024;
/** Apollo's start-up notices (inline tracing enabled) are noise in tests and demos; warnings stay. */
const QUIET_LOGGER = Object.freeze({ debug() {}, info() {}, warn: console.warn, error: console.error });

export interface SubgraphOptions extends TokenOptions {
  /** Default 0: any free port. */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /**
   * Serve requests without an Authorization header as this subject instead of answering 401: for
   * benchmarking gateways that send no tokens (bench/). A token that is sent is still verified.
   */
  readonly allowAnonymous?: { readonly subject: string } | null;
}

export interface RunningSubgraph {
  /** `http://host:port/graphql` */
  readonly url: string;
  /** The Authorization header of every request received, in order (null: none was sent). */
  /** Per request: its Authorization header and W3C `traceparent` (null when absent). */
  readonly seen: { authorization: string | null; traceparent: string | null }[];
  close(): Promise<void>;
}

/** Resolver context: the verified claims, null only for a health check. */
export interface SubgraphContext {
  readonly claims: TokenClaims | null;
}

/** The claims of an authenticated operation (resolvers run for nothing else, `__typename` aside). */
export function claimsOf(context: SubgraphContext): TokenClaims {
  if (context.claims === null) throw unauthenticated('a bearer access token is required');
  return context.claims;
}

/** Health checks select `__typename` only; they carry no user token and reveal no data. */
function isTypenameOnly(query: unknown): boolean {
  if (typeof query !== 'string') return false;
  try {
    return parse(query).definitions.every(
      (d) =>
        d.kind === Kind.OPERATION_DEFINITION &&
        d.operation === 'query' &&
        d.selectionSet.selections.every((s) => s.kind === Kind.FIELD && s.name.value === '__typename'),
    );
  } catch {
    return false;
  }
}

async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function serveSubgraph(schema: GraphQLSchema, options: SubgraphOptions): Promise<RunningSubgraph> {
  // close() stops it; Apollo's own signal handler would race that stop, and a second stop() during a
  // stop never settles (@apollo/server 5.5.1).
  const apollo = new ApolloServer<SubgraphContext>({
    schema,
    introspection: true,
    logger: QUIET_LOGGER,
    stopOnTerminationSignals: false,
  });
  await apollo.start();
  const verify = createTokenVerifier(options);
  const anonymous: TokenClaims | null = options.allowAnonymous
    ? Object.freeze({ sub: options.allowAnonymous.subject })
    : null;
  const claimsFor = (
    query: unknown,
    authorization: string | null,
  ): Promise<TokenClaims | null> | TokenClaims | null => {
    if (isTypenameOnly(query)) return null;
    if (authorization === null && anonymous !== null) return anonymous;
    return verify(authorization);
  };
  const seen: { authorization: string | null; traceparent: string | null }[] = [];

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== '/graphql') return void res.writeHead(404).end();
      const authorization = req.headers.authorization ?? null;
      const traceparent = typeof req.headers.traceparent === 'string' ? req.headers.traceparent : null;
      seen.push(Object.freeze({ authorization, traceparent }));
      const text = await readBody(req);
      if (text === null) return void res.writeHead(413).end();
      let body: unknown;
      if (/json/i.test(req.headers['content-type'] ?? '') && text !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          return void res.writeHead(400, { 'content-type': 'text/plain' }).end('request body is not JSON');
        }
      }
      const headers = new HeaderMap();
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
      }
      const query =
        req.method === 'GET' ? url.searchParams.get('query') : (body as { query?: unknown } | undefined)?.query;
      const response = await apollo.executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: (req.method ?? 'GET').toUpperCase(), headers, search: url.search, body },
        context: async () => ({ claims: await claimsFor(query, authorization) }),
      });
      for (const [name, value] of response.headers) res.setHeader(name, value);
      res.statusCode = response.status ?? 200;
      if (response.body.kind === 'complete') return void res.end(response.body.string);
      for await (const chunk of response.body.asyncIterator) res.write(chunk);
      res.end();
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;

  return Object.freeze({
    url: `http://${host}:${port}/graphql`,
    seen,
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await apollo.stop();
    },
  });
}

/** The CLI of a sample subgraph: options from PORT, HOST, ISSUER, AUDIENCE and JWKS_URI. */
export async function runFromEnv(
  name: string,
  start: (options: SubgraphOptions) => Promise<RunningSubgraph>,
  defaultPort: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const issuer = env['ISSUER'];
  const audience = env['AUDIENCE'];
  const port = env['PORT'] ? Number(env['PORT']) : defaultPort;
  if (!issuer || !audience || !Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`${name}: set ISSUER and AUDIENCE (and optionally JWKS_URI, PORT 0-65535, HOST)`);
    process.exitCode = 1;
    return;
  }
  const running = await start({
    issuer,
    audience,
    jwksUri: env['JWKS_URI'] || null,
    port,
    host: env['HOST'] || '127.0.0.1',
  });
  console.log(`${name} subgraph listening at ${running.url}`);
  const stop = (): void => void running.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** A sample subgraph's schema: its SDL file (`sdl`, next to its server) with its resolvers. */
export function subgraphSchema(sdl: URL, resolvers: GraphQLSchemaModule['resolvers']): GraphQLSchema {
  const typeDefs = parse(readFileSync(sdl, 'utf8'));
  return buildSubgraphSchema([{ typeDefs, resolvers }]);
}

/** Runs the subgraph's CLI (runFromEnv) when the module at `moduleUrl` is the one node was started with. */
export async function runIfMain(
  moduleUrl: string,
  name: string,
  start: (options: SubgraphOptions) => Promise<RunningSubgraph>,
  defaultPort: number,
): Promise<void> {
  if (process.argv[1] !== undefined && moduleUrl === pathToFileURL(process.argv[1]).href) {
    await runFromEnv(name, start, defaultPort);
  }
}
