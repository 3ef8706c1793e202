/**
 * `testConnection` of an API key or basic credential: one GET of the catalog's check URL carrying
 * the credential, through the same connection guard (private networks) and deadline as every
 * provider call. Redirects are not followed: a redirect could carry the credential to another host.
 */
import { fetch as undiciFetch, type Dispatcher } from 'undici';
import { GatewayError } from '../errors.js';
import { classify } from './fetch.js';

export interface ProbeOptions {
  readonly dispatcher: Dispatcher;
  readonly timeoutMs: number;
}

/** The HTTP status the check URL answered with; PROVIDER_UNAVAILABLE when it could not be reached in time. */
export async function probeStatus(
  url: string,
  headers: Readonly<Record<string, string>>,
  options: ProbeOptions,
): Promise<number> {
  const deadline = AbortSignal.timeout(options.timeoutMs);
  try {
    const response = await undiciFetch(url, {
      method: 'GET',
      headers: { ...headers },
      redirect: 'manual',
      signal: deadline,
      dispatcher: options.dispatcher,
    });
    // Only the status counts: the body, however large, is dropped unread.
    await response.body?.cancel();
    return response.status;
  } catch (error) {
    throw new GatewayError('PROVIDER_UNAVAILABLE', `the check URL could not be reached (${classify(error, deadline)})`);
  }
}
