/**
 * Consent (reference steps 3–11). A login link is a single-use gateway URL; opening it consumes
 * the link and starts one authorization request whose `state` is random, single use, expiring and
 * bound server-side to provider, connection, PKCE verifier, nonce and post-login URL. The one
 * callback URL exchanges the code, seals the tokens, and sends the browser on.
 *
 * An admin's link connects at the callback. A runtime link (a query's `loginUrl`) is a bearer
 * link, so its tokens wait for the owner's confirmation (src/consent/pending.ts) and the browser
 * leaves with `consent=<id>` instead.
 */
import type { Envelope } from '../crypto/envelope.js';
import type { ConsentStarter, LoginLink, ProviderRecord } from '../domain/model.js';
import { asGatewayError, badInput, GatewayError } from '../errors.js';
import type { Caller } from '../identity/caller.js';
import type { Logger } from '../log.js';
import type { OAuthClient } from '../oauth/client.js';
import type { ChangeFeed } from '../registry/changes.js';
import { requireConnection } from '../registry/connections.js';
import { requireProvider } from '../registry/providers.js';
import type { Store } from '../store/types.js';
import type { ConnectionKey } from '../domain/ids.js';
import { resolveClient } from '../tokens/clientConfig.js';
import { tokenSetFrom } from '../tokens/tokenSet.js';
import { connectWithConsentedTokens, requireSameBinding } from './connect.js';
import { confirmPendingConsent, holdPendingConsent, type Confirmed } from './pending.js';
import { hashOf, newSecret } from './secrets.js';

export const CALLBACK_PATH = '/oauth/callback';
export const LOGIN_PATH_PREFIX = '/oauth/login/';
const MAX_REDIRECT_URL_CHARS = 2048;
/** The query parameters the gateway writes on a post-login URL: whatever the URL carried under these names goes first. */
const RESULT_PARAMS = ['providerId', 'connectionId', 'status', 'consent', 'error', 'error_description'] as const;

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

/** `base` with the consent's result as its only result parameters (a stale `error` must not survive a success). */
function withResult(base: string, params: Record<string, string>): string {
  const url = new URL(base);
  for (const k of RESULT_PARAMS) url.searchParams.delete(k);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.href;
}

const linkTokenRef = (stateHash: string) => ({ kind: 'consent', field: 'linkToken', stateHash }) as const;

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
    if (value.length > MAX_REDIRECT_URL_CHARS)
      throw badInput(field, `must be at most ${MAX_REDIRECT_URL_CHARS} characters`);
    if (
      (url.protocol !== 'https:' && url.protocol !== 'http:') ||
      url.username ||
      url.password ||
      !this.#origins.has(url.origin)
    )
      throw badInput(field, `origin ${url.origin} is not in consent.allowedRedirectOrigins`);
    return url.href;
  }

  /** The provider of an existing authorization-code connection (NOT_FOUND, BAD_USER_INPUT otherwise). */
  async #requireAuthorizationCode(key: ConnectionKey): Promise<ProviderRecord> {
    const provider = await requireProvider(this.#deps, key.providerId);
    await requireConnection(this.#deps, key);
    if (provider.grantType !== 'AUTHORIZATION_CODE')
      throw badInput(
        'providerId',
        `provider '${provider.id}' uses ${provider.grantType}; its connections need no consent`,
      );
    return provider;
  }

  /** An admin's link: whoever the admin gives it to connects the connection, no confirmation. */
  async createLoginLink(key: ConnectionKey, postLoginRedirectUrl: string): Promise<LoginLink> {
    const redirectUrl = this.#checkRedirectUrl(postLoginRedirectUrl, 'postLoginRedirectUrl');
    await this.#requireAuthorizationCode(key);
    const token = newSecret();
    const now = this.#deps.now();
    const expiresAt = new Date(now.getTime() + this.#deps.stateTtlMs);
    const id = hashOf('link', token);
    await this.#deps.store.insertConsentState({
      stateHash: id,
      ...key,
      codeVerifier: null,
      nonce: null,
      postLoginRedirectUrl: redirectUrl,
      startedBy: 'ADMIN',
      linkToken: null,
      expiresAt,
      createdAt: now,
    });
    return { id, url: this.#linkUrl(token), expiresAt };
  }

  /** Whether the login link `id` can still be opened: false once opened (single use) or expired. */
  loginLinkPending(id: string): Promise<boolean> {
    return this.#deps.store.hasConsentState(id, this.#deps.now());
  }

  /**
   * The link in a runtime consent error. One per connection is outstanding: it is handed out again
   * until it is used or has less than half its life left (then a fresh one replaces it), so a burst
   * of failing queries leaves one row, not one per query.
   */
  async runtimeLoginLink(key: ConnectionKey, postLoginRedirectUrl: string): Promise<LoginLink> {
    const token = newSecret();
    const stateHash = hashOf('link', token);
    const now = this.#deps.now();
    const stored = await this.#deps.store.runtimeLoginLink(
      {
        stateHash,
        ...key,
        codeVerifier: null,
        nonce: null,
        postLoginRedirectUrl: this.#checkRedirectUrl(postLoginRedirectUrl, 'postLoginRedirectUrl'),
        startedBy: 'RUNTIME',
        linkToken: this.#deps.envelope.seal(token, linkTokenRef(stateHash)),
        expiresAt: new Date(now.getTime() + this.#deps.stateTtlMs),
        createdAt: now,
      },
      new Date(now.getTime() + this.#deps.stateTtlMs / 2),
    );
    if (stored.stateHash === stateHash || stored.linkToken === null)
      return { id: stateHash, url: this.#linkUrl(token), expiresAt: stored.expiresAt };
    const storedToken = this.#deps.envelope.open(stored.linkToken, linkTokenRef(stored.stateHash));
    return { id: stored.stateHash, url: this.#linkUrl(storedToken), expiresAt: stored.expiresAt };
  }

  #linkUrl(token: string): string {
    return `${this.#deps.publicUrl}${LOGIN_PATH_PREFIX}${token}`;
  }

  /**
   * Opening a login link: consume it, start the authorization request, return where to send the
   * browser. `redirect` (allowlisted origins only) replaces a runtime link's post-login URL; an
   * admin's link keeps the one the admin chose.
   */
  async openLoginLink(token: string, redirect: string | null = null): Promise<string> {
    const redirectUrl = redirect === null ? null : this.#checkRedirectUrl(redirect, 'redirect');
    const now = this.#deps.now();
    const link = await this.#deps.store.consumeConsentState(hashOf('link', token), now);
    if (!link) throw new GatewayError('NOT_FOUND', 'this login link is unknown, used or expired; ask for a new one');
    const key = { providerId: link.providerId, connectionId: link.connectionId };
    const provider = await this.#requireAuthorizationCode(key);
    const client = resolveClient(this.#deps.envelope, provider, this.#deps);
    const state = newSecret();
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
        request.codeVerifier === null
          ? null
          : this.#deps.envelope.seal(request.codeVerifier, { kind: 'consent', field: 'codeVerifier', stateHash }),
      nonce: request.nonce,
      postLoginRedirectUrl:
        link.startedBy === 'RUNTIME' && redirectUrl !== null ? redirectUrl : link.postLoginRedirectUrl,
      startedBy: link.startedBy,
      linkToken: null,
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
    const back = (params: Record<string, string>) =>
      withResult(record.postLoginRedirectUrl, {
        providerId: key.providerId,
        connectionId: key.connectionId,
        ...params,
      });

    const providerError = query.get('error');
    if (providerError !== null) {
      // The provider's own code only when it is a plain OAuth error code; never its free text.
      const code = /^[a-z_]{1,64}$/.test(providerError) ? providerError : 'provider_error';
      this.#deps.logger.info({ ...key, oauthError: code }, 'consent not given');
      return back({
        error: code === 'access_denied' ? 'ACCESS_DENIED' : 'PROVIDER_ERROR',
        error_description: `the identity provider answered ${code}`,
      });
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
          record.codeVerifier === null
            ? null
            : this.#deps.envelope.open(record.codeVerifier, { kind: 'consent', field: 'codeVerifier', stateHash }),
        nonce: record.nonce,
      });
      return back(await this.#finish(record.startedBy, key, tokenSetFrom(result, null), provider));
    } catch (e) {
      const err = asGatewayError(e);
      this.#deps.logger.warn({ ...key, code: err.code, err: err.cause ?? err }, 'consent callback failed');
      return back({ error: err.code, error_description: err.message });
    }
  }

  /**
   * An admin's consent connects now; a runtime one waits for its owner. Returns the result
   * parameters. `exchangedWith`: the provider as the code exchange used it.
   */
  async #finish(
    startedBy: ConsentStarter,
    key: ConnectionKey,
    tokens: ReturnType<typeof tokenSetFrom>,
    exchangedWith: ProviderRecord,
  ): Promise<Record<string, string>> {
    if (startedBy === 'ADMIN') {
      await connectWithConsentedTokens(this.#deps, key, tokens, exchangedWith);
      this.#deps.logger.info(key, 'consent completed; connection connected');
      return { status: 'CONNECTED' };
    }
    // A provider re-pointed during the exchange drops pending consents in the same transaction; one
    // re-pointed before this line must not get tokens of its old endpoints held for it.
    await requireSameBinding(this.#deps.store, exchangedWith);
    const consent = await holdPendingConsent(this.#deps, key, tokens);
    this.#deps.logger.info(key, 'consent completed; tokens wait for the connection owner to confirm');
    return { consent };
  }

  /** `POST /oauth/confirm`. */
  confirm(consentId: string, caller: Caller): Promise<Confirmed> {
    return confirmPendingConsent(this.#deps, consentId, caller);
  }
}
