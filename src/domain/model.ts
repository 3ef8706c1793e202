/**
 * The resource model of docs/design.md. These are the shapes the store keeps (secrets sealed) and the
 * admin API shows (secrets absent). Secrets are `Sealed` here; plaintext exists only
 * briefly where a secret is used (an OAuth call, a header).
 */
import type { Sealed } from '../crypto/sealed.js';

export const GRANT_TYPES = ['AUTHORIZATION_CODE', 'CLIENT_CREDENTIALS', 'API_KEY', 'BASIC'] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

/**
 * Credential kinds whose connection holds the credential itself (an API key, a username and
 * password) rather than OAuth tokens: no consent, no renewal; the credential is served like a token
 * that never expires, in the header the catalog entry names.
 */
export const STATIC_CREDENTIAL_KINDS = ['API_KEY', 'BASIC'] as const;
export type StaticCredentialKind = (typeof STATIC_CREDENTIAL_KINDS)[number];

export function isStaticCredential(grantType: GrantType): grantType is StaticCredentialKind {
  return (STATIC_CREDENTIAL_KINDS as readonly string[]).includes(grantType);
}

export const POLICY_KINDS = ['USER', 'GROUP', 'SERVICE_PRINCIPAL', 'MANAGED_IDENTITY'] as const;
export type AccessPolicyKind = (typeof POLICY_KINDS)[number];

export const CONNECTION_STATUSES = ['CONNECTED', 'NOT_CONNECTED', 'ERROR'] as const;
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number];

export interface ConnectionError {
  readonly code: string;
  readonly message: string;
}

/** Lifecycle of a connection; `error` exists exactly when the status is ERROR. */
export type ConnectionState =
  | { readonly status: 'NOT_CONNECTED' }
  | { readonly status: 'CONNECTED' }
  | { readonly status: 'ERROR'; readonly error: ConnectionError };

/** A single-use consent link: the admin API's `createLoginLink`, and the runtime one in `extensions.loginUrl`. */
export interface LoginLink {
  /** The hash of the link's token: names the link without being able to open it. */
  readonly id: string;
  readonly url: string;
  readonly expiresAt: Date;
}

/** What `testConnection` found: a fresh token, or why none could be had. */
export interface ConnectionTestResult {
  readonly ok: boolean;
  /** False when nothing could be tried (an API key or basic credential without a check URL). */
  readonly tested: boolean;
  readonly state: ConnectionState;
  readonly tokenExpiresAt: Date | null;
  /** Why the test failed (also when the connection's own state did not change, e.g. provider down). */
  readonly error: ConnectionError | null;
}

export interface ProviderRecord {
  readonly id: string;
  readonly displayName: string;
  readonly identityProvider: string;
  readonly grantType: GrantType;
  /** Null only for a client-credentials provider whose connections each carry their own client. */
  readonly clientId: string | null;
  readonly clientSecret: Sealed | null;
  readonly scopes: readonly string[];
  readonly parameters: Readonly<Record<string, string>>;
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface ConnectionRecord {
  readonly providerId: string;
  readonly id: string;
  readonly displayName: string;
  readonly state: ConnectionState;
  /** Client credentials connections carry their own client. */
  readonly clientId: string | null;
  readonly clientSecret: Sealed | null;
  /** The sealed `StoredTokenSet` (JSON), null until the first token is acquired. */
  readonly tokens: Sealed | null;
  readonly tokenExpiresAt: Date | null;
  readonly lastRefreshedAt: Date | null;
  /** Bumped on every token write; compare-and-swap guard for refreshes. */
  readonly tokenGeneration: number;
  /** Bumped on every admin-visible change (the ETag of the reference). */
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface AccessPolicyRecord {
  readonly providerId: string;
  readonly connectionId: string;
  readonly id: string;
  readonly kind: AccessPolicyKind;
  readonly objectId: string;
  readonly tenantId: string | null;
  readonly appIds: readonly string[];
  /**
   * The `iss` a caller's verified token must carry (the issuer URL, compared exactly); null admits
   * callers of every trusted issuer. docs/trust-model.md.
   */
  readonly issuer: string | null;
  readonly createdAt: Date;
}

/** What the sealed `tokens` field of a connection holds once opened. */
export interface StoredTokenSet {
  readonly accessToken: string;
  readonly refreshToken: string | null;
  readonly tokenType: string;
  /** Epoch milliseconds; null when the provider says the token never expires. */
  readonly expiresAt: number | null;
  readonly scope: string | null;
  /** Claims of a validated ID token, when the provider issued one. */
  readonly idTokenClaims: Readonly<Record<string, unknown>> | null;
  /** Extra response fields the catalog says to keep (for example Salesforce `instance_url`). */
  readonly extra: Readonly<Record<string, string>>;
  /**
   * API_KEY and BASIC connections: how the credential is sent, from the catalog when it was stored
   * (absent for OAuth tokens, which go in the binding's header as `Bearer`).
   */
  readonly sendAs?: CredentialHeader;
}

/** A static credential's header: `<name>: <scheme> <credential>`, or the bare credential when `scheme` is null. */
export interface CredentialHeader {
  readonly name: string;
  readonly scheme: string | null;
}

/**
 * Who started a consent. An admin chose who gets an ADMIN link; a RUNTIME link (a query's
 * `loginUrl`) is a bearer link, so the tokens it brings wait for the connection's owner to confirm.
 */
export const CONSENT_STARTERS = ['ADMIN', 'RUNTIME'] as const;
export type ConsentStarter = (typeof CONSENT_STARTERS)[number];

/** Server-side half of a consent in progress (a login link's or the `state` parameter's record). */
export interface ConsentStateRecord {
  /** SHA-256 of the state value: the raw state never rests in the store. */
  readonly stateHash: string;
  readonly providerId: string;
  readonly connectionId: string;
  readonly codeVerifier: Sealed | null;
  readonly nonce: string | null;
  readonly postLoginRedirectUrl: string;
  readonly startedBy: ConsentStarter;
  /**
   * A runtime login link's own token, sealed, so that the link can be handed out again until it
   * is used or expires (one outstanding runtime link per connection); null for everything else.
   */
  readonly linkToken: Sealed | null;
  readonly expiresAt: Date;
  readonly createdAt: Date;
}

/** Tokens a runtime consent brought, held sealed and unusable until the connection's owner confirms. */
export interface PendingConsentRecord {
  /** SHA-256 of the consent id: the id itself never rests in the store. */
  readonly consentHash: string;
  readonly providerId: string;
  readonly connectionId: string;
  /** The StoredTokenSet, sealed under a ref of this record (never the connection's `tokens` ref). */
  readonly tokens: Sealed;
  readonly expiresAt: Date;
  readonly createdAt: Date;
}

export interface Page<T> {
  readonly items: readonly T[];
  readonly nextCursor: string | null;
}

export interface PageArgs {
  readonly first: number;
  readonly after: string | null;
}

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;
