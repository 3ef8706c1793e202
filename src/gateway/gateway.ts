/**
 * The federated graph: Apollo Gateway over the subgraphs of supergraph.yaml, each call carrying
 * the access token its binding names. The caller's JWT is verified once per operation; every token
 * the query plan needs is resolved concurrently through one per-request DataLoader (tokenPlan.ts).
 */
import type { IncomingMessage } from 'node:http';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import type { GraphQLFormattedError } from 'graphql';
import { asGatewayError } from '../errors.js';
import type { Caller } from '../identity/caller.js';
import type { JwtVerifier } from '../identity/jwt.js';
import type { Logger } from '../log.js';
import { createErrorFormatter, toRequestError, type ErrorFormatter } from '../graphql/errors.js';
import {
  GRAPHQL_PARSE_OPTIONS,
  graphqlLimitRules,
  plannerRefusalPlugin,
  storableTextPlugin,
} from '../graphql/limits.js';
import type { TokenExchanger } from '../tokens/exchange.js';
import type { TokenResolver } from '../tokens/resolver.js';
import { SubgraphDataSource, type GatewayContext } from './dataSource.js';
import { executePrepared, type GraphQLAnswer, type GraphQLPost } from './executePrepared.js';
import { reportingPlugins, type GraphOSReporting } from './graphos.js';
import { createSubgraphHttpClient } from './httpClient.js';
import { PreparedOperations, servicesOf } from './prepared.js';
import type { SupergraphSource } from './supergraphSource.js';
import { prefetchTokens, tokenContext, type TokenPlanDeps } from './tokenPlan.js';
import { operationSpanPlugin } from '../tracing/apolloPlugin.js';
import { ATTR, inSpan } from '../tracing/spans.js';
import { explorationLandingPage } from '../graphql/landingPage.js';

export type { GraphQLAnswer, GraphQLPost } from './executePrepared.js';

export interface FederatedGraphDeps {
  readonly supergraph: SupergraphSource;
  readonly resolver: TokenResolver;
  /** `identity: exchange` bindings: the caller's JWT exchanged for the subgraph's own audience. */
  readonly exchanger: TokenExchanger;
  readonly verifier: JwtVerifier;
  readonly managedObjectId: string;
  readonly exploration: boolean;
  /** `server.preparedPipeline`: false sends every operation through Apollo Server (default true). */
  readonly preparedPipeline?: boolean;
  /** Bound on each subgraph call. */
  readonly subgraphTimeoutMs: number;
  readonly logger: Logger;
  /** Told the formatted errors of every response that has some (metrics count them by subgraph). */
  readonly onErrors?: (errors: readonly GraphQLFormattedError[]) => void;
  /** Apollo Server plugins of the user's; while there are any, every operation takes the full pipeline. */
  readonly plugins?: readonly ApolloServerPlugin<GatewayContext>[];
  /** GraphOS usage (and schema) reporting; null or absent: off. */
  readonly graphos?: GraphOSReporting | null;
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

const BEARER = /^Bearer\s+(\S+)\s*$/i;

interface GatewayApolloOptions {
  readonly exploration: boolean;
  readonly formatError: ErrorFormatter;
  /** Hears every response's errors. */
  readonly onErrors: (errors: readonly GraphQLFormattedError[]) => void;
  readonly userPlugins: readonly ApolloServerPlugin<GatewayContext>[];
  readonly graphos: GraphOSReporting | null;
}

/** Apollo Server over the gateway: our limits, our error format, no telemetry unless GraphOS reporting is configured. */
function createGatewayApollo(
  gateway: ApolloGateway,
  { exploration, formatError, onErrors, userPlugins, graphos }: GatewayApolloOptions,
) {
  const errorsObserver: ApolloServerPlugin<GatewayContext> = {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          // Formatted by now: the codes are the ones the caller sees.
          const errors =
            response.body.kind === 'single' ? response.body.singleResult.errors : response.body.initialResult.errors;
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
    // Which reporting plugins run is decided by reportingPlugins (graphos.ts), whatever the environment holds.
    apollo: graphos ? { key: graphos.key, graphRef: graphos.graphRef } : {},
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
      operationSpanPlugin<GatewayContext>(),
      ...reportingPlugins<GatewayContext>(graphos),
      exploration
        ? explorationLandingPage({
            authHeader: 'authorization: Bearer <JWT>',
            alsoTry: 'The demo app at /demo (when the demo runs) needs no internet access either.',
          })
        : ApolloServerPluginLandingPageDisabled(),
      errorsObserver,
      ...userPlugins,
    ],
  });
}

/** Traced: whether a caller was verified, anonymous or refused (by code), and by which issuer; never the JWT or its subject. */
function verifyCaller(verifier: JwtVerifier, authorization: string | undefined): Promise<Caller | null> {
  return inSpan('caller.verify', {}, async (span) => {
    const caller = await verifier.verifyBearer(authorization);
    span.setAttribute(ATTR.callerOutcome, caller ? 'verified' : 'anonymous');
    if (caller?.issuerName) span.setAttribute(ATTR.callerIssuer, caller.issuerName);
    return caller;
  });
}

/**
 * The prepared pipeline skips Apollo Server's request pipeline, and with it every plugin hook: it
 * steps aside while any plugin wants to see operations (docs/plugins.md).
 */
function preparedPipelineEnabled(deps: FederatedGraphDeps): boolean {
  if (deps.preparedPipeline === false) {
    deps.logger.info("server.preparedPipeline is off: every operation takes Apollo Server's full request pipeline");
    return false;
  }
  const plugins = deps.plugins?.length ?? 0;
  const graphosReporting = (deps.graphos ?? null) !== null;
  if (plugins === 0 && !graphosReporting) return true;
  deps.logger.info(
    { plugins, graphosReporting },
    "Apollo Server plugins are configured: every operation takes Apollo Server's full request pipeline so that they see each one; the prepared pipeline is off",
  );
  return false;
}

/**
 * The gateway proper: one data source per subgraph (kept in `dataSources` for plans executed
 * outside it), tokens prefetched as soon as a plan names its subgraphs, plans kept for the short path.
 */
function createApolloGateway(
  deps: FederatedGraphDeps,
  parts: {
    readonly planning: TokenPlanDeps;
    readonly prepared: PreparedOperations;
    readonly preparedEnabled: boolean;
    readonly dataSources: Record<string, SubgraphDataSource>;
    readonly http: ReturnType<typeof createSubgraphHttpClient>;
  },
): ApolloGateway {
  const { planning, prepared, preparedEnabled, dataSources, http } = parts;
  return new ApolloGateway({
    supergraphSdl: deps.supergraph,
    buildService: ({ name, url }) => {
      const source = new SubgraphDataSource({
        name,
        url: url!,
        http,
        header: () => planning.bindingOf(name)?.header ?? null,
      });
      dataSources[name] = source;
      return source;
    },
    experimental_didResolveQueryPlan: ({ queryPlan, requestContext, operationContext }) => {
      prefetchTokens(requestContext.context as Partial<GatewayContext>, servicesOf(queryPlan));
      const { query, operationName } = requestContext.request;
      if (preparedEnabled && query !== undefined)
        prepared.remember(query, operationName ?? null, queryPlan, operationContext);
    },
    serviceHealthCheck: false,
    // Outside NODE_ENV=production Apollo shows any caller the query plan (subgraph names and the
    // operations sent to them) on an `Apollo-Query-Plan-Experimental` header: never here.
    __exposeQueryPlanExperimental: false,
    logger: deps.logger,
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
    exchanger: deps.exchanger,
    managedObjectId: deps.managedObjectId,
    logger: deps.logger,
  };
  const preparedEnabled = preparedPipelineEnabled(deps);
  const prepared = new PreparedOperations();
  // What the gateway built for each subgraph, for plans executed outside it.
  const dataSources: Record<string, SubgraphDataSource> = Object.create(null);

  const gateway = createApolloGateway(deps, { planning, prepared, preparedEnabled, dataSources, http });
  gateway.onSchemaLoadOrUpdate(({ apiSchema, coreSupergraphSdl }) =>
    prepared.schemaChanged(apiSchema, coreSupergraphSdl),
  );
  const formatError = createErrorFormatter(deps.logger);
  const onErrors = deps.onErrors ?? (() => {});
  const apollo = createGatewayApollo(gateway, {
    exploration: deps.exploration,
    formatError,
    onErrors,
    userPlugins: deps.plugins ?? [],
    graphos: deps.graphos ?? null,
  });

  // A request the short path hands to the full one is not verified twice (a refused JWT included).
  const callers = new WeakMap<IncomingMessage, Promise<Caller | null>>();
  function callerOf(req: IncomingMessage): Promise<Caller | null> {
    let caller = callers.get(req);
    if (!caller) {
      caller = verifyCaller(deps.verifier, req.headers.authorization);
      callers.set(req, caller);
    }
    return caller;
  }
  const contextFor = (caller: Caller | null, req: IncomingMessage): GatewayContext => {
    // Verified from this very header: the JWT an exchange binding sends to the authorization server.
    const jwt = caller === null ? null : (BEARER.exec(req.headers.authorization ?? '')?.[1] ?? null);
    return tokenContext(planning, caller, jwt);
  };

  return {
    apollo,
    async context(req) {
      try {
        return contextFor(await callerOf(req), req);
      } catch (e) {
        throw toRequestError(asGatewayError(e));
      }
    },
    executePrepared: (post, req) =>
      executePrepared(
        { prepared, dataSources, callerOf, contextFor, formatError, onErrors, logger: deps.logger },
        post,
        req,
      ),
    async stop() {
      await apollo.stop();
      await http.close();
    },
  };
}
