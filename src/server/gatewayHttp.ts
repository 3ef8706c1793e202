/**
 * `/graphql`: a POST of an operation the federated graph has prepared before is answered without
 * Apollo Server's HTTP and request pipeline; everything else (GET, the landing page, first sight
 * of an operation, batches, persisted queries, other media types, any error Apollo would answer
 * itself) goes through Apollo Server, exactly as it would without this path.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FederatedGraph, GraphQLPost } from '../gateway/gateway.js';
import type { Counter } from '../observability/metrics.js';
import { readGraphQLBody, serveApollo } from './apolloHttp.js';

/** Accept headers for which Apollo answers `application/json` (any other: the full pipeline decides). */
const PLAIN_JSON_ACCEPT: ReadonlySet<string | undefined> = new Set([undefined, '', '*/*', 'application/json', 'application/json, */*', 'application/json,*/*']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Only the three plain fields, well typed; anything more (extensions: persisted queries) is Apollo's. */
function plainPost(body: unknown): GraphQLPost | null {
  if (!isRecord(body) || typeof body['query'] !== 'string') return null;
  const { query, operationName = null, variables = null, ...rest } = body;
  if (Object.keys(rest).length > 0) return null;
  if (operationName !== null && typeof operationName !== 'string') return null;
  if (variables !== null && !isRecord(variables)) return null;
  return { query, operationName, variables };
}

function mayTakeShortPath(req: IncomingMessage): boolean {
  return (
    req.method === 'POST' &&
    (req.headers['content-type'] ?? '').startsWith('application/json') &&
    PLAIN_JSON_ACCEPT.has(req.headers.accept) &&
    // Apollo Gateway shows its query plan on this header outside production.
    req.headers['apollo-query-plan-experimental'] === undefined
  );
}

/** `operations` counts requests by the pipeline that answered them ({pipeline: prepared | full}). */
export function federatedGraphHandler(graph: FederatedGraph, operations: Counter) {
  const context = (req: IncomingMessage) => graph.context(req);
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const body = req.method === 'POST' ? await readGraphQLBody(req) : undefined;
    const post = mayTakeShortPath(req) ? plainPost(body) : null;
    const answer = post && (await graph.executePrepared(post, req.headers.authorization));
    operations.inc({ pipeline: answer ? 'prepared' : 'full' });
    if (!answer) return serveApollo(graph.apollo, context, req, res, url, body);
    res.writeHead(answer.status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(answer.body);
  };
}
