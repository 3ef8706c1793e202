/**
 * Consent (reference steps 3–11). A login link is a single-use gateway URL; opening it consumes
 * the link and starts one authorization request whose `state` is random, single use, expiring and
 * bound server-side to provider, connection, PKCE verifier, nonce and post-login URL. The one
 * callback URL exchanges the code, seals and stores the tokens, and sends the browser on.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Envelope } from '../crypto/envelope.js';
import type { ProviderRecord } from '../domain/model.js';
import { asGatewayError, badInput, GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { OAuthClient } from '../oauth/client.js';
import type { ChangeFeed } from '../registry/changes.js';
import { requireConnection } from '../registry/connections.js';
import { requireProvider } from '../registry/providers.js';
import type { ConnectionKey, Store } from '../store/types.js';
import { resolveClient } from '../tokens/clientConfig.js';
import { connectedTokenWrite, tokenSetFrom } from '../tokens/tokenSet.js';

export const CALLBACK_PATH = '/oauth/callback';
export const LOGIN_PATH_PREFIX = '/oauth/login/';
const RANDOM_BYTES = 32;
const MAX_REDIRECT_URL_CHARS = 2048;
const TOKEN_WRITE_ATTEMPTS = 3;

export interface ConsentDeps {
  readonly store: Store;
  readonly envelope: Envelope;
  readonly oauth: OAuthClient;
  readonly publicUrl: string;
  /** Exact origins a post-login redirect may go to. */
  readonly allowedRedirectOrigins: readonly string[];
  readonly stateTtlMs: number;
  readonly allowInsecureHttp: boolean;
  readonly now: () => Date;
  readonly logger: Logger;
  /** Told when consent stores new tokens: every replica's cache drops the connection's old token. */
  readonly changes?: ChangeFeed;
}

export interface LoginLink {
  /** The hash of the link's token: names the link without being able to open it. */
  readonly id: string;
  readonly url: string;
  readonly expiresAt: Date;
}

/** Link tokens and states live in one table; the prefix keeps one from passing for the other. */
const hashOf = (purpose: 'link' | 'state', value: string) => createHash('sha256').update(`${purpose}:${value}`).digest('base64url');

function withParams(base: string, params: Record<string, string>): string {
  const url = new URL(base);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.href;
}

export class ConsentFlow {
  readonly callbackUrl: string;
  readonly #deps: ConsentDeps;
  readonly #origins: ReadonlySet<string>;

  constructor(deps: ConsentDeps) {
    this.#deps = deps;
    this.callbackUrl = `${deps.publicUrl}${CALLBACK_PATH}`;
    this.#origins = new Set(deps.allowedRedirectOrigins.map((o) => new URL(o).origin));
  }

  /** Only exact allowlisted origins, over http(s), without credentials: no open redirect. */
  #checkRedirectUrl(value: string, field: string): string {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw badInput(field, 'must be an absolute URL');
    }
    if (value.length > MAX_REDIRECT_URL_CHARS) throw badInput(field, `must be at most ${MAX_REDIRECT_URL_CHARS} characters`);
    if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password || !this.#origins.has(url.origin))
      throw badInput(field, `origin ${url.origin} is not in consent.allowedRedirectOrigins`);
    return url.href;
  }

  /** The provider of an existing authorization-code connection (NOT_FOUND, BAD_USER_INPUT otherwise). */
  async #requireAuthorizationCode(key: ConnectionKey): Promise<ProviderRecord> {
    const provider = await requireProvider(this.#deps, key.providerId);
    await requireConnection(this.#deps, key);
    if (provider.grantType !== 'AUTHORIZATION_CODE')
      throw badInput('providerId', `provider '${provider.id}' uses client credentials; its connections need no consent`);
    return provider;
  }

  async createLoginLink(key: ConnectionKey, postLoginRedirectUrl: string): Promise<LoginLink> {
    const redirectUrl = this.#checkRedirectUrl(postLoginRedirectUrl, 'postLoginRedirectUrl');
    await this.#requireAuthorizationCode(key);
    const token = randomBytes(RANDOM_BYTES).toString('base64url');
    const now = this.#deps.now();
    const expiresAt = new Date(now.getTime() + this.#deps.stateTtlMs);
    const id = hashOf('link', token);
    await this.#deps.store.insertConsentState({
      stateHash: id,
      ...key,
      codeVerifier: null,
      nonce: null,
      postLoginRedirectUrl: redirectUrl,
      expiresAt,
      createdAt: now,
    });
    return { id, url: `${this.#deps.publicUrl}${LOGIN_PATH_PREFIX}${token}`, expiresAt };
  }

  /** Whether the login link `id` can still be opened: false once opened (single use) or expired. */
  loginLinkPending(id: string): Promise<boolean> {
    return this.#deps.store.hasConsentState(id, this.#deps.now());
  }

  /** Opening a login link: consume it, start the authorization request, return where to send the browser. */
  async openLoginLink(token: string): Promise<string> {
    const now = this.#deps.now();
    const link = await this.#deps.store.consumeConsentState(hashOf('link', token), now);
    if (!link) throw new GatewayError('NOT_FOUND', 'this login link is unknown, used or expired; ask for a new one');
    const key = { providerId: link.providerId, connectionId: link.connectionId };
    const provider = await this.#requireAuthorizationCode(key);
    const client = resolveClient(this.#deps.envelope, provider, this.#deps);
    const state = randomBytes(RANDOM_BYTES).toString('base64url');
    const stateHash = hashOf('state', state);
    const request = await this.#deps.oauth.authorizationRequest(client.config, {
      redirectUri: this.callbackUrl,
      scopes: [...client.scopes],
      state,
    });
    await this.#deps.store.insertConsentState({
      stateHash,
      ...key,
      codeVerifier:
        request.codeVerifier === null ? null : this.#deps.envelope.seal(request.codeVerifier, { kind: 'consent', field: 'codeVerifier', stateHash }),
      nonce: request.nonce,
      postLoginRedirectUrl: link.postLoginRedirectUrl,
      expiresAt: new Date(now.getTime() + this.#deps.stateTtlMs),
      createdAt: now,
    });
    return request.url;
  }

  /**
   * The provider's redirect back. Without a valid state there is no trusted place to send the
   * browser, so that is an error response; everything after it redirects to the post-login URL.
   */
  async handleCallback(query: URLSearchParams): Promise<string> {
    const state = query.get('state');
    if (!state) throw badInput('state', 'is missing from the callback');
    const stateHash = hashOf('state', state);
    const record = await this.#deps.store.consumeConsentState(stateHash, this.#deps.now());
    if (!record) throw badInput('state', 'is unknown, already used or expired; start again from a new login link');
    const key = { providerId: record.providerId, connectionId: record.connectionId };
    const back = (params: Record<string, string>) => withParams(record.postLoginRedirectUrl, { providerId: key.providerId, connectionId: key.connectionId, ...params });

    const providerError = query.get('error');
    if (providerError !== null) {
      // The provider's own code only when it is a plain OAuth error code; never its free text.
      const code = /^[a-z_]{1,64}$/.test(providerError) ? providerError : 'provider_error';
      this.#deps.logger.info({ ...key, oauthError: code }, 'consent not given');
      return back({ error: code === 'access_denied' ? 'ACCESS_DENIED' : 'PROVIDER_ERROR', error_description: `the identity provider answered ${code}` });
    }
    try {
      const provider = await this.#requireAuthorizationCode(key);
      const client = resolveClient(this.#deps.envelope, provider, this.#deps);
      const currentUrl = new URL(`${this.callbackUrl}?${query.toString()}`);
      const result = await this.#deps.oauth.exchangeCode(client.config, {
        callbackUrl: currentUrl,
        redirectUri: this.callbackUrl,
        expectedState: state,
        codeVerifier:
          record.codeVerifier === null ? null : this.#deps.envelope.open(record.codeVerifier, { kind: 'consent', field: 'codeVerifier', stateHash }),
        nonce: record.nonce,
      });
      await this.#storeTokens(key, tokenSetFrom(result, null));
      this.#deps.logger.info(key, 'consent completed; connection connected');
      return back({ status: 'CONNECTED' });
    } catch (e) {
      const err = asGatewayError(e);
      this.#deps.logger.warn({ ...key, code: err.code, err: err.cause ?? err }, 'consent callback failed');
      return back({ error: err.code, error_description: err.message });
    }
  }

  /** A new consent supersedes whatever tokens the connection had; retry if a refresh races us. */
  async #storeTokens(key: ConnectionKey, tokens: ReturnType<typeof tokenSetFrom>): Promise<void> {
    for (let attempt = 0; attempt < TOKEN_WRITE_ATTEMPTS; attempt++) {
      const connection = await this.#deps.store.getConnection(key);
      if (!connection) throw new GatewayError('NOT_FOUND', `connection '${key.connectionId}' was deleted during consent`);
      const written = await this.#deps.store.writeTokens(key, connectedTokenWrite(this.#deps.envelope, key, tokens, this.#deps.now()), connection.tokenGeneration);
      if (written) {
        await this.#deps.changes?.publish(key);
        return;
      }
    }
    throw new GatewayError('INTERNAL_SERVER_ERROR', 'could not store the tokens', { cause: new Error('token generation kept moving') });
  }
}
