/**
 * Operations the full pipeline has already parsed, validated (limits and storable text included)
 * and planned against the schema in use. A repeat of one skips Apollo Server's request pipeline and
 * the gateway's per-request planning work and goes straight to executing its plan.
 *
 * An entry is only ever made from an operation Apollo accepted and planned, and every entry is
 * dropped when the schema changes, so the short path serves nothing the full one would refuse.
 */
import type { executeQueryPlan } from '@apollo/gateway';
import { Supergraph } from '@apollo/federation-internals';
import type { GraphQLSchema } from 'graphql';
import { LRUCache } from 'lru-cache';

type QueryPlan = Parameters<typeof executeQueryPlan>[0];
type OperationContext = Parameters<typeof executeQueryPlan>[3];
type ApiSchema = Parameters<typeof executeQueryPlan>[5];

/** Query text is capped at 64 KiB (graphql/limits.ts); this bounds what repeats may hold. */
const PREPARED_MAX_BYTES = 32 * 1024 * 1024;
/** A rough charge for a plan and its parsed document next to the text they came from. */
const PLAN_BYTES_PER_QUERY_BYTE = 8;
/** GraphQL names; any other operationName matches no operation, so it never reaches the cache. */
const OPERATION_NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;

export interface PreparedOperation {
  readonly queryPlan: QueryPlan;
  readonly operationContext: OperationContext;
  /** Every subgraph the plan fetches from: their tokens are resolved at once, up front. */
  readonly services: readonly string[];
}

/** What executing a prepared plan needs beside the plan: the schemas of the supergraph it was planned on. */
export interface PreparedExecution {
  readonly operation: PreparedOperation;
  readonly supergraph: GraphQLSchema;
  readonly apiForPlans: ApiSchema;
}

function cacheKey(query: string, operationName: string | null): string | null {
  if (operationName === null) return `\n${query}`;
  return OPERATION_NAME.test(operationName) ? `${operationName}\n${query}` : null;
}

/** Every subgraph a query plan fetches from (Sequence, Parallel, Flatten, Defer, Condition nodes). */
function serviceNamesOf(node: unknown, out: Set<string> = new Set()): Set<string> {
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

export function servicesOf(queryPlan: QueryPlan): readonly string[] {
  let names = servicesOfPlan.get(queryPlan);
  if (!names) {
    names = [...serviceNamesOf(queryPlan.node)];
    servicesOfPlan.set(queryPlan, names);
  }
  return names;
}

export class PreparedOperations {
  /** The gateway's graphql-js API schema: every operation it plans carries it. */
  #api: GraphQLSchema | null = null;
  #schemas: Omit<PreparedExecution, 'operation'> | null = null;
  readonly #cache = new LRUCache<string, PreparedOperation>({
    maxSize: PREPARED_MAX_BYTES,
    sizeCalculation: (_value, key) => key.length * (1 + PLAN_BYTES_PER_QUERY_BYTE),
  });

  /** The gateway loaded or replaced its schema: plans made for the previous one are dropped. */
  schemaChanged(api: GraphQLSchema, supergraphSdl: string): void {
    this.#cache.clear();
    // The gateway built these too, but keeps them private: built again from the same text.
    const supergraph = Supergraph.build(supergraphSdl);
    this.#api = api;
    this.#schemas = { supergraph: supergraph.schema.toGraphQLJSSchema(), apiForPlans: supergraph.apiSchema() };
  }

  /** Called once the full pipeline has planned an operation. */
  remember(
    query: string,
    operationName: string | null,
    queryPlan: QueryPlan,
    operationContext: OperationContext,
  ): void {
    // A plan made while the schema was being replaced belongs to neither: not kept.
    if (operationContext.schema !== this.#api) return;
    const key = cacheKey(query, operationName);
    if (key !== null) this.#cache.set(key, { queryPlan, operationContext, services: servicesOf(queryPlan) });
  }

  lookup(query: string, operationName: string | null): PreparedExecution | null {
    const key = cacheKey(query, operationName);
    const operation = key === null ? undefined : this.#cache.get(key);
    // An entry exists only once the schemas do.
    return operation === undefined ? null : { operation, ...this.#schemas! };
  }
}
