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

/** Details of a variable coercion error that never quote the rejected value. */
const SAFE_COERCION_DETAIL =
  /^(Field "\w+" is not defined by type "\w+"|Expected non-nullable type "[\w![\]]+" not to be null)\.?$/;

/**
 * graphql-js quotes rejected variable values in its messages; a secret typed into the wrong field
 * must not come back (or reach a log). Keeps the variable, the path and value-free details.
 */
export function scrubVariableError(message: string): string {
  const variable = /^Variable "(\$\w+)" got invalid value/.exec(message);
  if (!variable) return message;
  const at = / at "([\w.[\]]+)"(?:;|$)/.exec(message);
  const detail = message.slice(message.lastIndexOf('; ') + 2).trim();
  const safe = message.includes('; ') && SAFE_COERCION_DETAIL.test(detail) ? ` ${detail}` : '';
  return `Variable "${variable[1]}" got an invalid value${at ? ` at "${at[1]}"` : ''}.${safe}`;
}

function isApolloRequestRefusal(error: unknown): boolean {
  if (!(error instanceof GraphQLError) || error.extensions['code'] !== undefined || error.originalError !== undefined)
    return false;
  const http = error.extensions['http'];
  const status = typeof http === 'object' && http !== null && 'status' in http ? http.status : undefined;
  return typeof status === 'number' && status >= 400 && status < 500;
}

/** Codes of a document Apollo could not parse or validate: their messages are graphql-js's own, else internal. */
const DOCUMENT_CODES: ReadonlySet<unknown> = new Set(['GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED']);

/** What was thrown first, under the GraphQLErrors Apollo and graphql-js wrap it in. */
function rootCause(error: unknown): unknown {
  let e = error;
  while (e instanceof GraphQLError && e.originalError !== undefined && e.originalError !== e) e = e.originalError;
  return e;
}

/**
 * The public message of a document refusal whose cause is not graphql-js's own error: the parser
 * overflowing its stack on a deeply nested document (which the token limit does not catch), or
 * anything else it threw. Its message is the runtime's, not ours to show.
 */
function documentFailure(code: string, cause: unknown): string {
  const stage = code === 'GRAPHQL_PARSE_FAILED' ? 'parsed' : 'validated';
  return cause instanceof RangeError
    ? `Syntax Error: the document nests too deeply to be ${stage}.`
    : `Syntax Error: the document could not be ${stage}.`;
}

export function createErrorFormatter(logger: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const unwrapped = unwrapResolverError(error);
    // Subgraph fetches fail outside resolvers, as GraphQLErrors wrapping ours (with the subgraph's name).
    const original =
      unwrapped instanceof GraphQLError && unwrapped.originalError instanceof GatewayError
        ? unwrapped.originalError
        : unwrapped;
    if (original instanceof GatewayError) {
      if (original.code === 'INTERNAL_SERVER_ERROR')
        logger.error({ err: original.cause ?? original }, 'internal error');
      const serviceName = formatted.extensions?.['serviceName'];
      return {
        message: original.message,
        locations: formatted.locations,
        path: formatted.path,
        extensions: { ...toGraphQLExtensions(original), ...(typeof serviceName === 'string' && { serviceName }) },
      };
    }
    const code = formatted.extensions?.['code'];
    // Apollo refuses some requests (a persisted query whose hash does not match its text) with a
    // 4xx status and no code: the request is at fault, not the server.
    if (code === 'INTERNAL_SERVER_ERROR' && isApolloRequestRefusal(unwrapped))
      return { message: formatted.message, extensions: { code: 'BAD_REQUEST' } };
    if (code === 'INTERNAL_SERVER_ERROR' || code === undefined) {
      logger.error({ err: original }, 'unexpected error in resolver');
      return {
        message: 'Internal server error',
        locations: formatted.locations,
        path: formatted.path,
        extensions: { code: 'INTERNAL_SERVER_ERROR' },
      };
    }
    if (DOCUMENT_CODES.has(code)) {
      const cause = rootCause(unwrapped);
      if (!(cause instanceof GraphQLError)) {
        // The client's document did it (a warning, not an error), but the message is the runtime's.
        logger.warn({ err: cause, code }, 'a document failed outside graphql-js');
        return { message: documentFailure(code as string, cause), extensions: { code } };
      }
    }
    const message = scrubVariableError(formatted.message);
    const serviceName = formatted.extensions?.['serviceName'];
    return { ...formatted, message, extensions: { code, ...(typeof serviceName === 'string' && { serviceName }) } };
  };
}

export type ErrorFormatter = (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;

function isHttpHead(value: unknown): value is { status?: number } {
  return typeof value === 'object' && value !== null && (!('status' in value) || typeof value.status === 'number');
}

/**
 * What Apollo Server does to an execution's errors before answering (its errorNormalize), for the
 * answers that do not go through it: a default code, `extensions.http` lifted into the status,
 * then `formatError`. A formatter that throws yields the masked internal error, as there.
 */
export function formatExecutionErrors(
  errors: readonly unknown[],
  formatError: ErrorFormatter,
): { errors: GraphQLFormattedError[]; status: number | null } {
  let status: number | null = null;
  const formatted = errors.map((error) => {
    const graphqlError =
      error instanceof GraphQLError
        ? error
        : new GraphQLError(error instanceof Error ? error.message : `Unexpected error value: ${String(error)}`, {
            originalError: error instanceof Error ? error : undefined,
          });
    const extensions: Record<string, unknown> = {
      ...graphqlError.extensions,
      code: graphqlError.extensions['code'] ?? 'INTERNAL_SERVER_ERROR',
    };
    if (isHttpHead(extensions['http'])) {
      status = extensions['http'].status ?? status;
      delete extensions['http'];
    }
    try {
      return formatError({ ...graphqlError.toJSON(), extensions }, error);
    } catch {
      return { message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } };
    }
  });
  return { errors: formatted, status };
}
