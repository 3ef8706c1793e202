/**
 * The federated graph: Apollo Gateway over the subgraphs of supergraph.yaml, each call carrying
 * the access token its binding names. The caller's JWT is verified once per operation; every token
 * the query plan needs is resolved concurrently through one per-request DataLoader (tokenPlan.ts).
 */
import type { IncomingMessage } from 'node:http';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled, ApolloServerPluginSchemaReportingDisabled, ApolloServerPluginUsageReportingDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import type { GraphQLFormattedError } from 'graphql';
import { asGatewayError } from '../errors.js';
import type { Caller } from '../identity/caller.js';
import type { JwtVerifier } from '../identity/jwt.js';
import type { Logger } from '../log.js';
import { createErrorFormatter, toRequestError, type ErrorFormatter } from '../graphql/errors.js';
import { GRAPHQL_PARSE_OPTIONS, graphqlLimitRules, plannerRefusalPlugin, storableTextPlugin } from '../graphql/limits.js';
import type { TokenResolver } from '../tokens/resolver.js';
import { SubgraphDataSource, type GatewayContext } from './dataSource.js';
import { executePrepared, type GraphQLAnswer, type GraphQLPost } from './executePrepared.js';
import { createSubgraphHttpClient } from './httpClient.js';
import { PreparedOperations, servicesOf } from './prepared.js';
import type { SupergraphSource } from './supergraphSource.js';
import { prefetchTokens, tokenContext, type TokenPlanDeps } from './tokenPlan.js';

export type { GraphQLAnswer, GraphQLPost } from './executePrepared.js';

export interface FederatedGraphDeps {
  readonly supergraph: SupergraphSource;
  readonly resolver: TokenResolver;
  readonly verifier: JwtVerifier;
  readonly managedObjectId: string;
  readonly exploration: boolean;
  /** Bound on each subgraph call. */
  readonly subgraphTimeoutMs: number;
  readonly logger: Logger;
  /** Told the formatted errors of every response that has some (metrics count them by subgraph). */
  readonly onErrors?: (errors: readonly GraphQLFormattedError[]) => void;
}

export interface FederatedGraph {
  readonly apollo: ApolloServer<GatewayContext>;
  context(req: IncomingMessage): Promise<GatewayContext>;
  /**
   * Runs an operation Apollo has accepted and planned before, without Apollo Server's pipeline.
   * Null (nothing sent anywhere) when it has not, or when the request needs the full pipeline to
   * answer it (variables it would refuse, a caller it would refuse): serve it through `apollo`.
   * The caller is verified once per request, whichever pipeline, or both, asks.
   */
  executePrepared(post: GraphQLPost, req: IncomingMessage): Promise<GraphQLAnswer | null>;
  stop(): Promise<void>;
}

/** Apollo Server over the gateway: our limits, our error format, no telemetry; `onErrors` hears every response's errors. */
function createGatewayApollo(gateway: ApolloGateway, exploration: boolean, formatError: ErrorFormatter, onErrors: (errors: readonly GraphQLFormattedError[]) => void) {
  const errorsObserver: ApolloServerPlugin<GatewayContext> = {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          // Formatted by now: the codes are the ones the caller sees.
          const errors = response.body.kind === 'single' ? response.body.singleResult.errors : response.body.initialResult.errors;
          if (errors) onErrors(errors);
        },
      };
    },
  };
  return new ApolloServer<GatewayContext>({
    gateway,
    introspection: exploration,
    // Without exploration, errors do not spell the schema out either ("Did you mean ...?").
    hideSchemaDetailsFromClientErrors: !exploration,
    csrfPrevention: true,
    // The app stops its servers itself, HTTP first (src/server/wire.ts). Apollo's own signal handler
    // would stop this one concurrently, and a second stop() during a stop never settles (5.5.1).
    stopOnTerminationSignals: false,
    parseOptions: GRAPHQL_PARSE_OPTIONS,
    validationRules: graphqlLimitRules(),
    includeStacktraceInErrorResponses: false,
    formatError,
    plugins: [
      storableTextPlugin<GatewayContext>(),
      plannerRefusalPlugin<GatewayContext>(),
      ApolloServerPluginUsageReportingDisabled(),
      ApolloServerPluginSchemaReportingDisabled(),
      exploration ? ApolloServerPluginLandingPageLocalDefault({ embed: true, includeCookies: false }) : ApolloServerPluginLandingPageDisabled(),
      errorsObserver,
    ],
  });
}

export function createFederatedGraph(deps: FederatedGraphDeps): FederatedGraph {
  // The gateway reports telemetry to an outside host unless told not to; we never do.
  process.env['APOLLO_TELEMETRY_DISABLED'] = '1';
  const http = createSubgraphHttpClient({ timeoutMs: deps.subgraphTimeoutMs });
  const planning: TokenPlanDeps = {
    // Read per request: a reload may change a binding without changing the schema.
    bindingOf: (name) => deps.supergraph.binding(name),
    resolver: deps.resolver,
    managedObjectId: deps.managedObjectId,
    logger: deps.logger,
  };
  const prepared = new PreparedOperations();
  // What the gateway built for each subgraph, for plans executed outside it.
  const dataSources: Record<string, SubgraphDataSource> = Object.create(null);

  const gateway = new ApolloGateway({
    supergraphSdl: deps.supergraph,
    buildService: ({ name, url }) =>
      (dataSources[name] = new SubgraphDataSource({ name, url: url!, http, header: () => planning.bindingOf(name)?.header ?? null })),
    experimental_didResolveQueryPlan: ({ queryPlan, requestContext, operationContext }) => {
      prefetchTokens(requestContext.context as Partial<GatewayContext>, servicesOf(queryPlan));
      const { query, operationName } = requestContext.request;
      if (query !== undefined) prepared.remember(query, operationName ?? null, queryPlan, operationContext);
    },
    serviceHealthCheck: false,
    // Outside NODE_ENV=production Apollo shows any caller the query plan (subgraph names and the
    // operations sent to them) on an `Apollo-Query-Plan-Experimental` header: never here.
    __exposeQueryPlanExperimental: false,
    logger: deps.logger,
  });
  gateway.onSchemaLoadOrUpdate(({ apiSchema, coreSupergraphSdl }) => prepared.schemaChanged(apiSchema, coreSupergraphSdl));
  const formatError = createErrorFormatter(deps.logger);
  const onErrors = deps.onErrors ?? (() => {});
  const apollo = createGatewayApollo(gateway, deps.exploration, formatError, onErrors);

  // A request the short path hands to the full one is not verified twice (a refused JWT included).
  const callers = new WeakMap<IncomingMessage, Promise<Caller | null>>();
  function callerOf(req: IncomingMessage): Promise<Caller | null> {
    let caller = callers.get(req);
    if (!caller) callers.set(req, (caller = deps.verifier.verifyBearer(req.headers.authorization)));
    return caller;
  }
  const contextFor = (caller: Caller | null): GatewayContext => tokenContext(planning, caller);

  return {
    apollo,
    async context(req) {
      try {
        return contextFor(await callerOf(req));
      } catch (e) {
        throw toRequestError(asGatewayError(e));
      }
    },
    executePrepared: (post, req) => executePrepared({ prepared, dataSources, callerOf, contextFor, formatError, onErrors, logger: deps.logger }, post, req),
    async stop() {
      await apollo.stop();
      await http.close();
    },
  };
}
