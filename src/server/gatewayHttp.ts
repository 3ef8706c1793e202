/**
 * `/graphql`: a POST of an operation the federated graph has prepared before is answered without
 * Apollo Server's HTTP and request pipeline; everything else (GET, the landing page, first sight
 * of an operation or of an Accept header, batches, persisted queries, any error Apollo would
 * answer itself) goes through Apollo Server, exactly as it would without this path.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LRUCache } from 'lru-cache';
import { isRecord } from '../values.js';
import type { FederatedGraph, GraphQLPost } from '../gateway/gateway.js';
import type { Counter } from '../observability/metrics.js';
import { ATTR, inSpan, type Span } from '../tracing/spans.js';
import { readGraphQLBody, serveApollo } from './apolloHttp.js';

/** The media types of Apollo's single-result answers; the short path answers in one of them only. */
const SINGLE_RESULT_CONTENT_TYPES: ReadonlySet<string> = new Set([
  'application/json; charset=utf-8',
  'application/graphql-response+json; charset=utf-8',
]);
/** Distinct Accept headers whose negotiated media type is remembered (clients send few). */
const MAX_REMEMBERED_ACCEPT_HEADERS = 256;
/** A media type refused outright (`q=0`): Apollo's error answers then fall back to JSON, which proves nothing. */
const REFUSED_MEDIA_TYPE = /;\s*q=0(?:\.0*)?\s*(?:[,;]|$)/i;

/**
 * Whether Apollo's answer shows what it negotiates for this Accept header. Its error answers fall
 * back to JSON when nothing acceptable is left, where an execution would have been refused (406):
 * only a 200 for a header that names the chosen type (or anything) is taken as its choice.
 */
function showsNegotiation(accept: string, status: number, chosen: string): boolean {
  if (status !== 200 || REFUSED_MEDIA_TYPE.test(accept)) return false;
  if (accept === '' || accept.includes('*/*') || accept.includes('application/*')) return true;
  return accept.includes(chosen.slice(0, chosen.indexOf(';')));
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
  return req.method === 'POST' && (req.headers['content-type'] ?? '').startsWith('application/json');
}

/** `operations` counts requests by the pipeline that answered them ({pipeline: prepared | full}). */
export function federatedGraphHandler(graph: FederatedGraph, operations: Counter) {
  const context = (req: IncomingMessage) => graph.context(req);
  // Apollo's content negotiation, as its own answers showed it: the short path answers an Accept
  // header only once the full pipeline has answered it with a single-result media type.
  const negotiated = new LRUCache<string, string>({ max: MAX_REMEMBERED_ACCEPT_HEADERS });
  return (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> =>
    inSpan('graphql.operation', {}, (span) => serve(span, req, res, url));

  async function serve(span: Span, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const body = req.method === 'POST' ? await readGraphQLBody(req) : undefined;
    const operationName = isRecord(body) && typeof body['operationName'] === 'string' ? body['operationName'] : null;
    if (operationName !== null && span.isRecording()) span.setAttribute(ATTR.operationName, operationName);
    const accept = req.headers.accept ?? '';
    const contentType = negotiated.get(accept);
    const post = contentType !== undefined && mayTakeShortPath(req) ? plainPost(body) : null;
    const answer = post && (await graph.executePrepared(post, req));
    operations.inc({ pipeline: answer ? 'prepared' : 'full' });
    span.setAttribute(ATTR.pipeline, answer ? 'prepared' : 'full');
    if (answer) {
      res.writeHead(answer.status, { 'content-type': contentType!, 'cache-control': 'no-store' });
      res.end(answer.body);
      return;
    }
    await serveApollo(graph.apollo, context, req, res, url, body);
    const chosen = res.getHeader('content-type');
    if (
      req.method === 'POST' &&
      typeof chosen === 'string' &&
      SINGLE_RESULT_CONTENT_TYPES.has(chosen) &&
      showsNegotiation(accept, res.statusCode, chosen)
    )
      negotiated.set(accept, chosen);
  }
}
