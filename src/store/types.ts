/**
 * The persistence contract. Every method is atomic on its own (one transaction); the store
 * enforces uniqueness, limits and expected versions itself so that concurrent admins and
 * replicas cannot race past them. Secrets arrive and leave sealed: a store never sees plaintext.
 *
 * Errors: methods throw `GatewayError` with NOT_FOUND, ALREADY_EXISTS, LIMIT_EXCEEDED or
 * VERSION_CONFLICT; anything else is a store failure.
 */
import type { Sealed, SealedRef } from '../crypto/sealed.js';
import type {
  AccessPolicyRecord,
  ConnectionRecord,
  ConnectionState,
  ConnectionStatus,
  ConsentStateRecord,
  Page,
  PendingConsentRecord,
  PageArgs,
  ProviderRecord,
} from '../domain/model.js';
import type { ConnectionKey } from '../domain/ids.js';

/** A provider's connections by status. */
export type ConnectionCounts = Readonly<Record<ConnectionStatus, number>>;

export type ProviderPatch = Partial<
  Pick<ProviderRecord, 'displayName' | 'clientId' | 'clientSecret' | 'scopes' | 'parameters'>
>;

export type ConnectionPatch = Partial<Pick<ConnectionRecord, 'displayName' | 'clientId' | 'clientSecret' | 'state'>>;

/** What a provider update takes from its connections, in the same transaction. */
export interface ProviderUpdateOptions {
  /**
   * The provider's endpoints or client id change: every connection loses its tokens and its
   * consents in progress; authorization-code connections become NOT_CONNECTED.
   */
  readonly dropConnectionTokens?: boolean;
  /**
   * The endpoints change: client-credentials connections with a client of their own also lose its
   * secret and become NOT_CONNECTED; those on the provider's client (whose new secret comes with the
   * update) stay CONNECTED and fetch a new token on next use.
   */
  readonly dropConnectionClientSecrets?: boolean;
}

export interface ConnectionUpdateOptions {
  /** The connection's own client changes: its tokens go in the same transaction. */
  readonly dropTokens?: boolean;
  /**
   * An API_KEY or BASIC connection's new credential (its token set), written with the update; the
   * token generation moves, so that nothing in flight writes the old one back. Its state wins over the patch's.
   */
  readonly tokens?: TokenWrite;
}

/** A token write: the new sealed token set and what follows from it, applied together. */
export interface TokenWrite {
  readonly tokens: Sealed;
  readonly tokenExpiresAt: Date | null;
  readonly lastRefreshedAt: Date;
  readonly state: ConnectionState;
  /** A consent's tokens: `connection.connected` goes to the webhook outbox in the same transaction. */
  readonly consented?: boolean;
}

export interface SealedField {
  readonly ref: SealedRef;
  readonly value: Sealed;
}

/**
 * What changed, for whoever holds derived state (token caches): one connection, or a whole provider
 * when `connectionId` is absent. Only ids travel: never a secret.
 */
export interface ChangeEvent {
  readonly providerId: string;
  readonly connectionId?: string;
}

/**
 * Told of every change, by whichever process made it. `null`: changes may have been missed (the
 * listening session was lost and is back), so anything may have changed.
 */
export type ChangeListener = (event: ChangeEvent | null) => void;

export interface InsertConnectionOptions {
  /** Created by the gateway for its user on first use, not by an admin: swept while unconsented. */
  readonly autoCreated?: boolean;
}

/** The connection lifecycle events webhooks subscribe to (docs/operations.md). */
export const LIFECYCLE_EVENT_TYPES = Object.freeze([
  'connection.created',
  'connection.connected',
  'connection.reauthorization_required',
  'connection.deleted',
] as const);
export type LifecycleEventType = (typeof LIFECYCLE_EVENT_TYPES)[number];

/**
 * How a delete hands the deleted connections' tokens to the revocation queue, in its own
 * transaction. `reseal` runs inside that transaction: it must be synchronous and never fail slowly.
 */
export interface TokenRetirement {
  readonly newId: () => string;
  /** The secret sealed to `from`, sealed anew to `to` (the revocation row). */
  readonly reseal: (value: Sealed, from: SealedRef, to: SealedRef) => Sealed;
}

export interface DeleteOptions {
  /** Without it the tokens go with the rows, unrevoked. */
  readonly retire?: TokenRetirement;
}

/** A deleted connection's tokens waiting to be revoked at their provider (RFC 7009). */
export interface RevocationRecord {
  readonly id: string;
  readonly providerId: string;
  readonly connectionId: string;
  /** What revocation needs of the provider, which may be gone: catalog entry, parameters, client. */
  readonly identityProvider: string;
  readonly parameters: Readonly<Record<string, string>>;
  readonly clientId: string;
  readonly clientSecret: Sealed | null;
  readonly tokens: Sealed;
  /** Attempts started so far, this claim's included. */
  readonly attempts: number;
  readonly createdAt: Date;
}

export interface WebhookRecord {
  readonly id: string;
  readonly url: string;
  readonly events: readonly LifecycleEventType[];
  readonly secret: Sealed;
  readonly createdAt: Date;
}

export const DELIVERY_STATUSES = Object.freeze(['PENDING', 'DELIVERED', 'DEAD'] as const);
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export interface WebhookDeliveryRecord {
  readonly webhookId: string;
  /** The Standard Webhooks `webhook-id`: the same on every attempt. */
  readonly eventId: string;
  readonly eventType: LifecycleEventType;
  /** The JSON body, as signed and sent. */
  readonly payload: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly nextAttemptAt: Date | null;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly deliveredAt: Date | null;
}

/** What an attempt came to. */
export type DeliveryOutcome =
  | { readonly status: 'DELIVERED'; readonly at: Date }
  | { readonly status: 'PENDING'; readonly nextAttemptAt: Date; readonly error: string }
  | { readonly status: 'DEAD'; readonly error: string };

export interface StoreStats {
  /** SQL statements sent to the database since the store was opened (tests count these). */
  readonly queries: number;
}

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly stats: StoreStats;

  /** Liveness of the underlying database (used by /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;

  // Providers ----------------------------------------------------------------------------
  /** ALREADY_EXISTS if the id is taken; LIMIT_EXCEEDED if `maxProviders` exist already. */
  insertProvider(provider: ProviderRecord, maxProviders: number): Promise<ProviderRecord>;
  getProvider(id: string): Promise<ProviderRecord | null>;
  /** Batch read in one query; result is aligned with `ids` (null where absent). */
  getProviders(ids: readonly string[]): Promise<(ProviderRecord | null)[]>;
  /** Keyset pagination by id; `after` is an opaque cursor from a previous page. */
  listProviders(page: PageArgs): Promise<Page<ProviderRecord>>;
  countProviders(): Promise<number>;
  /** Bumps version and updatedAt. NOT_FOUND / VERSION_CONFLICT. */
  updateProvider(
    id: string,
    patch: ProviderPatch,
    expectedVersion: number | null,
    options?: ProviderUpdateOptions,
  ): Promise<ProviderRecord>;
  /** Deletes the provider, its connections, their policies and tokens. NOT_FOUND / VERSION_CONFLICT. */
  deleteProvider(id: string, expectedVersion: number | null, options?: DeleteOptions): Promise<void>;

  // Connections --------------------------------------------------------------------------
  /**
   * Inserts a connection with its initial access policies. NOT_FOUND if the provider is gone,
   * ALREADY_EXISTS, LIMIT_EXCEEDED past `maxConnections` for the provider.
   */
  insertConnection(
    connection: ConnectionRecord,
    policies: readonly AccessPolicyRecord[],
    maxConnections: number,
    options?: InsertConnectionOptions,
  ): Promise<ConnectionRecord>;
  /**
   * Deletes at most `limit` connections the gateway created on first use (`autoCreated`) before
   * `createdBefore` that are still NOT_CONNECTED and have no consent in progress (unexpired at
   * `now`), with their policies; returns their keys. Connections an admin created are never
   * touched. Safe to run on every replica at once: each connection is deleted, and reported, once.
   */
  deleteUnconsentedConnections(createdBefore: Date, now: Date, limit: number): Promise<ConnectionKey[]>;
  getConnection(key: ConnectionKey): Promise<ConnectionRecord | null>;
  getConnections(keys: readonly ConnectionKey[]): Promise<(ConnectionRecord | null)[]>;
  /**
   * One page of connections for each provider, in one query; aligned with `providerIds`.
   * (The same `page` for all: that is how the admin API asks for them.) With `status`, only
   * connections in that status.
   */
  listConnectionsOfProviders(
    providerIds: readonly string[],
    page: PageArgs,
    status?: ConnectionStatus | null,
  ): Promise<Page<ConnectionRecord>[]>;
  /** How many connections each provider has in each status, in one query; aligned with `providerIds`. */
  countConnectionsByStatus(providerIds: readonly string[]): Promise<ConnectionCounts[]>;
  updateConnection(
    key: ConnectionKey,
    patch: ConnectionPatch,
    expectedVersion: number | null,
    options?: ConnectionUpdateOptions,
  ): Promise<ConnectionRecord>;
  deleteConnection(key: ConnectionKey, expectedVersion: number | null, options?: DeleteOptions): Promise<void>;
  /**
   * Writes tokens, expiry and state in one statement, only if the token generation is still
   * `expectedGeneration` (another process may have refreshed meanwhile). Returns the new record,
   * or null when the generation moved on. NOT_FOUND if the connection is gone.
   */
  writeTokens(key: ConnectionKey, write: TokenWrite, expectedGeneration: number): Promise<ConnectionRecord | null>;
  /** Sets the state without touching tokens (for example ERROR after a rejected refresh). */
  setConnectionState(key: ConnectionKey, state: ConnectionState): Promise<ConnectionRecord>;
  /**
   * Sets the state only while the token generation is still `expectedGeneration`: a state that
   * follows from one token set (its refresh token was rejected) never lands on a newer set (a
   * consent that came in between). Null when the generation moved on. NOT_FOUND if the connection is gone.
   */
  setConnectionStateIfGeneration(
    key: ConnectionKey,
    state: ConnectionState,
    expectedGeneration: number,
  ): Promise<ConnectionRecord | null>;

  // Access policies -----------------------------------------------------------------------
  /** NOT_FOUND (connection), ALREADY_EXISTS, LIMIT_EXCEEDED past `maxPolicies`. */
  insertAccessPolicy(policy: AccessPolicyRecord, maxPolicies: number): Promise<AccessPolicyRecord>;
  /** All policies of each connection, in one query; aligned with `keys`. */
  listAccessPolicies(keys: readonly ConnectionKey[]): Promise<AccessPolicyRecord[][]>;
  deleteAccessPolicy(key: ConnectionKey, id: string): Promise<void>;

  // Consent state -------------------------------------------------------------------------
  insertConsentState(state: ConsentStateRecord): Promise<void>;
  /** Whether a state is stored and not expired at `now` (an unopened login link), without consuming it. */
  hasConsentState(stateHash: string, now: Date): Promise<boolean>;
  /** Deletes and returns the state if present and not expired at `now` (single use). */
  consumeConsentState(stateHash: string, now: Date): Promise<ConsentStateRecord | null>;
  /**
   * The connection's one outstanding runtime login link: the stored one while it is still valid at
   * `reuseUntil`, else `fresh` (which carries a `linkToken`) in its place; concurrent callers get
   * the same row. NOT_FOUND if the connection is gone.
   */
  runtimeLoginLink(fresh: ConsentStateRecord, reuseUntil: Date): Promise<ConsentStateRecord>;
  /** Drops a connection's links, states and pending consents in progress (a consent succeeded). */
  deleteConsentsOf(key: ConnectionKey): Promise<void>;
  /** Expired consent states and pending consents; returns how many went. */
  deleteExpiredConsentStates(now: Date): Promise<number>;

  // Pending consents ----------------------------------------------------------------------
  /** NOT_FOUND if the connection is gone. */
  insertPendingConsent(pending: PendingConsentRecord): Promise<void>;
  /** Deletes and returns the pending consent if present and not expired at `now` (single use). */
  consumePendingConsent(consentHash: string, now: Date): Promise<PendingConsentRecord | null>;

  // Revocation queue (an outbox: rows written by deletes) -------------------------------------
  /**
   * Up to `limit` revocations due at `now`, each leased until `now + leaseMs` (its attempt counted)
   * so that no other worker takes it meanwhile; a worker that dies leaves it due again after the
   * lease. Replicas claim disjoint rows (PostgreSQL: SKIP LOCKED).
   */
  claimRevocations(now: Date, limit: number, leaseMs: number): Promise<RevocationRecord[]>;
  /** Done (or given up): the row and its sealed tokens go. */
  deleteRevocation(id: string): Promise<void>;
  retryRevocationAt(id: string, at: Date): Promise<void>;
  countRevocations(): Promise<number>;

  // Webhooks --------------------------------------------------------------------------------
  /** ALREADY_EXISTS if the id is taken; LIMIT_EXCEEDED if `maxWebhooks` exist already. */
  insertWebhook(webhook: WebhookRecord, maxWebhooks: number): Promise<WebhookRecord>;
  listWebhooks(): Promise<WebhookRecord[]>;
  /** With its deliveries. NOT_FOUND. */
  deleteWebhook(id: string): Promise<void>;
  /** Newest first; `status` null for all. */
  listWebhookDeliveries(
    webhookId: string,
    status: DeliveryStatus | null,
    limit: number,
  ): Promise<WebhookDeliveryRecord[]>;
  /** As claimRevocations, for pending deliveries. */
  claimWebhookDeliveries(now: Date, limit: number, leaseMs: number): Promise<WebhookDeliveryRecord[]>;
  completeWebhookDelivery(webhookId: string, eventId: string, outcome: DeliveryOutcome): Promise<void>;
  /** Delivered rows older than `deliveredBefore` and dead letters older than `deadBefore`; returns how many went. */
  purgeWebhookDeliveries(deliveredBefore: Date, deadBefore: Date): Promise<number>;

  // Sealed fields (key rotation) ---------------------------------------------------------------
  /**
   * Up to `limit` sealed values whose data key is not wrapped by `keyId`, across all tables, in a
   * fixed order (table, then primary key); after `after` (the ref of the last value of the previous
   * batch), so that a pass over a large store reads each row once.
   */
  listSealedNotWrappedBy(keyId: string, limit: number, after?: SealedRef | null): Promise<SealedField[]>;
  /** Replaces a sealed value only if it still equals `expected`; false when it changed meanwhile. */
  replaceSealed(ref: SealedRef, expected: Sealed, next: Sealed): Promise<boolean>;
  /** How many sealed values the key still wraps, across all tables. */
  countSealedWrappedBy(keyId: string): Promise<number>;

  // Settings --------------------------------------------------------------------------------
  getSetting(name: string): Promise<string | null>;
  /** Sets the value if absent; returns the value now stored (the existing one if present). */
  putSettingIfAbsent(name: string, value: string): Promise<string>;
  putSetting(name: string, value: string): Promise<void>;

  // Coordination --------------------------------------------------------------------------------
  /**
   * Runs `fn` holding the refresh lock of one connection, owned by this caller: in one process a
   * keyed mutex; across replicas (PostgreSQL) an advisory lock held on a dedicated session.
   */
  withConnectionLock<T>(key: ConnectionKey, fn: () => Promise<T>): Promise<T>;

  // Change propagation ----------------------------------------------------------------------------
  /**
   * Tells every process sharing this store: this process's listeners synchronously (before the
   * returned promise settles), the others through the database (PostgreSQL LISTEN/NOTIFY; an
   * SQLite file has one process). A process is not told twice of its own change.
   */
  publishChange(event: ChangeEvent): Promise<void>;
  /** Subscribes to changes made by any process sharing this store; returns the unsubscribe function. */
  onChange(listener: ChangeListener): () => void;
}
