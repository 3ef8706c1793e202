/**
 * The fetch every openid-client request goes through (its `customFetch` hook): one deadline for
 * the whole exchange, body included; network failures tagged so they survive openid-client's
 * error wrapping; and token responses rewritten to RFC 6749 form before openid-client reads them.
 */
import type { CustomFetch } from 'openid-client';
import { fetch as undiciFetch, type Dispatcher } from 'undici';
import { ProviderTransportError } from './errors.js';
import type { TransportFailureKind } from './errors.js';
import { PRIVATE_NETWORK_REFUSED_CODE } from './network.js';
import { normalizeTokenResponse, rebuildResponse } from './normalize.js';
import type { OAuthQuirks } from './types.js';
import { activeSpan, ATTR } from '../tracing/spans.js';

const CONNECTION_REFUSED_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED']);
const CONNECTION_RESET_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth += 1) {
    const code = (current as Error & { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = current.cause;
  }
  return undefined;
}

export function classify(error: unknown, deadline: AbortSignal): TransportFailureKind {
  if (deadline.aborted) return 'timeout';
  const code = errorCode(error);
  if (code === PRIVATE_NETWORK_REFUSED_CODE) return 'private network refused';
  if (code !== undefined && CONNECTION_REFUSED_CODES.has(code)) return 'connection refused';
  if (code !== undefined && CONNECTION_RESET_CODES.has(code)) return 'connection reset';
  return 'unreachable';
}

export interface ProviderFetchOptions {
  readonly timeoutMs: number;
  readonly quirks: OAuthQuirks;
  /** Where connections come from: the one that refuses private networks unless they are allowed (./network.ts). */
  readonly dispatcher: Dispatcher;
}

/**
 * openid-client POSTs to the token endpoint and (on delete) the revocation endpoint, whose answer
 * has no body to rewrite: a POST is treated as a token request (Accept quirk, response rewrite),
 * which leaves an empty or error answer as it is.
 */
export function createProviderFetch({ timeoutMs, quirks, dispatcher }: ProviderFetchOptions): CustomFetch {
  return async (url, options) => {
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = options.signal === undefined ? deadline : AbortSignal.any([options.signal, deadline]);
    const isTokenRequest = options.method.toUpperCase() === 'POST';
    const headers =
      isTokenRequest && quirks.tokenRequestAccept !== undefined
        ? { ...options.headers, accept: quirks.tokenRequestAccept }
        : options.headers;

    let response: Response;
    let text: string;
    try {
      // undici's own fetch: the dispatcher must come from the same undici as the fetch using it.
      response = (await undiciFetch(url, { ...options, headers, signal, dispatcher } as Parameters<
        typeof undiciFetch
      >[1])) as unknown as Response;
      // Reading the body here keeps it under the same deadline as the headers.
      text = await response.text();
    } catch (error) {
      throw new ProviderTransportError(classify(error, deadline), { cause: error });
    }
    // The token request's span (OAuthClient) records how the provider answered.
    if (isTokenRequest) activeSpan()?.setAttribute(ATTR.httpStatus, response.status);
    return isTokenRequest ? normalizeTokenResponse(response, text, quirks) : rebuildResponse(response, text);
  };
}
