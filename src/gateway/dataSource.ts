/**
 * One subgraph's data source: attaches the access token its binding names, and only that one.
 * Health checks and schema loads have no request context, so they never carry a user's token.
 */
import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import { asGatewayError, toGraphQLExtensions } from '../errors.js';
import type { AccessToken } from '../tokens/tokenSource.js';

type Fetcher = NonNullable<NonNullable<ConstructorParameters<typeof RemoteGraphQLDataSource>[0]>['fetcher']>;

export interface GatewayContext {
  /** Per request: the token each subgraph needs, resolved once per binding (keyed by subgraph name). */
  readonly tokens: DataLoader<string, AccessToken | null, string>;
}

function hasTokens(context: unknown): context is GatewayContext {
  return typeof context === 'object' && context !== null && 'tokens' in context;
}

export class AuthorizingDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  readonly #name: string;
  readonly #header: () => string | null;

  /** `header` reads the current binding's header name (null: the subgraph needs no token). */
  constructor(options: { name: string; url: string; fetcher: Fetcher; header: () => string | null }) {
    super({ url: options.url, fetcher: options.fetcher });
    this.#name = options.name;
    this.#header = options.header;
  }

  override async willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<GatewayContext>): Promise<void> {
    const header = this.#header();
    if (header === null || !hasTokens(context)) return;
    let token: AccessToken | null;
    try {
      token = await context.tokens.load(this.#name);
    } catch (e) {
      const err = asGatewayError(e);
      throw new GraphQLError(err.message, { originalError: err, extensions: { ...toGraphQLExtensions(err), serviceName: this.#name } });
    }
    // null: the binding says ignore_error and resolution failed; the subgraph decides without a token.
    if (token !== null) request.http?.headers.set(header, `Bearer ${token.accessToken}`);
  }

  /** A subgraph's HTTP error body stays in the subgraph's logs, not in our clients' responses. */
  override async errorFromResponse(response: Parameters<RemoteGraphQLDataSource['errorFromResponse']>[0]): Promise<GraphQLError> {
    return new GraphQLError(`subgraph ${this.#name} answered HTTP ${response.status}`, {
      extensions: { code: 'DOWNSTREAM_SERVICE_ERROR', serviceName: this.#name },
    });
  }
}
