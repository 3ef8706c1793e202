/**
 * The one error type of the product. `message` is public (safe to show to a caller);
 * the internal cause stays in `cause` and is only ever logged through the redacting logger.
 * Mapping to GraphQL extensions and HTTP status happens here and nowhere else.
 */

export const RUNTIME_CODES = [
  'UNAUTHENTICATED',
  'ACCESS_DENIED',
  'CONNECTION_NOT_FOUND',
  'CONNECTION_NOT_CONNECTED',
  'REAUTHORIZATION_REQUIRED',
  'PROVIDER_UNAVAILABLE',
  'RATE_LIMITED',
  'STORE_UNAVAILABLE',
] as const;

export const MANAGEMENT_CODES = [
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'BAD_USER_INPUT',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'LIMIT_EXCEEDED',
  'VERSION_CONFLICT',
] as const;

/** INTERNAL_SERVER_ERROR is what any unexpected failure becomes; its cause is never shown. */
export type ErrorCode = (typeof RUNTIME_CODES)[number] | (typeof MANAGEMENT_CODES)[number] | 'INTERNAL_SERVER_ERROR';

const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  UNAUTHENTICATED: 401,
  ACCESS_DENIED: 403,
  FORBIDDEN: 403,
  CONNECTION_NOT_FOUND: 404,
  NOT_FOUND: 404,
  CONNECTION_NOT_CONNECTED: 409,
  REAUTHORIZATION_REQUIRED: 409,
  ALREADY_EXISTS: 409,
  VERSION_CONFLICT: 409,
  LIMIT_EXCEEDED: 409,
  BAD_USER_INPUT: 400,
  RATE_LIMITED: 429,
  PROVIDER_UNAVAILABLE: 503,
  STORE_UNAVAILABLE: 503,
  INTERNAL_SERVER_ERROR: 500,
});

/** Extra public fields a caller may act on (for example `field`, `loginUrl`, `retryAfterSeconds`). */
export type PublicDetails = Readonly<Record<string, string | number | boolean>>;

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly details: PublicDetails;

  constructor(code: ErrorCode, publicMessage: string, options: { cause?: unknown; details?: PublicDetails } = {}) {
    super(publicMessage, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }
}

export function isGatewayError(e: unknown): e is GatewayError {
  return e instanceof GatewayError;
}

/** Anything thrown becomes a GatewayError; unknown failures keep their cause but show nothing. */
export function asGatewayError(e: unknown): GatewayError {
  if (e instanceof GatewayError) return e;
  return new GatewayError('INTERNAL_SERVER_ERROR', 'Internal server error', { cause: e });
}

/** `{ error, message }` body of the HTTP endpoints (token endpoint, login link, callback errors). */
export function toHttpBody(e: GatewayError): { error: ErrorCode; message: string } & PublicDetails {
  return { ...e.details, error: e.code, message: e.message };
}

/** GraphQL `extensions` of an error: the stable code plus public details; never the cause. */
export function toGraphQLExtensions(e: GatewayError): Record<string, unknown> {
  return { ...e.details, code: e.code };
}

export const badInput = (field: string, message: string): GatewayError =>
  new GatewayError('BAD_USER_INPUT', `${field} ${message}`, { details: { field } });
