/**
 * One subgraph's data source: attaches the access token its binding names, and only that one.
 * Health checks and schema loads have no request context, so they never carry a user's token.
 * A subgraph's failure becomes a DOWNSTREAM_SERVICE_ERROR naming the subgraph; its HTTP error
 * body, and whatever it answered that is not a GraphQL response, stay out of our clients' answers.
 */
import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import { asGatewayError, toGraphQLExtensions } from '../errors.js';
import { headerValue } from '../providers/credentials.js';
import type { AccessToken } from '../tokens/tokenSource.js';
import { ATTR, injectTraceContext, inSpan, SpanKind } from '../tracing/spans.js';
import {
  MAX_SUBGRAPH_RESPONSE_BYTES,
  SubgraphResponseTooLarge,
  type SubgraphHttpClient,
  type SubgraphHttpResponse,
} from './httpClient.js';

export interface GatewayContext {
  /** Per request: the token each subgraph needs, resolved once per binding (keyed by subgraph name). */
  readonly tokens: DataLoader<string, AccessToken | null, string>;
}

type GatewayGraphQLResponse = Awaited<ReturnType<GraphQLDataSource['process']>>;

function hasTokens(context: unknown): context is GatewayContext {
  return typeof context === 'object' && context !== null && 'tokens' in context;
}

function isJsonContentType(contentType: string | null): boolean {
  return (
    contentType !== null &&
    (contentType.startsWith('application/json') || contentType.startsWith('application/graphql-response+json'))
  );
}

export class SubgraphDataSource implements GraphQLDataSource<GatewayContext> {
  readonly #name: string;
  readonly #url: URL;
  readonly #http: SubgraphHttpClient;
  readonly #header: () => string | null;

  /** `header` reads the current binding's header name (null: the subgraph needs no token). */
  constructor(options: { name: string; url: string; http: SubgraphHttpClient; header: () => string | null }) {
    this.#name = options.name;
    this.#url = new URL(options.url);
    this.#http = options.http;
    this.#header = options.header;
  }

  async process(options: GraphQLDataSourceProcessOptions<GatewayContext>): Promise<GatewayGraphQLResponse> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if ('incomingRequestContext' in options) {
      const header = this.#header();
      const token = header === null ? null : await this.#token(options.context);
      // null: no token needed, or the binding says ignore_error and resolution failed.
      // An API key or basic credential goes where its catalog entry says, not in the binding's header.
      if (header !== null && token !== null) {
        if (token.sendAs) headers[token.sendAs.name.toLowerCase()] = headerValue(token.sendAs, token.accessToken);
        else headers[header] = `Bearer ${token.accessToken}`;
      }
    }
    const { query, variables, operationName } = options.request;
    const res = await inSpan(
      'subgraph.request',
      { kind: SpanKind.CLIENT, attributes: { [ATTR.subgraph]: this.#name } },
      async (span) => {
        // The caller's trace goes on to the subgraph (W3C traceparent), with this span as the parent.
        injectTraceContext(headers);
        let answer: SubgraphHttpResponse;
        try {
          answer = await this.#http.post(this.#url, headers, JSON.stringify({ query, variables, operationName }));
        } catch (e) {
          throw this.#failure(
            e instanceof SubgraphResponseTooLarge
              ? `answered with more than ${MAX_SUBGRAPH_RESPONSE_BYTES} bytes`
              : 'could not be reached or did not answer in time',
          );
        }
        span.setAttribute(ATTR.httpStatus, answer.status);
        return answer;
      },
    );
    if (res.status < 200 || res.status > 299) throw this.#failure(`answered HTTP ${res.status}`);
    let body: unknown;
    try {
      body = isJsonContentType(res.contentType) ? JSON.parse(res.body) : undefined;
    } catch {
      body = undefined;
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw this.#failure('answered with something that is not a GraphQL response');
    return body as GatewayGraphQLResponse;
  }

  async #token(context: unknown): Promise<AccessToken | null> {
    if (!hasTokens(context)) return null;
    try {
      return await context.tokens.load(this.#name);
    } catch (e) {
      const err = asGatewayError(e);
      throw new GraphQLError(err.message, {
        originalError: err,
        extensions: { ...toGraphQLExtensions(err), serviceName: this.#name },
      });
    }
  }

  #failure(what: string): GraphQLError {
    return new GraphQLError(`subgraph ${this.#name} ${what}`, {
      extensions: { code: 'DOWNSTREAM_SERVICE_ERROR', serviceName: this.#name },
    });
  }
}
