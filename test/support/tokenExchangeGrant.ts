/**
 * RFC 8693 token exchange at the test's oidc-provider (test support only, not the product): a client
 * allowed the grant, and a grant handler that verifies the subject token (a JWT of the callers'
 * issuer) and issues a JWT access token for the requested audience whose `sub` is the caller and
 * whose `act` names the client that asked (the gateway).
 *
 *   const exchange = tokenExchange({ subjectIssuer: idp, audiences: ['urn:orders'] });
 *   const auth = await startAuthServer({ extraClients: exchange.extraClients, extend: exchange.extend, extraTokenClaims: exchange.extraTokenClaims });
 */
import { randomBytes } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { AuthServerOptions } from './authServer.js';
import type { JwtIssuer } from './jwtIssuer.js';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** The `gty` of tokens this grant issues. */
const EXCHANGED = 'token-exchange';

export interface TokenExchangeSetup
  extends Required<Pick<AuthServerOptions, 'extraClients' | 'extend' | 'extraTokenClaims'>> {
  readonly client: { readonly clientId: string; readonly clientSecret: string };
  /** Exchanges the server answered (granted or refused). */
  readonly counts: { exchanges: number };
}

export interface TokenExchangePolicy {
  readonly subjectIssuer: Pick<JwtIssuer, 'issuer' | 'jwksUri' | 'audience'>;
  /** Audiences a token may be issued for. */
  readonly audiences: readonly string[];
  /** Refuses (access_denied) an exchange for this subject and audience. */
  readonly refuse?: (sub: string, audience: string) => boolean;
}

export function tokenExchange(policy: TokenExchangePolicy): TokenExchangeSetup {
  const client = Object.freeze({ clientId: 'gateway-exchange', clientSecret: randomBytes(24).toString('base64url') });
  const counts = { exchanges: 0 };
  const jwks = createRemoteJWKSet(new URL(policy.subjectIssuer.jwksUri));
  return {
    client,
    counts,
    extraClients: [
      {
        client_id: client.clientId,
        client_secret: client.clientSecret,
        grant_types: [TOKEN_EXCHANGE_GRANT],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    // RFC 8693 §4.1: the actor of an exchanged token is the client that asked on the subject's behalf.
    extraTokenClaims: async (_ctx, token) =>
      (token as { gty?: string }).gty === EXCHANGED ? { act: { sub: token.clientId } } : undefined,
    extend(provider, errors) {
      provider.registerGrantType(
        TOKEN_EXCHANGE_GRANT,
        async (ctx) => {
          counts.exchanges += 1;
          const params = ctx.oidc.params as Record<string, string | undefined>;
          if (params['subject_token_type'] !== JWT_TOKEN_TYPE)
            throw new errors.InvalidRequest('subject_token_type must be a JWT');
          let sub: string;
          try {
            const { payload } = await jwtVerify(params['subject_token'] ?? '', jwks, {
              issuer: policy.subjectIssuer.issuer,
              audience: policy.subjectIssuer.audience,
            });
            sub = String(payload.sub);
          } catch {
            throw new errors.InvalidGrant('the subject token is not valid');
          }
          const audience = params['audience'] ?? '';
          if (!policy.audiences.includes(audience)) throw new errors.InvalidTarget('unknown audience');
          if (policy.refuse?.(sub, audience))
            throw new errors.AccessDenied('this subject may not have a token for this audience');
          const scope = params['scope'];
          // No grant behind it: the subject token is the authorization.
          const token = new provider.AccessToken({
            accountId: sub,
            client: ctx.oidc.client!,
            ...(scope !== undefined && { scope }),
            gty: EXCHANGED,
          } as never);
          token.resourceServer = {
            audience,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
            scope: scope ?? '',
          } as never;
          const value = await token.save();
          ctx.body = {
            access_token: value,
            issued_token_type: ACCESS_TOKEN_TYPE,
            token_type: 'Bearer',
            expires_in: token.expiration,
            ...(scope !== undefined && { scope }),
          };
        },
        [
          'subject_token',
          'subject_token_type',
          'audience',
          'scope',
          'requested_token_type',
          'actor_token',
          'actor_token_type',
        ],
      );
    },
  };
}
