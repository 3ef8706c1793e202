/**
 * For the federated graph: counts the errors of each response by the
 * subgraph they came from (`extensions.serviceName`, set by the gateway) and their code. Subgraphs
 * may answer with codes of their own choosing; outside the known set they are counted as OTHER so
 * a subgraph cannot grow the metric without bound.
 */
import { ApolloServerErrorCode } from '@apollo/server/errors';
import type { GraphQLFormattedError } from 'graphql';
import { MANAGEMENT_CODES, RUNTIME_CODES } from '../errors.js';
import type { Counter } from './metrics.js';

/** What a code outside KNOWN_ERROR_CODES is counted as. */
export const OTHER_ERROR_CODE = 'OTHER';

const KNOWN_ERROR_CODES: ReadonlySet<string> = new Set([
  ...RUNTIME_CODES,
  ...MANAGEMENT_CODES,
  ...Object.values(ApolloServerErrorCode),
  // What the gateway calls a subgraph's failure that carries no code (HTTP errors, bad bodies).
  'DOWNSTREAM_SERVICE_ERROR',
]);

export interface SubgraphErrorsOptions {
  /** cg_subgraph_errors_total{subgraph, code} */
  readonly counter: Counter;
  /** Whether `name` is a subgraph of the supergraph in use (anything else is not counted). */
  readonly isSubgraph: (name: string) => boolean;
}

export function countSubgraphErrors(errors: readonly GraphQLFormattedError[], options: SubgraphErrorsOptions): void {
  for (const error of errors) {
    const subgraph = error.extensions?.['serviceName'];
    if (typeof subgraph !== 'string' || !options.isSubgraph(subgraph)) continue;
    const code = error.extensions?.['code'];
    options.counter.inc({
      subgraph,
      code: typeof code === 'string' && KNOWN_ERROR_CODES.has(code) ? code : OTHER_ERROR_CODE,
    });
  }
}
