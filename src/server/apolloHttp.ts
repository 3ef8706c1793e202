/** Serves an ApolloServer on a plain node:http request (what startStandaloneServer does, without owning the server). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeaderMap, type ApolloServer, type BaseContext } from '@apollo/server';
import { GatewayError } from '../errors.js';
import { readBody, sendJson } from './httpUtil.js';

export const MAX_GRAPHQL_BODY_BYTES = 1_048_576;

export function apolloHandler<TContext extends BaseContext>(
  server: ApolloServer<TContext>,
  context: (req: IncomingMessage) => Promise<TContext>,
) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const headers = new HeaderMap();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    }
    let body: unknown = undefined;
    if (req.method === 'POST') {
      const text = await readBody(req, MAX_GRAPHQL_BODY_BYTES);
      if ((headers.get('content-type') ?? '').includes('json')) {
        try {
          body = text.length ? JSON.parse(text) : undefined;
        } catch {
          return sendJson(res, new GatewayError('BAD_USER_INPUT', 'request body is not valid JSON'));
        }
      } else body = text;
    }
    const result = await server.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body },
      context: () => context(req),
    });
    for (const [name, value] of result.headers) res.setHeader(name, value);
    res.statusCode = result.status ?? 200;
    if (result.body.kind === 'complete') {
      res.end(result.body.string);
      return;
    }
    for await (const chunk of result.body.asyncIterator) res.write(chunk);
    res.end();
  };
}
