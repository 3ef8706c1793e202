/**
 * The short path for a repeated operation (see prepared.ts): the full pipeline's checks on the
 * variables and the caller, then the remembered plan executed straight against the subgraphs.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { executeQueryPlan } from '@apollo/gateway';
import { getVariableValues, type GraphQLFormattedError } from 'graphql';
import type { Caller } from '../identity/caller.js';
import type { Logger } from '../log.js';
import { formatExecutionErrors, type ErrorFormatter } from '../graphql/errors.js';
import { declaredVariables, variablesProblem } from '../graphql/limits.js';
import type { GatewayContext, SubgraphDataSource } from './dataSource.js';
import type { PreparedOperations } from './prepared.js';
import { prefetchTokens } from './tokenPlan.js';
import { activeSpan, ATTR } from '../tracing/spans.js';

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

type RequestContext = Parameters<typeof executeQueryPlan>[2];

export interface PreparedExecutionDeps {
  readonly prepared: PreparedOperations;
  /** What the gateway built for each subgraph, for plans executed outside it. */
  readonly dataSources: Record<string, SubgraphDataSource>;
  /** Verified once per request, whichever pipeline, or both, asks. */
  readonly callerOf: (req: IncomingMessage) => Promise<Caller | null>;
  readonly contextFor: (caller: Caller | null, req: IncomingMessage) => GatewayContext;
  readonly formatError: ErrorFormatter;
  readonly onErrors: (errors: readonly GraphQLFormattedError[]) => void;
  readonly logger: Logger;
}

/** Null (nothing sent anywhere) when the operation is not prepared or the full pipeline must answer it. */
export async function executePrepared(
  deps: PreparedExecutionDeps,
  post: GraphQLPost,
  req: IncomingMessage,
): Promise<GraphQLAnswer | null> {
  const found = deps.prepared.lookup(post.query, post.operationName);
  if (!found) return null;
  const { operation } = found;
  const variables = post.variables ?? {};
  const { schema, operation: definition } = operation.operationContext;
  // The full pipeline's checks, in its order: the variables' limits first (they bound the cost of
  // what follows), then what ApolloGateway's own request validation does.
  if (variablesProblem(variables, declaredVariables(definition)) !== null) return null;
  if (
    definition.variableDefinitions?.length &&
    getVariableValues(schema, definition.variableDefinitions, variables).errors
  )
    return null;
  let caller: Caller | null;
  try {
    caller = await deps.callerOf(req);
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
  const context = deps.contextFor(caller, req);
  prefetchTokens(context, operation.services);
  const requestContext = {
    request: { query: post.query, operationName: post.operationName ?? undefined, variables },
    context,
    logger: deps.logger,
    metrics: {},
  } as unknown as RequestContext;
  const result = await executeQueryPlan(
    operation.queryPlan,
    deps.dataSources,
    requestContext,
    operation.operationContext,
    found.supergraph,
    found.apiForPlans,
  );
  const formatted = result.errors ? formatExecutionErrors(result.errors, deps.formatError) : null;
  if (formatted) deps.onErrors(formatted.errors);
  // Apollo's field order: errors, data, extensions.
  const body = {
    ...(formatted && { errors: formatted.errors }),
    data: result.data,
    ...(result.extensions && { extensions: result.extensions }),
  };
  return { status: formatted?.status ?? 200, body: `${JSON.stringify(body)}\n` };
}
