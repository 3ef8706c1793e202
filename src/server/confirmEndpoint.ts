/**
 * `POST /oauth/confirm` with `{"consent": "<id>"}` and the owner's bearer JWT: the tokens a runtime
 * login link brought become the connection's tokens (docs/trust-model.md, "Who can consent into a
 * connection").
 */
import type { Confirmed } from '../consent/pending.js';
import { badInput, GatewayError } from '../errors.js';
import type { Caller } from '../identity/caller.js';
import type { JwtVerifier } from '../identity/jwt.js';
import { readBody, sendJson } from './httpUtil.js';
import type { RouteHandler } from './router.js';

export const CONFIRM_PATH = '/oauth/confirm';
const MAX_CONFIRM_BODY_BYTES = 4096;

function consentOf(body: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw badInput('body', 'must be a JSON object such as {"consent": "<id>"}');
  }
  const consent =
    typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>)['consent'] : undefined;
  if (typeof consent !== 'string') throw badInput('consent', 'must be the consent id from the post-login URL');
  return consent;
}

export function confirmEndpoint(deps: {
  readonly verifier: JwtVerifier;
  readonly consent: { confirm(consentId: string, caller: Caller): Promise<Confirmed> };
}): RouteHandler {
  return async (req, res) => {
    // Read first (bounded): an early answer would leave the body unread and reset the connection.
    const body = await readBody(req, MAX_CONFIRM_BODY_BYTES);
    const caller = await deps.verifier.verifyBearer(req.headers.authorization);
    if (!caller) throw new GatewayError('UNAUTHENTICATED', 'send the bearer JWT of the connection owner');
    sendJson(res, await deps.consent.confirm(consentOf(body), caller));
  };
}
