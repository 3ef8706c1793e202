/**
 * A small loopback "API" behind the gateway: a federation subgraph whose one field reports the
 * credential headers it received, recording every request's headers; plus `GET /check`, the check
 * URL of a credential (200 when `accepts` says so, else 401), and `GET /moved` (a redirect).
 *
 *   const api = await startHeaderApi('billing', { accepts: (h) => h['authorization'] === 'Bearer k' });
 *   // supergraph: routing_url api.url, schema { file: api.schemaFile }; query `{ billing { authorization apiKey } }`
 */
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { graphql, parse } from 'graphql';
import { tempDir, type TempDir } from './tmp.js';

export interface HeaderApi {
  /** `http://127.0.0.1:port/graphql` */
  readonly url: string;
  readonly origin: string;
  readonly schemaFile: string;
  /** Headers of every GraphQL request but the gateway's health checks, in order. */
  readonly seen: IncomingHttpHeaders[];
  /** Headers of every check request, in order. */
  readonly checks: IncomingHttpHeaders[];
  close(): Promise<void>;
}

export interface HeaderApiOptions {
  /** Whether `GET /check` accepts the request (200) or refuses it (401). */
  readonly accepts?: (headers: IncomingHttpHeaders) => boolean;
  /** Where `GET /moved` redirects to. */
  readonly redirectTo?: string;
}

const one = (v: string | string[] | undefined): string | null =>
  v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;

export async function startHeaderApi(field: string, options: HeaderApiOptions = {}): Promise<HeaderApi> {
  const typeName = `${field[0]!.toUpperCase()}${field.slice(1)}Headers`;
  const sdl = `extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@shareable"])
type Query { "The credential headers this API received." ${field}: ${typeName} }
type ${typeName} { authorization: String apiKey: String }
`;
  const dir: TempDir = await tempDir('cg-header-api-');
  const schemaFile = dir.file(`${field}.graphql`);
  writeFileSync(schemaFile, sdl);
  const schema = buildSubgraphSchema({
    typeDefs: parse(sdl),
    resolvers: {
      Query: {
        [field]: (_: unknown, __: unknown, ctx: IncomingHttpHeaders) => ({
          authorization: one(ctx.authorization),
          apiKey: one(ctx['x-api-key']),
        }),
      },
    } as any,
  });
  const seen: IncomingHttpHeaders[] = [];
  const checks: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (req.method === 'GET' && url.pathname === '/check') {
        checks.push(req.headers);
        return void res
          .writeHead(options.accepts?.(req.headers) ? 200 : 401, { 'content-type': 'application/json' })
          .end('{}');
      }
      if (req.method === 'GET' && url.pathname === '/moved')
        return void res.writeHead(302, { location: options.redirectTo ?? '/check' }).end();
      if (url.pathname !== '/graphql') return void res.writeHead(404).end();
      const chunks: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        query: string;
        variables?: Record<string, unknown>;
      };
      if (!/^\s*(query\s*\w*\s*)?\{\s*__typename\s*\}\s*$/.test(body.query)) seen.push(req.headers);
      const result = await graphql({
        schema,
        source: body.query,
        variableValues: body.variables ?? {},
        contextValue: req.headers,
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/graphql`,
    origin,
    schemaFile,
    seen,
    checks,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await dir.cleanup();
    },
  };
}
