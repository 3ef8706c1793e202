/**
 * Every OAuth 2.0 exchange of the gateway, through openid-client: authorization requests, code
 * exchange, refresh, client credentials. One openid-client `Configuration` per client is kept
 * (discovery is one round trip, not one per refresh); all errors leave as GatewayError.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import * as oidc from 'openid-client';
import type { Dispatcher } from 'undici';
import {
  authorizationResponseError,
  callbackInputError,
  configurationError,
  exchangeError,
  toGatewayError,
} from './errors.js';
import { createProviderFetch } from './fetch.js';
import { createProviderDispatcher } from './network.js';
import { probeStatus } from './probe.js';
import { toTokenResult } from './normalize.js';
import { ATTR, inSpan, SpanKind } from '../tracing/spans.js';
import type {
  AuthorizationRequest,
  AuthorizationRequestParams,
  ClientCredentialsParams,
  CodeExchangeParams,
  OAuthClientConfig,
  OAuthOptions,
  OAuthQuirks,
  TokenExchangeParams,
  TokenResult,
  TokenTypeHint,
} from './types.js';
import { JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from './types.js';
import { isWebScheme } from '../values.js';

const CONFIGURATION_CACHE_MAX_ENTRIES = 5_000;
/** Discovered metadata is re-read now and then: providers move endpoints and add features. */
const CONFIGURATION_TTL_MS = 60 * 60 * 1000;

interface CachedConfiguration {
  readonly fingerprint: string;
  readonly configuration: Promise<oidc.Configuration>;
}

/** Changes whenever anything that shapes the Configuration changes; the secret only as a hash. */
function fingerprintOf(cfg: OAuthClientConfig): string {
  return createHash('sha256')
    .update(
      JSON.stringify([
        cfg.issuer,
        cfg.discoveryUrl,
        cfg.authorizationUrl,
        cfg.tokenUrl,
        cfg.revocationUrl ?? null,
        cfg.clientId,
        cfg.clientSecret,
        cfg.quirks,
      ]),
    )
    .digest('base64url');
}

function clientAuthOf(cfg: OAuthClientConfig): oidc.ClientAuth {
  if (cfg.clientSecret === null) return oidc.None();
  return cfg.quirks.clientAuth === 'client_secret_post'
    ? oidc.ClientSecretPost(cfg.clientSecret)
    : oidc.ClientSecretBasic(cfg.clientSecret);
}

function endpointUrl(name: string, value: string | null, allowInsecureHttp: boolean): URL | null {
  if (value === null) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw configurationError(`${name} is not a URL`, cause);
  }
  if (!isWebScheme(url, allowInsecureHttp)) {
    throw configurationError(`${name} must use https (oauth.allowInsecureHttp is off)`);
  }
  return url;
}

/** Programming errors, not user input: the gateway always creates the state and the redirect URI. */
function assertUsable(method: string, state: string, redirectUri: string): void {
  if (state === '') throw new TypeError(`OAuthClient.${method}: state is empty`);
  if (!URL.canParse(redirectUri)) throw new TypeError(`OAuthClient.${method}: redirectUri is not an absolute URL`);
}

/** False when the Configuration's issuer is only the token endpoint's origin standing in for one. */
function hasKnownIssuer(cfg: OAuthClientConfig): boolean {
  return cfg.issuer !== null || cfg.discoveryUrl !== null;
}

function joinScopes(scopes: readonly string[], quirks: OAuthQuirks): string {
  return scopes.join(quirks.scopeSeparator);
}

export class OAuthClient {
  readonly #options: OAuthOptions;
  readonly #configurations: LRUCache<string, CachedConfiguration>;
  readonly #dispatcher: Dispatcher;

  constructor(options: OAuthOptions) {
    if (!Number.isInteger(options.timeoutMs) || options.timeoutMs <= 0) {
      throw new TypeError('OAuthClient: timeoutMs must be a positive integer');
    }
    this.#options = Object.freeze({ ...options });
    this.#configurations = new LRUCache({ max: CONFIGURATION_CACHE_MAX_ENTRIES, ttl: CONFIGURATION_TTL_MS });
    this.#dispatcher = createProviderDispatcher({ allowPrivateNetworks: options.allowPrivateNetworks });
  }

  /**
   * Drops the cached Configurations whose cache key `matches`: clients that were deleted (their
   * Configuration holds the client secret) or must be rediscovered.
   */
  forgetWhere(matches: (cacheKey: string) => boolean): void {
    for (const cacheKey of [...this.#configurations.keys()])
      if (matches(cacheKey)) this.#configurations.delete(cacheKey);
  }

  async authorizationRequest(
    cfg: OAuthClientConfig,
    params: AuthorizationRequestParams,
  ): Promise<AuthorizationRequest> {
    assertUsable('authorizationRequest', params.state, params.redirectUri);
    const configuration = await this.#configuration(cfg);
    const { quirks } = cfg;
    const scopes =
      quirks.openIdConnect && !params.scopes.includes('openid') ? ['openid', ...params.scopes] : params.scopes;
    const codeVerifier = quirks.pkce === 'S256' ? oidc.randomPKCECodeVerifier() : null;
    const nonce = quirks.openIdConnect ? oidc.randomNonce() : null;

    // The catalog's extras come first so that they can never replace a protocol parameter.
    const query: Record<string, string> = { ...quirks.extraAuthorizationParams };
    query['response_type'] = 'code';
    query['redirect_uri'] = params.redirectUri;
    query['state'] = params.state;
    if (scopes.length > 0) query[quirks.scopeParameter ?? 'scope'] = joinScopes(scopes, quirks);
    if (codeVerifier !== null) {
      query['code_challenge'] = await oidc.calculatePKCECodeChallenge(codeVerifier);
      query['code_challenge_method'] = 'S256';
    }
    if (nonce !== null) query['nonce'] = nonce;

    const url = this.#call(() => oidc.buildAuthorizationUrl(configuration, query));
    return Object.freeze({ url: url.href, codeVerifier, nonce });
  }

  async exchangeCode(cfg: OAuthClientConfig, params: CodeExchangeParams): Promise<TokenResult> {
    assertUsable('exchangeCode', params.expectedState, params.redirectUri);
    const { searchParams } = params.callbackUrl;
    // Checked before anything else: a forged or replayed callback must not reach the provider.
    if (searchParams.get('state') !== params.expectedState)
      throw callbackInputError('state does not match this consent');
    const providerError = searchParams.get('error');
    if (providerError !== null) throw authorizationResponseError(providerError);
    if (!searchParams.get('code')) throw callbackInputError('authorization code is missing');

    const configuration = await this.#configuration(cfg);
    // The provider compares redirect_uri with the registered one, not with the URL the request
    // reached us at (which differs behind a proxy), so the callback query goes onto redirectUri.
    const currentUrl = new URL(params.redirectUri);
    currentUrl.search = params.callbackUrl.search;
    const iss = searchParams.get('iss');
    if (iss !== null) {
      if (!hasKnownIssuer(cfg)) {
        // RFC 9207 `iss` can only be checked against a known issuer; without one the stand-in
        // issuer would make openid-client refuse every callback of such a provider.
        currentUrl.searchParams.delete('iss');
      } else if (iss !== configuration.serverMetadata().issuer) {
        throw callbackInputError('callback comes from a different issuer');
      }
    }
    const checks: oidc.AuthorizationCodeGrantChecks = { expectedState: params.expectedState };
    if (params.codeVerifier !== null) checks.pkceCodeVerifier = params.codeVerifier;
    if (params.nonce !== null) checks.expectedNonce = params.nonce;

    const response = await this.#tokenRequest('authorization_code', () =>
      oidc.authorizationCodeGrant(configuration, currentUrl, checks, cfg.extraTokenParams),
    );
    return toTokenResult(response, cfg.quirks);
  }

  /** `refreshToken` is null in the result when the provider kept the old one valid. */
  async refresh(cfg: OAuthClientConfig, refreshToken: string): Promise<TokenResult> {
    if (refreshToken === '') throw new TypeError('OAuthClient.refresh: refreshToken is empty');
    const configuration = await this.#configuration(cfg);
    const response = await this.#tokenRequest('refresh_token', () =>
      oidc.refreshTokenGrant(configuration, refreshToken, cfg.extraTokenParams),
    );
    return toTokenResult(response, cfg.quirks);
  }

  async clientCredentials(cfg: OAuthClientConfig, params: ClientCredentialsParams): Promise<TokenResult> {
    const configuration = await this.#configuration(cfg);
    const parameters: Record<string, string> = { ...cfg.extraTokenParams };
    if (params.scopes.length > 0) parameters['scope'] = joinScopes(params.scopes, cfg.quirks);
    const response = await this.#tokenRequest('client_credentials', () =>
      oidc.clientCredentialsGrant(configuration, parameters),
    );
    return toTokenResult(response, cfg.quirks);
  }

  /** RFC 8693: exchanges the caller's JWT for a token of `audience`. A refusal is ACCESS_DENIED. */
  async tokenExchange(cfg: OAuthClientConfig, params: TokenExchangeParams): Promise<TokenResult> {
    const configuration = await this.#configuration(cfg);
    const parameters: Record<string, string> = {
      ...cfg.extraTokenParams,
      subject_token: params.subjectToken,
      subject_token_type: JWT_TOKEN_TYPE,
      audience: params.audience,
      ...(params.scope !== null && { scope: params.scope }),
    };
    try {
      const response = await oidc.genericGrantRequest(configuration, TOKEN_EXCHANGE_GRANT, parameters);
      return toTokenResult(response, cfg.quirks);
    } catch (error) {
      throw exchangeError(error, this.#options);
    }
  }

  /** GETs `url` with the headers (a static credential's check): the status, never the body. */
  checkCredential(url: string, headers: Readonly<Record<string, string>>): Promise<number> {
    return probeStatus(url, headers, { dispatcher: this.#dispatcher, timeoutMs: this.#options.timeoutMs });
  }

  /**
   * RFC 7009: revokes `token` at the provider. False when the provider names no revocation
   * endpoint (nothing was sent); a refusal or failure throws as any other exchange does.
   */
  async revoke(cfg: OAuthClientConfig, token: string, hint: TokenTypeHint): Promise<boolean> {
    if (token === '') throw new TypeError('OAuthClient.revoke: token is empty');
    const configuration = await this.#configuration(cfg);
    if (configuration.serverMetadata().revocation_endpoint === undefined) return false;
    await this.#callAsync(() => oidc.tokenRevocation(configuration, token, { token_type_hint: hint }));
    return true;
  }

  /** One call to the token endpoint, traced: grant type, HTTP status (set by the provider fetch), duration. */
  #tokenRequest<T>(grantType: string, operation: () => Promise<T>): Promise<T> {
    return inSpan('oauth.token_request', { kind: SpanKind.CLIENT, attributes: { [ATTR.grantType]: grantType } }, () =>
      this.#callAsync(operation),
    );
  }

  #call<T>(operation: () => T): T {
    try {
      return operation();
    } catch (error) {
      throw toGatewayError(error, this.#options);
    }
  }

  async #callAsync<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw toGatewayError(error, this.#options);
    }
  }

  /** Concurrent callers share one discovery; a failed one is forgotten so the next call retries. */
  #configuration(cfg: OAuthClientConfig): Promise<oidc.Configuration> {
    const fingerprint = fingerprintOf(cfg);
    const cached = this.#configurations.get(cfg.cacheKey);
    if (cached !== undefined && cached.fingerprint === fingerprint) return cached.configuration;

    const configuration = this.#callAsync(() => this.#createConfiguration(cfg));
    const entry: CachedConfiguration = { fingerprint, configuration };
    this.#configurations.set(cfg.cacheKey, entry);
    configuration.catch(() => {
      if (this.#configurations.peek(cfg.cacheKey) === entry) this.#configurations.delete(cfg.cacheKey);
    });
    return configuration;
  }

  async #createConfiguration(cfg: OAuthClientConfig): Promise<oidc.Configuration> {
    const { allowInsecureHttp, timeoutMs } = this.#options;
    const fetch = createProviderFetch({ timeoutMs, quirks: cfg.quirks, dispatcher: this.#dispatcher });
    const metadata: Partial<oidc.ClientMetadata> = cfg.clientSecret === null ? {} : { client_secret: cfg.clientSecret };
    const execute = allowInsecureHttp ? [oidc.allowInsecureRequests] : [];
    // openid-client's own timeout (whole seconds) stays behind ours so that ours is the one reported.
    const timeout = Math.ceil(timeoutMs / 1000) + 1;

    const discoverFrom =
      cfg.discoveryUrl ?? (cfg.authorizationUrl === null && cfg.tokenUrl === null ? cfg.issuer : null);
    if (discoverFrom !== null) {
      const server = endpointUrl('discoveryUrl', discoverFrom, allowInsecureHttp) as URL;
      return oidc.discovery(server, cfg.clientId, metadata, clientAuthOf(cfg), {
        [oidc.customFetch]: fetch,
        execute,
        timeout,
      });
    }

    const tokenEndpoint = endpointUrl('tokenUrl', cfg.tokenUrl, allowInsecureHttp);
    const revocationEndpoint = endpointUrl('revocationUrl', cfg.revocationUrl ?? null, allowInsecureHttp);
    const authorizationEndpoint = endpointUrl('authorizationUrl', cfg.authorizationUrl, allowInsecureHttp);
    const anyEndpoint = tokenEndpoint ?? authorizationEndpoint;
    if (anyEndpoint === null) throw configurationError('no discovery URL, issuer or endpoint URL');
    const server: oidc.ServerMetadata = {
      // Without a configured issuer the token endpoint's origin stands in; plain OAuth 2.0
      // providers issue no ID token for it to be compared with.
      issuer: cfg.issuer ?? anyEndpoint.origin,
      ...(tokenEndpoint === null ? {} : { token_endpoint: tokenEndpoint.href }),
      ...(authorizationEndpoint === null ? {} : { authorization_endpoint: authorizationEndpoint.href }),
      ...(revocationEndpoint === null ? {} : { revocation_endpoint: revocationEndpoint.href }),
    };
    const configuration = new oidc.Configuration(server, cfg.clientId, metadata, clientAuthOf(cfg));
    configuration[oidc.customFetch] = fetch;
    configuration.timeout = timeout;
    for (const extension of execute) extension(configuration);
    return configuration;
  }
}
