/**
 * The one place GatewayErrors become GraphQL errors. Public message and stable code go out; the
 * internal cause goes to the log only. Apollo's own request errors (parse, validation, variable
 * coercion) pass through; anything else unexpected is masked.
 */
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { GatewayError, toGraphQLExtensions } from '../errors.js';
import type { Logger } from '../log.js';

/** A request-level GraphQL error carrying the HTTP status Apollo should answer with. */
export function toRequestError(e: GatewayError): GraphQLError {
  return new GraphQLError(e.message, { extensions: { ...toGraphQLExtensions(e), http: { status: e.httpStatus } } });
}

// Apollo echoes invalid variable values in its messages; a secret typed into the wrong field must not come back.
const ECHOED_VALUE = /got invalid value .*?(; | at "|$)/s;

export function createErrorFormatter(logger: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const unwrapped = unwrapResolverError(error);
    // Subgraph fetches fail outside resolvers, as GraphQLErrors wrapping ours (with the subgraph's name).
    const original = unwrapped instanceof GraphQLError && unwrapped.originalError instanceof GatewayError ? unwrapped.originalError : unwrapped;
    if (original instanceof GatewayError) {
      if (original.code === 'INTERNAL_SERVER_ERROR') logger.error({ err: original.cause ?? original }, 'internal error');
      const serviceName = formatted.extensions?.['serviceName'];
      return {
        message: original.message,
        locations: formatted.locations,
        path: formatted.path,
        extensions: { ...toGraphQLExtensions(original), ...(typeof serviceName === 'string' && { serviceName }) },
      };
    }
    const code = formatted.extensions?.['code'];
    if (code === 'INTERNAL_SERVER_ERROR' || code === undefined) {
      logger.error({ err: original }, 'unexpected error in resolver');
      return { message: 'Internal server error', locations: formatted.locations, path: formatted.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
    }
    const message = formatted.message.replace(ECHOED_VALUE, 'got an invalid value$1');
    return { ...formatted, message, extensions: { code } };
  };
}
