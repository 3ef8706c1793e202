/** Serves an ApolloServer on a plain node:http request (what startStandaloneServer does, without owning the server). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeaderMap, type ApolloServer, type BaseContext } from '@apollo/server';
import { GatewayError } from '../errors.js';
import { MAX_VARIABLE_DEPTH, MAX_VARIABLE_VALUES } from '../graphql/limits.js';
import { readBody } from './httpUtil.js';
import { JsonShapeMeter } from './jsonShape.js';

/**
 * Bytes of a GraphQL POST body, on both graphs: a document (at most MAX_DOCUMENT_BYTES, 64 KiB) and
 * its variables. Small, because anyone may send one and parsing it is work for the one event loop.
 */
export const MAX_GRAPHQL_BODY_BYTES = 256 * 1024;
/** The body object and the variables object enclose every variable's value. */
const MAX_BODY_DEPTH = MAX_VARIABLE_DEPTH + 2;
/** Beside the variables' values: query, operationName, variables, extensions and their members. */
const MAX_BODY_VALUES = MAX_VARIABLE_VALUES + 64;

/** Refuses, as it arrives, a JSON body that no request may carry: it is never decoded nor parsed. */
function jsonShapeCheck(): (chunk: Buffer) => GatewayError | null {
  const meter = new JsonShapeMeter(MAX_BODY_DEPTH, MAX_BODY_VALUES);
  return (chunk) => {
    const problem = meter.feed(chunk);
    if (problem === 'too-deep')
      return new GatewayError(
        'BAD_USER_INPUT',
        `request body nests JSON more than ${MAX_BODY_DEPTH} levels deep (MAX_VARIABLE_DEPTH)`,
      );
    if (problem === 'too-many-values')
      return new GatewayError(
        'BAD_USER_INPUT',
        `request body holds more than ${MAX_BODY_VALUES} JSON values (MAX_VARIABLE_VALUES)`,
      );
    return null;
  };
}

/** The body of a GraphQL POST: parsed JSON when the content type says JSON, else the text. */
export async function readGraphQLBody(req: IncomingMessage): Promise<unknown> {
  const json = (req.headers['content-type'] ?? '').includes('json');
  const text = await readBody(req, MAX_GRAPHQL_BODY_BYTES, json ? jsonShapeCheck() : undefined);
  if (!json) return text;
  try {
    return text.length ? JSON.parse(text) : undefined;
  } catch {
    throw new GatewayError('BAD_USER_INPUT', 'request body is not valid JSON');
  }
}

/** Answers a request whose body (for a POST) has been read already. */
export async function serveApollo<TContext extends BaseContext>(
  server: ApolloServer<TContext>,
  context: (req: IncomingMessage) => Promise<TContext>,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  body: unknown,
): Promise<void> {
  const headers = new HeaderMap();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  const result = await server.executeHTTPGraphQLRequest({
    httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body },
    context: () => context(req),
  });
  for (const [name, value] of result.headers) {
    // Keep a `vary` set before (CORS: Origin) beside Apollo's own.
    const before = name === 'vary' ? res.getHeader('vary') : undefined;
    res.setHeader(name, typeof before === 'string' ? `${before}, ${value}` : value);
  }
  res.statusCode = result.status ?? 200;
  if (result.body.kind === 'complete') {
    res.end(result.body.string);
    return;
  }
  for await (const chunk of result.body.asyncIterator) res.write(chunk);
  res.end();
}

export function apolloHandler<TContext extends BaseContext>(
  server: ApolloServer<TContext>,
  context: (req: IncomingMessage) => Promise<TContext>,
) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> =>
    serveApollo(server, context, req, res, url, req.method === 'POST' ? await readGraphQLBody(req) : undefined);
}
