/**
 * `GET /tokens/{providerId}/{connectionId}` for any compute holding a trusted JWT: a cached, fresh
 * access token, under the same access policies and codes as the gateway. Never a refresh token.
 */
import { GatewayError } from '../errors.js';
import type { JwtVerifier } from '../identity/jwt.js';
import { validateId } from '../domain/ids.js';
import type { TokenResolver } from '../tokens/resolver.js';
import { sendJson } from './httpUtil.js';
import type { RouteHandler } from './router.js';

export function tokenEndpoint(deps: {
  readonly verifier: JwtVerifier;
  readonly resolver: TokenResolver;
}): RouteHandler {
  return async (req, res, _url, params) => {
    // Checked first: an id no connection can have reaches no store, rate-limit window or audit line.
    const providerId = validateId(params['providerId'], 'providerId');
    const connectionId = validateId(params['connectionId'], 'connectionId');
    const caller = await deps.verifier.verifyBearer(req.headers.authorization);
    if (!caller) throw new GatewayError('UNAUTHENTICATED', 'send a bearer JWT from a trusted issuer');
    const token = await deps.resolver.resolve({
      providerId,
      connectionId,
      principal: { kind: 'caller', caller },
      delegated: false,
    });
    sendJson(res, {
      access_token: token.accessToken,
      token_type: token.tokenType,
      expires_at: token.expiresAt === null ? null : Math.floor(token.expiresAt / 1000),
      // API key and basic credentials: the header to send it in (`token_type` is its scheme, or ApiKey when bare).
      ...(token.sendAs && { header: token.sendAs.name }),
      ...(Object.keys(token.extra).length > 0 && { extra: token.extra }),
    });
  };
}
