/**
 * The input contract of the OAuth layer. It mirrors the catalog's quirks on purpose instead of
 * importing them, so this layer knows nothing about identity providers by name: the caller maps
 * a catalog entry plus a provider record onto an `OAuthClientConfig`.
 */
import type { StoredTokenSet } from '../domain/model.js';

/** How one identity provider deviates from plain RFC 6749 (data, not code paths). */
export interface OAuthQuirks {
  readonly scopeSeparator: ' ' | ',';
  /** Authorization request parameter carrying the scopes; default `scope` (Slack user tokens: `user_scope`). */
  readonly scopeParameter?: string;
  readonly pkce: 'S256' | 'none';
  /** Added to every authorization request (Google: `access_type=offline`, `prompt=consent`). */
  readonly extraAuthorizationParams: Readonly<Record<string, string>>;
  /** A token response without `expires_in` means the token never expires (GitHub OAuth apps). */
  readonly tokensNeverExpire: boolean;
  /** Lifetime assumed when the response has no `expires_in` and the tokens do expire. */
  readonly defaultTokenLifetimeSeconds: number | null;
  /** Dot path of a nested object holding the token fields (Slack: `authed_user`). */
  readonly tokenResponsePath: string | null;
  /** Response fields (dot paths allowed) kept in `TokenResult.extra` (Salesforce `instance_url`). */
  readonly keepResponseFields: readonly string[];
  readonly rotatesRefreshTokens: boolean;
  readonly clientAuth: 'client_secret_basic' | 'client_secret_post';
  readonly openIdConnect: boolean;
  /** `Accept` header of token requests (GitHub answers form-encoded unless asked for JSON). */
  readonly tokenRequestAccept?: string;
}

/** One OAuth client at one authorization server. */
export interface OAuthClientConfig {
  /**
   * Identifies the cached openid-client `Configuration` (for example `provider:github-01`).
   * A changed config under the same key is detected and rebuilt, so a version in the key is
   * not needed; `OAuthClient.forgetWhere` drops entries whose owner was deleted.
   */
  readonly cacheKey: string;
  /** Issuer identifier: OIDC discovery and the `iss` the ID token must carry. */
  readonly issuer: string | null;
  /** When set, endpoints come from this discovery document (or issuer) instead of the URLs below. */
  readonly discoveryUrl: string | null;
  readonly authorizationUrl: string | null;
  readonly tokenUrl: string | null;
  /** RFC 7009 revocation endpoint when not discovered; discovery's `revocation_endpoint` wins. */
  readonly revocationUrl?: string | null;
  readonly clientId: string;
  readonly clientSecret: string | null;
  readonly quirks: OAuthQuirks;
  /** Sent with every token request (for example `resource` or `audience`). */
  readonly extraTokenParams?: Readonly<Record<string, string>>;
}

export interface OAuthOptions {
  /** Upper bound of every HTTP exchange with an identity provider, body included. */
  readonly timeoutMs: number;
  /** Permits `http:` endpoints; for local identity providers in development and tests only. */
  readonly allowInsecureHttp: boolean;
  /** Permits loopback, private and link-local provider addresses (`oauth.allowPrivateNetworks`); development and tests only. */
  readonly allowPrivateNetworks: boolean;
}

/** What every grant yields: exactly the shape the store seals. */
export type TokenResult = StoredTokenSet;

export interface AuthorizationRequestParams {
  readonly redirectUri: string;
  readonly scopes: readonly string[];
  readonly state: string;
}

export interface AuthorizationRequest {
  readonly url: string;
  /** Keep server-side with the state; null when the provider does not take PKCE. */
  readonly codeVerifier: string | null;
  /** Keep server-side with the state; null for plain OAuth 2.0 providers. */
  readonly nonce: string | null;
}

export interface CodeExchangeParams {
  /** The full callback URL the browser arrived at, query included. */
  readonly callbackUrl: URL;
  /** The redirect URI sent in the authorization request (the callback URL without its query). */
  readonly redirectUri: string;
  readonly expectedState: string;
  readonly codeVerifier: string | null;
  readonly nonce: string | null;
}

/** RFC 7009 `token_type_hint`. */
export type TokenTypeHint = 'refresh_token' | 'access_token';

export interface ClientCredentialsParams {
  readonly scopes: readonly string[];
}

/** RFC 8693: the grant type, and the type of a JWT subject token. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

export interface TokenExchangeParams {
  /** The caller's verified JWT: sent to the provider only, never stored. */
  readonly subjectToken: string;
  readonly audience: string;
  /** Space-separated; null asks for none. */
  readonly scope: string | null;
}
