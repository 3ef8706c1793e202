/**
 * The federated graph: Apollo Gateway over the subgraphs of supergraph.yaml, each call carrying
 * the access token its binding names. The caller's JWT is verified once per operation; every token
 * the query plan needs is resolved concurrently through one per-request DataLoader.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ApolloGateway, executeQueryPlan } from '@apollo/gateway';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import DataLoader from 'dataloader';
import { getVariableValues, type GraphQLFormattedError } from 'graphql';
import { asGatewayError, GatewayError } from '../errors.js';
import type { Caller } from '../identity/caller.js';
import type { JwtVerifier } from '../identity/jwt.js';
import type { Logger } from '../log.js';
import { createErrorFormatter, formatExecutionErrors, toRequestError } from '../graphql/errors.js';
import { declaredVariables, GRAPHQL_PARSE_OPTIONS, graphqlLimitRules, plannerRefusalPlugin, storableTextPlugin, variablesProblem } from '../graphql/limits.js';
import type { Principal } from '../tokens/accessPolicy.js';
import type { TokenExchanger } from '../tokens/exchange.js';
import type { TokenRequest, TokenResolver } from '../tokens/resolver.js';
import type { AccessToken } from '../tokens/tokenSource.js';
import { SubgraphDataSource, type GatewayContext } from './dataSource.js';
import { reportingPlugins, type GraphOSReporting } from './graphos.js';
import { createSubgraphHttpClient } from './httpClient.js';
import { PreparedOperations, servicesOf } from './prepared.js';
import { renderConnectionId, type SubgraphBinding } from './supergraphConfig.js';
import { operationSpanPlugin } from '../tracing/apolloPlugin.js';
import { activeSpan, ATTR, inSpan } from '../tracing/spans.js';
import type { SupergraphSource } from './supergraphSource.js';
import { explorationLandingPage } from '../graphql/landingPage.js';

export interface FederatedGraphDeps {
  readonly supergraph: SupergraphSource;
  readonly resolver: TokenResolver;
  /** `identity: exchange` bindings: the caller's JWT exchanged for the subgraph's own audience. */
  readonly exchanger: TokenExchanger;
  readonly verifier: JwtVerifier;
  readonly managedObjectId: string;
  readonly exploration: boolean;
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

/** A GraphQL request as a POST body brings it, its fields already checked for type. */
export interface GraphQLPost {
  readonly query: string;
  readonly operationName: string | null;
  readonly variables: Readonly<Record<string, unknown>> | null;
}

/** A complete `application/json` answer. */
export interface GraphQLAnswer {
  readonly status: number;
  readonly body: string;
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

type RequestContext = Parameters<typeof executeQueryPlan>[2];

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * Start resolving every token the plan will need, all at once, before the first fetch goes out.
 * Failures surface at each subgraph's fetch (`loadMany` settles every key; it never rejects).
 */
function prefetchTokens(context: Partial<GatewayContext>, services: readonly string[]): void {
  void context.tokens?.loadMany(services);
}

export function createFederatedGraph(deps: FederatedGraphDeps): FederatedGraph {
  // The gateway reports telemetry to an outside host unless told not to; we never do.
  process.env['APOLLO_TELEMETRY_DISABLED'] = '1';
  const http = createSubgraphHttpClient({ timeoutMs: deps.subgraphTimeoutMs });
  // Read per request: a reload may change a binding without changing the schema.
  const bindingOf = (name: string): SubgraphBinding | null => deps.supergraph.binding(name);
  const userPlugins = deps.plugins ?? [];
  const graphos = deps.graphos ?? null;
  // The prepared pipeline skips Apollo Server's request pipeline, and with it every plugin hook: it
  // steps aside while any plugin wants to see operations (docs/plugins.md).
  const preparedEnabled = userPlugins.length === 0 && graphos === null;
  if (!preparedEnabled)
    deps.logger.info(
      { plugins: userPlugins.length, graphosReporting: graphos !== null },
      'Apollo Server plugins are configured: every operation takes Apollo Server\'s full request pipeline so that they see each one; the prepared pipeline is off',
    );
  const prepared = new PreparedOperations();
  // What the gateway built for each subgraph, for plans executed outside it.
  const dataSources: Record<string, SubgraphDataSource> = Object.create(null);

  const gateway = new ApolloGateway({
    supergraphSdl: deps.supergraph,
    buildService: ({ name, url }) =>
      (dataSources[name] = new SubgraphDataSource({ name, url: url!, http, header: () => bindingOf(name)?.header ?? null })),
    experimental_didResolveQueryPlan: ({ queryPlan, requestContext, operationContext }) => {
      prefetchTokens(requestContext.context as Partial<GatewayContext>, servicesOf(queryPlan));
      const { query, operationName } = requestContext.request;
      if (preparedEnabled && query !== undefined) prepared.remember(query, operationName ?? null, queryPlan, operationContext);
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

  const apollo = new ApolloServer<GatewayContext>({
    gateway,
    introspection: deps.exploration,
    // Without exploration, errors do not spell the schema out either ("Did you mean ...?").
    hideSchemaDetailsFromClientErrors: !deps.exploration,
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
      deps.exploration ? explorationLandingPage({ authHeader: 'authorization: Bearer <JWT>', alsoTry: 'The demo app at /demo (when the demo runs) needs no internet access either.' }) : ApolloServerPluginLandingPageDisabled(),
      errorsObserver,
      ...userPlugins,
    ],
  });

  /** A verified caller and the bearer JWT it was verified from (held for this request only: exchange bindings send it on). */
  type Verified = { readonly caller: Caller; readonly jwt: string } | null;
  type ExchangeRequest = { readonly exchange: true; readonly providerId: string; readonly caller: Caller; readonly jwt: string; readonly audience: string; readonly scope: string | null };
  type Request = Omit<TokenRequest, 'subgraph'> | ExchangeRequest;
  /** One subgraph's binding and what it asks for this caller, or why it cannot (decided once per request). */
  type Planned = { readonly binding: SubgraphBinding; readonly request: Request | GatewayError } | null;

  function plan(name: string, verified: Verified): Planned {
    const binding = bindingOf(name);
    if (!binding) return null;
    try {
      return { binding, request: requestFor(binding, verified) };
    } catch (e) {
      return { binding, request: asGatewayError(e) };
    }
  }

  /** What one subgraph's binding resolves to for this caller; null when it needs no token. */
  async function tokenFor(name: string, planned: Planned): Promise<AccessToken | null> {
    if (!planned) return null;
    const { binding, request } = planned;
    try {
      if (request instanceof GatewayError) throw request;
      if ('exchange' in request) return await deps.exchanger.exchange({ ...request, subjectToken: request.jwt });
      return await deps.resolver.resolve({ ...request, subgraph: name });
    } catch (e) {
      if (!binding.ignoreError) throw e;
      deps.logger.info({ subgraph: name, code: asGatewayError(e).code }, 'token resolution failed; sending without a token (ignore_error)');
      return null;
    }
  }

  function requestFor(binding: SubgraphBinding, verified: Verified): Request {
    const caller = verified?.caller ?? null;
    if (binding.identity === 'exchange') {
      if (!verified) throw new GatewayError('UNAUTHENTICATED', 'this field needs a signed-in caller: send a bearer JWT');
      return { exchange: true, providerId: binding.providerId, caller: verified.caller, jwt: verified.jwt, audience: binding.audience, scope: binding.scope };
    }
    let principal: Principal;
    if (binding.identity === 'managed') principal = { kind: 'managed', objectId: deps.managedObjectId };
    else if (caller) principal = { kind: 'caller', caller };
    else throw new GatewayError('UNAUTHENTICATED', 'this field needs a signed-in caller: send a bearer JWT');
    // Without a caller only a managed binding is left, and those name a fixed connection (supergraphConfig).
    const connectionId = renderConnectionId(binding.connection, caller?.claims ?? {}, caller?.issuerName ?? null);
    if (connectionId === null) throw new GatewayError('ACCESS_DENIED', 'the caller\'s token lacks the claims this subgraph\'s connection is named after');
    return {
      providerId: binding.providerId,
      connectionId,
      principal,
      delegated: binding.identity === 'jwt' && binding.connection.kind === 'claims',
    };
  }

  /** Two subgraphs bound to the same connection for the same caller share one resolution. */
  function resolutionKey(name: string, planned: Planned): string {
    if (!planned) return `none:${name}`;
    const { binding, request } = planned;
    if (request instanceof GatewayError) return `invalid:${name}`;
    if ('exchange' in request) return `exchange:${JSON.stringify([request.providerId, request.audience, request.scope, binding.ignoreError])}`;
    return `${request.providerId}/${request.connectionId}/${binding.identity}/${binding.ignoreError}`;
  }

  /** Traced: whether a caller was verified, anonymous or refused (by code), and by which issuer; never the JWT or its subject. */
  function verifyCaller(authorization: string | undefined): Promise<Caller | null> {
    return inSpan('caller.verify', {}, async (span) => {
      const caller = await deps.verifier.verifyBearer(authorization);
      span.setAttribute(ATTR.callerOutcome, caller ? 'verified' : 'anonymous');
      if (caller?.issuerName) span.setAttribute(ATTR.callerIssuer, caller.issuerName);
      return caller;
    });
  }

  // A request the short path hands to the full one is not verified twice (a refused JWT included).
  const callers = new WeakMap<IncomingMessage, Promise<Caller | null>>();
  function callerOf(req: IncomingMessage): Promise<Caller | null> {
    let caller = callers.get(req);
    if (!caller) callers.set(req, (caller = verifyCaller(req.headers.authorization)));
    return caller;
  }

  function contextFor(caller: Caller | null, req: IncomingMessage): GatewayContext {
    // Verified from this very header: the JWT an exchange binding sends to the authorization server.
    const jwt = caller === null ? null : (BEARER.exec(req.headers.authorization ?? '')?.[1] ?? null);
    const verified: Verified = caller !== null && jwt !== null ? { caller, jwt } : null;
    // The DataLoader asks for a key on every load and resolves each batch once: plan once per name.
    const planned = new Map<string, Planned>();
    const planOf = (name: string): Planned => {
      if (!planned.has(name)) planned.set(name, plan(name, verified));
      return planned.get(name)!;
    };
    return {
      tokens: new DataLoader<string, AccessToken | null, string>(
        (names) => Promise.all(names.map((name) => tokenFor(name, planOf(name)).catch((e: unknown) => asGatewayError(e)))),
        { cacheKeyFn: (name) => resolutionKey(name, planOf(name)) },
      ),
    };
  }

  return {
    apollo,
    async context(req) {
      try {
        return contextFor(await callerOf(req), req);
      } catch (e) {
        throw toRequestError(asGatewayError(e));
      }
    },
    async executePrepared(post, req) {
      const found = prepared.lookup(post.query, post.operationName);
      if (!found) return null;
      const { operation } = found;
      const variables = post.variables ?? {};
      const { schema, operation: definition } = operation.operationContext;
      // The full pipeline's checks, in its order: the variables' limits first (they bound the cost of
      // what follows), then what ApolloGateway's own request validation does.
      if (variablesProblem(variables, declaredVariables(definition)) !== null) return null;
      if (definition.variableDefinitions?.length && getVariableValues(schema, definition.variableDefinitions, variables).errors) return null;
      let caller: Caller | null;
      try {
        caller = await callerOf(req);
      } catch {
        return null;
      }
      const span = activeSpan();
      if (span?.isRecording())
        span.setAttributes({
          [ATTR.operationType]: definition.operation,
          [ATTR.operationHash]: createHash('sha256').update(post.query).digest('hex'),
          ...(definition.name && { [ATTR.operationName]: definition.name.value }),
        });
      const context = contextFor(caller, req);
      prefetchTokens(context, operation.services);
      const requestContext = {
        request: { query: post.query, operationName: post.operationName ?? undefined, variables },
        context,
        logger: deps.logger,
        metrics: {},
      } as unknown as RequestContext;
      const result = await executeQueryPlan(operation.queryPlan, dataSources, requestContext, operation.operationContext, found.supergraph, found.apiForPlans);
      const formatted = result.errors ? formatExecutionErrors(result.errors, formatError) : null;
      if (formatted) onErrors(formatted.errors);
      // Apollo's field order: errors, data, extensions.
      const body = { ...(formatted && { errors: formatted.errors }), data: result.data, ...(result.extensions && { extensions: result.extensions }) };
      return { status: formatted?.status ?? 200, body: `${JSON.stringify(body)}\n` };
    },
    async stop() {
      await apollo.stop();
      await http.close();
    },
  };
}
