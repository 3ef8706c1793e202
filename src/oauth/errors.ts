/**
 * Every failure of an exchange with an identity provider becomes a GatewayError here, and only
 * here. Public messages name what happened (timeout, HTTP status, OAuth error code) but never
 * echo a response body, a token or a secret; the original error stays in `cause` for the log.
 */
import {
  AuthorizationResponseError,
  ClientError,
  ResponseBodyError,
  WWWAuthenticateChallengeError,
} from 'openid-client';
import { asGatewayError, GatewayError } from '../errors.js';
import type { PublicDetails } from '../errors.js';
import { PRIVATE_NETWORK_RULE } from './network.js';

export type TransportFailureKind =
  | 'timeout'
  | 'connection refused'
  | 'connection reset'
  | 'unreachable'
  | 'private network refused';

/** Raised by our fetch hook so that a network failure survives openid-client's error wrapping. */
export class ProviderTransportError extends Error {
  readonly kind: TransportFailureKind;

  constructor(kind: TransportFailureKind, options: { cause: unknown }) {
    super(`identity provider request failed: ${kind}`, options);
    this.name = 'ProviderTransportError';
    this.kind = kind;
  }
}

/**
 * Error codes that some providers use, outside RFC 6749, for "this code or refresh token is no
 * longer valid": GitHub answers `bad_refresh_token`, Slack `invalid_refresh_token`. All of them
 * need a new consent, exactly like `invalid_grant`.
 */
const GRANT_GONE_ERRORS: ReadonlySet<string> = new Set([
  'invalid_grant',
  'bad_verification_code',
  'bad_refresh_token',
  'invalid_refresh_token',
  'invalid_code',
  'code_already_used',
  'token_revoked',
  'token_expired',
]);

/** `invalid_client` and its provider-specific spellings (GitHub, Slack). */
const CLIENT_REFUSED_ERRORS: ReadonlySet<string> = new Set([
  'invalid_client',
  'unauthorized_client',
  'incorrect_client_credentials',
  'invalid_client_id',
  'bad_client_secret',
]);

/** Errors the user causes at the authorization endpoint by refusing consent or sign-in. */
const USER_REFUSED_ERRORS: ReadonlySet<string> = new Set([
  'access_denied',
  'consent_required',
  'login_required',
  'interaction_required',
]);

const MAX_RETRY_AFTER_SECONDS = 86_400;

export interface ErrorContext {
  /** The timeout in force, named in the message of a timeout. */
  readonly timeoutMs: number;
}

/** An OAuth `error` value, reduced to characters that are safe to show and bounded in length. */
export function safeOAuthErrorCode(value: unknown): string {
  return typeof value === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(value) ? value : 'unrecognized_error';
}

/** `error=...` in the callback: the user said no (ACCESS_DENIED) or the provider refused the request. */
export function authorizationResponseError(oauthError: unknown, cause?: unknown): GatewayError {
  const code = safeOAuthErrorCode(oauthError);
  const details: PublicDetails = { oauthError: code };
  if (USER_REFUSED_ERRORS.has(code)) {
    return new GatewayError('ACCESS_DENIED', `consent was not given at the identity provider: ${code}`, {
      cause,
      details,
    });
  }
  return new GatewayError('PROVIDER_UNAVAILABLE', `identity provider refused the authorization request: ${code}`, {
    cause,
    details,
  });
}

export function callbackInputError(message: string): GatewayError {
  return new GatewayError('BAD_USER_INPUT', message, { details: { field: 'callback' } });
}

/** A provider config the gateway cannot use; the admin has to fix it, retrying will not help. */
export function configurationError(message: string, cause?: unknown): GatewayError {
  return new GatewayError('PROVIDER_UNAVAILABLE', `identity provider configuration is invalid: ${message}`, { cause });
}

function unavailable(message: string, cause: unknown, details?: PublicDetails): GatewayError {
  return new GatewayError('PROVIDER_UNAVAILABLE', message, details === undefined ? { cause } : { cause, details });
}

/** Seconds from a Retry-After header (delta-seconds or HTTP-date), bounded; undefined if absent or unreadable. */
export function retryAfterSeconds(headerValue: string | null, nowMs: number = Date.now()): number | undefined {
  const value = headerValue?.trim();
  if (!value) return undefined;
  let seconds: number;
  if (/^\d+$/.test(value)) {
    seconds = Number.parseInt(value, 10);
  } else {
    const at = Date.parse(value);
    if (!Number.isFinite(at)) return undefined;
    seconds = Math.max(0, Math.ceil((at - nowMs) / 1000));
  }
  return Math.min(seconds, MAX_RETRY_AFTER_SECONDS);
}

function httpStatusError(response: Response, cause: unknown): GatewayError {
  const message = `identity provider answered HTTP ${response.status}`;
  if (response.status === 429) {
    const retryAfter = retryAfterSeconds(response.headers.get('retry-after'));
    return unavailable(message, cause, retryAfter === undefined ? undefined : { retryAfterSeconds: retryAfter });
  }
  return unavailable(message, cause);
}

/** An OAuth error answered by the token endpoint (in the body or in WWW-Authenticate). */
function tokenEndpointError(oauthError: unknown, cause: unknown): GatewayError {
  const code = safeOAuthErrorCode(oauthError);
  const details: PublicDetails = { oauthError: code };
  if (GRANT_GONE_ERRORS.has(code)) {
    return new GatewayError(
      'REAUTHORIZATION_REQUIRED',
      `identity provider rejected the grant (${code}); a new consent is required`,
      { cause, details },
    );
  }
  if (CLIENT_REFUSED_ERRORS.has(code)) {
    return unavailable(`identity provider refused the client: ${code}`, cause, details);
  }
  return unavailable(`identity provider rejected the token request: ${code}`, cause, details);
}

/**
 * A token exchange the authorization server answered with an OAuth error: it decided the caller may
 * not have a token for that audience (ACCESS_DENIED). Only a refused client (the gateway's own
 * credentials) and what `toGatewayError` finds transient stay PROVIDER_UNAVAILABLE.
 */
export function exchangeError(error: unknown, context: ErrorContext): GatewayError {
  const mapped = toGatewayError(error, context);
  const refusal =
    error instanceof ResponseBodyError && !isTransientStatus(error.status) ? safeOAuthErrorCode(error.error) : null;
  if (refusal === null || refusal === 'invalid_client') return mapped;
  return new GatewayError('ACCESS_DENIED', `the authorization server refused the token exchange (${refusal})`, {
    cause: error,
    details: { oauthError: refusal },
  });
}

function isTransientStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

function findInCauses<T>(error: unknown, guard: (e: unknown) => e is T): T | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current !== undefined && current !== null; depth += 1) {
    if (guard(current)) return current;
    current = current instanceof Error ? current.cause : undefined;
  }
  return undefined;
}

const isTransportError = (e: unknown): e is ProviderTransportError => e instanceof ProviderTransportError;
const isResponse = (e: unknown): e is Response => e instanceof Response;

function transportMessage(kind: TransportFailureKind, context: ErrorContext): string {
  switch (kind) {
    case 'timeout':
      return `identity provider did not answer within ${context.timeoutMs} ms`;
    case 'private network refused':
      // Nothing was sent: say so, and never whether something listens there.
      return `identity provider endpoint refused: ${PRIVATE_NETWORK_RULE}`;
    default:
      return `identity provider could not be reached (${kind})`;
  }
}

/** openid-client's ClientError codes (oauth4webapi's constants), by what they tell the caller. */
function clientErrorToGatewayError(error: ClientError, context: ErrorContext): GatewayError {
  const response = findInCauses(error, isResponse);
  if (response !== undefined && response.status !== 200) return httpStatusError(response, error);
  switch (error.code) {
    case 'OAUTH_TIMEOUT':
      return unavailable(transportMessage('timeout', context), error);
    case 'OAUTH_RESPONSE_IS_NOT_JSON':
    case 'OAUTH_PARSE_ERROR':
      return unavailable('identity provider answered with a body that is not JSON', error);
    case 'OAUTH_INVALID_RESPONSE':
      return /access_token/.test(String((error.cause as Error | undefined)?.message))
        ? unavailable('identity provider answered without an access token', error)
        : unavailable('identity provider sent a malformed response', error);
    case 'OAUTH_HTTP_REQUEST_FORBIDDEN':
    case 'OAUTH_REQUEST_PROTOCOL_FORBIDDEN':
      return unavailable('identity provider endpoints must use https (oauth.allowInsecureHttp is off)', error);
    case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED':
    case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED':
      return unavailable('identity provider issued an ID token that failed validation', error);
    case 'OAUTH_MISSING_SERVER_METADATA':
      return configurationError('an endpoint URL is missing', error);
    case 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED':
      return unavailable('identity provider metadata does not match its configured issuer', error);
    default:
      return unavailable('identity provider sent a malformed response', error);
  }
}

/**
 * The one mapping from anything thrown while talking to an identity provider to a GatewayError.
 * Programming errors (openid-client's argument TypeErrors, for instance) stay internal.
 */
export function toGatewayError(error: unknown, context: ErrorContext): GatewayError {
  if (error instanceof GatewayError) return error;

  const transport = findInCauses(error, isTransportError);
  if (transport !== undefined) return unavailable(transportMessage(transport.kind, context), error);

  if (error instanceof ResponseBodyError) {
    if (isTransientStatus(error.status)) return httpStatusError(error.response, error);
    return tokenEndpointError(error.error, error);
  }
  if (error instanceof WWWAuthenticateChallengeError) {
    if (isTransientStatus(error.status)) return httpStatusError(error.response, error);
    const oauthError = error.cause.find((challenge) => challenge.parameters.error !== undefined)?.parameters.error;
    return oauthError === undefined ? httpStatusError(error.response, error) : tokenEndpointError(oauthError, error);
  }
  if (error instanceof AuthorizationResponseError) return authorizationResponseError(error.error, error);
  if (error instanceof ClientError) return clientErrorToGatewayError(error, context);

  return asGatewayError(error);
}
