/**
 * The federated graph: Apollo Gateway over the subgraphs of supergraph.yaml, each call carrying
 * the access token its binding names. The caller's JWT is verified once per operation; every token
 * the query plan needs is resolved concurrently through one per-request DataLoader.
 */
import type { IncomingMessage } from 'node:http';
import { ApolloGateway, type Experimental_DidResolveQueryPlanCallback } from '@apollo/gateway';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled, ApolloServerPluginSchemaReportingDisabled, ApolloServerPluginUsageReportingDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import DataLoader from 'dataloader';
import { asGatewayError, GatewayError } from '../errors.js';
import type { Caller } from '../identity/caller.js';
import type { JwtVerifier } from '../identity/jwt.js';
import type { Logger } from '../log.js';
import { createErrorFormatter, toRequestError } from '../graphql/errors.js';
import { GRAPHQL_PARSE_OPTIONS, graphqlLimitRules, plannerRefusalPlugin, storableTextPlugin } from '../graphql/limits.js';
import type { Principal } from '../tokens/accessPolicy.js';
import type { TokenResolver } from '../tokens/resolver.js';
import type { AccessToken } from '../tokens/tokenSource.js';
import { AuthorizingDataSource, type GatewayContext } from './dataSource.js';
import { createSubgraphHttpClient } from './httpClient.js';
import { renderConnectionId, type SubgraphBinding } from './supergraphConfig.js';
import type { SupergraphSource } from './supergraphSource.js';

export interface FederatedGraphDeps {
  readonly supergraph: SupergraphSource;
  readonly resolver: TokenResolver;
  readonly verifier: JwtVerifier;
  readonly managedObjectId: string;
  readonly exploration: boolean;
  /** Bound on each subgraph call. */
  readonly subgraphTimeoutMs: number;
  readonly logger: Logger;
  /** More Apollo Server plugins (metrics, for instance) for the federated graph. */
  readonly plugins?: readonly ApolloServerPlugin<GatewayContext>[];
}

export interface FederatedGraph {
  readonly apollo: ApolloServer<GatewayContext>;
  context(req: IncomingMessage): Promise<GatewayContext>;
  stop(): Promise<void>;
}

/** Every subgraph a query plan fetches from (Sequence, Parallel, Flatten, Defer, Condition nodes). */
function serviceNamesOf(node: unknown, out: Set<string>): Set<string> {
  if (typeof node !== 'object' || node === null) return out;
  if (Array.isArray(node)) {
    for (const child of node) serviceNamesOf(child, out);
    return out;
  }
  const n = node as { kind?: unknown; serviceName?: unknown };
  if (n.kind === 'Fetch' && typeof n.serviceName === 'string') out.add(n.serviceName);
  else for (const value of Object.values(node)) serviceNamesOf(value, out);
  return out;
}

/** Query plans are cached and reused by the gateway: walk each one once. */
const servicesOfPlan = new WeakMap<object, readonly string[]>();

/** Start resolving every token the plan will need, all at once, before the first fetch goes out. */
const prefetchTokens: Experimental_DidResolveQueryPlanCallback = ({ queryPlan, requestContext }) => {
  const context = requestContext.context as Partial<GatewayContext>;
  if (!context.tokens) return;
  let names = servicesOfPlan.get(queryPlan);
  if (!names) servicesOfPlan.set(queryPlan, (names = [...serviceNamesOf(queryPlan.node, new Set())]));
  // Failures surface at each subgraph's fetch; here they must not become unhandled rejections.
  context.tokens.loadMany([...names]).catch(() => {});
};

export function createFederatedGraph(deps: FederatedGraphDeps): FederatedGraph {
  // The gateway reports telemetry to an outside host unless told not to; we never do.
  process.env['APOLLO_TELEMETRY_DISABLED'] = '1';
  const http = createSubgraphHttpClient({ timeoutMs: deps.subgraphTimeoutMs });
  // Read per request: a reload may change a binding without changing the schema.
  const bindingOf = (name: string): SubgraphBinding | null => deps.supergraph.binding(name);

  const gateway = new ApolloGateway({
    supergraphSdl: deps.supergraph,
    buildService: ({ name, url }) =>
      new AuthorizingDataSource({ name, url: url!, fetcher: http.fetcher, header: () => bindingOf(name)?.header ?? null }),
    experimental_didResolveQueryPlan: prefetchTokens,
    serviceHealthCheck: false,
    logger: deps.logger,
  });

  const apollo = new ApolloServer<GatewayContext>({
    gateway,
    introspection: deps.exploration,
    csrfPrevention: true,
    // The app stops its servers itself, HTTP first (src/server/wire.ts). Apollo's own signal handler
    // would stop this one concurrently, and a second stop() during a stop never settles (5.5.1).
    stopOnTerminationSignals: false,
    parseOptions: GRAPHQL_PARSE_OPTIONS,
    validationRules: graphqlLimitRules(),
    includeStacktraceInErrorResponses: false,
    formatError: createErrorFormatter(deps.logger),
    plugins: [
      storableTextPlugin<GatewayContext>(),
      plannerRefusalPlugin<GatewayContext>(),
      ApolloServerPluginUsageReportingDisabled(),
      ApolloServerPluginSchemaReportingDisabled(),
      deps.exploration ? ApolloServerPluginLandingPageLocalDefault({ embed: true, includeCookies: false }) : ApolloServerPluginLandingPageDisabled(),
      ...(deps.plugins ?? []),
    ],
  });

  /** One subgraph's binding and what it asks for this caller, or why it cannot (decided once per request). */
  type Planned = { readonly binding: SubgraphBinding; readonly request: ReturnType<typeof requestFor> | GatewayError } | null;

  function plan(name: string, caller: Caller | null): Planned {
    const binding = bindingOf(name);
    if (!binding) return null;
    try {
      return { binding, request: requestFor(binding, caller) };
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
      return await deps.resolver.resolve({ ...request, subgraph: name });
    } catch (e) {
      if (!binding.ignoreError) throw e;
      deps.logger.info({ subgraph: name, code: asGatewayError(e).code }, 'token resolution failed; sending without a token (ignore_error)');
      return null;
    }
  }

  function requestFor(binding: SubgraphBinding, caller: Caller | null) {
    let principal: Principal;
    if (binding.identity === 'managed') principal = { kind: 'managed', objectId: deps.managedObjectId };
    else if (caller) principal = { kind: 'caller', caller };
    else throw new GatewayError('UNAUTHENTICATED', 'this field needs a signed-in caller: send a bearer JWT');
    let connectionId: string | null;
    if (binding.connection.kind === 'fixed') connectionId = binding.connection.id;
    else if (!caller) throw new GatewayError('UNAUTHENTICATED', 'this field needs a signed-in caller: send a bearer JWT');
    else connectionId = renderConnectionId(binding.connection, caller.claims);
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
    return `${request.providerId}/${request.connectionId}/${binding.identity}/${binding.ignoreError}`;
  }

  return {
    apollo,
    async context(req) {
      let caller: Caller | null;
      try {
        caller = await deps.verifier.verifyBearer(req.headers.authorization);
      } catch (e) {
        throw toRequestError(asGatewayError(e));
      }
      // The DataLoader asks for a key on every load and resolves each batch once: plan once per name.
      const planned = new Map<string, Planned>();
      const planOf = (name: string): Planned => {
        if (!planned.has(name)) planned.set(name, plan(name, caller));
        return planned.get(name)!;
      };
      return {
        tokens: new DataLoader<string, AccessToken | null, string>(
          (names) => Promise.all(names.map((name) => tokenFor(name, planOf(name)).catch((e: unknown) => asGatewayError(e)))),
          { cacheKeyFn: (name) => resolutionKey(name, planOf(name)) },
        ),
      };
    },
    async stop() {
      await apollo.stop();
      await http.close();
    },
  };
}
