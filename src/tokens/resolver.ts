/**
 * The `get-authorization-context` step: access check → cache → store (decrypt) → refresh. Shared by
 * the federation gateway (one call per subgraph binding) and the token endpoint.
 *
 * Concurrent cache misses of one connection share one store read (and count as one acquisition,
 * taken only once an allowed caller needs the token: a refused caller never spends the budget).
 * A change (from this replica or another) evicts the cache entry and marks reads in progress as
 * stale, so a read that began before the change is served but never cached. A read is not made
 * stale by the token write of its own renewal: that write is what it returns.
 */
import { LRUCache } from 'lru-cache';
import { isStaticCredential, type AccessPolicyRecord, type ConnectionRecord, type LoginLink } from '../domain/model.js';
import { GatewayError, isGatewayError } from '../errors.js';
import { orStoreUnavailable } from '../store/errors.js';
import { connectionKeyOf, providerLabel, type ConnectionKey } from '../domain/ids.js';
import type { Logger } from '../log.js';
import type { ChangeFeed, ReadInFlight } from '../registry/changes.js';
import type { Owner } from '../registry/policies.js';
import type { ChangeEvent, Store } from '../store/types.js';
import { isAllowed, type Principal } from './accessPolicy.js';
import type { TokenCache } from './cache.js';
import { NO_TOKEN_EVENTS, type TokenEvents } from './events.js';
import type { AcquisitionLimiter } from './rateLimiter.js';
import type { ProactiveRefresher } from './refresher.js';
import { connectionNotFound, needsConsent, type AccessToken, type TokenSource } from './tokenSource.js';
import { ATTR, connectionRef, inSpan, type TokenOutcome } from '../tracing/spans.js';

export interface TokenRequest extends ConnectionKey {
  readonly principal: Principal;
  /**
   * User-delegated use (a connection named after the caller): a missing connection is created for
   * the caller alone, and consent errors carry a login link.
   */
  readonly delegated: boolean;
  /** For the audit trail: which subgraph the token is for (absent: the token endpoint). */
  readonly subgraph?: string;
}

export interface LoginLinks {
  /** The connection's outstanding runtime link (reused until used or expired); its consent waits for the owner's confirmation. */
  runtimeLoginLink(key: ConnectionKey, postLoginRedirectUrl: string): Promise<LoginLink>;
}

/** The store reads of the hot path: a connection, its access policies and its provider, nothing that writes. */
export type ConnectionReads = Pick<Store, 'getConnection' | 'listAccessPolicies' | 'getProvider'>;

export interface ResolverDeps {
  readonly tokens: TokenSource;
  readonly reads: ConnectionReads;
  /** Every change drops what it touches from the cache and marks reads in flight stale. */
  readonly changes: Pick<ChangeFeed, 'subscribe'>;
  /** First use by a user (registry/connections.ts createOnFirstUse): NOT_FOUND without the provider, ALREADY_EXISTS when the connection exists, CONNECTION_NOT_FOUND for an API key or basic provider. */
  readonly createOnFirstUse: (key: ConnectionKey, owner: Owner, displayName: string) => Promise<void>;
  readonly cache: TokenCache;
  readonly limiter: AcquisitionLimiter;
  readonly loginLinks: LoginLinks;
  /** Where the browser lands after consent started from a runtime error. */
  readonly postLoginRedirectUrl: string;
  readonly logger: Logger;
  readonly events?: TokenEvents;
  /** Told of every token served (src/tokens/refresher.ts), so tokens in use are renewed ahead of time. */
  readonly refresher?: Pick<ProactiveRefresher, 'noteUse'> | null;
}

/** A store read whose result may end up in the cache. */
interface Pending extends ReadInFlight {
  readonly cacheKey: string;
  /** A change reached the connection after the read began: serve the result, do not cache it. */
  stale: boolean;
}

/** One shared cache-miss read: the connection's policies, then (for an allowed caller) its token. */
interface Load extends Pending {
  readonly policies: Promise<readonly AccessPolicyRecord[]>;
  /** Read beside the policies, not after them: a store hit costs one round trip, not two. Opened only for an allowed caller. */
  readonly connection: Promise<ConnectionRecord | null>;
  token: Promise<AccessToken> | null;
  /** The stored token would not do: it was renewed (for traces: `refresh` rather than `store`). */
  renewed: boolean;
  users: number;
}

function affects(event: ChangeEvent | null, cacheKey: string): boolean {
  if (event === null) return true;
  if (event.connectionId !== undefined)
    return cacheKey === connectionKeyOf({ providerId: event.providerId, connectionId: event.connectionId });
  return cacheKey.startsWith(`${event.providerId}/`);
}

/** How one resolution ended, for its span. */
interface Trail {
  outcome: TokenOutcome;
}

const CONSENT_CODES = new Set(['CONNECTION_NOT_CONNECTED', 'REAUTHORIZATION_REQUIRED']);

/**
 * Policies that refused a caller, kept this long (and dropped at once on any change of the
 * connection), so that a stranger calling again and again costs no store read per call: refused
 * callers spend none of the connection's acquisitions, and this keeps what they cost the store bounded.
 */
const REFUSING_POLICIES_TTL_MS = 1_000;
const MAX_REFUSING_POLICIES = 10_000;

export class TokenResolver {
  readonly #deps: ResolverDeps;
  readonly #loads = new Map<string, Load>();
  readonly #pending = new Set<Pending>();
  readonly #refusing = new LRUCache<string, readonly AccessPolicyRecord[]>({
    max: MAX_REFUSING_POLICIES,
    ttl: REFUSING_POLICIES_TTL_MS,
  });

  constructor(deps: ResolverDeps) {
    this.#deps = deps;
    deps.changes.subscribe((event, cause) => this.#onChange(event, cause));
  }

  /**
   * The proactive refresher's renewal: a token valid at least `minValidityMs` (another replica's
   * fresh token will do), put back in the cache with the policies that admitted its last use.
   */
  async renewInBackground(key: ConnectionKey, minValidityMs: number): Promise<AccessToken> {
    const pending: Pending = { cacheKey: connectionKeyOf(key), stale: false };
    this.#pending.add(pending);
    try {
      const cached = this.#deps.cache.get(pending.cacheKey);
      const token = await this.#deps.tokens.get(key, { minValidityMs, origin: 'background', cause: pending });
      if (cached && !pending.stale) this.#deps.cache.set(pending.cacheKey, { token, policies: cached.policies });
      return token;
    } finally {
      this.#pending.delete(pending);
    }
  }

  /** `cause`: the read whose own renewal wrote the change, if any (TokenSource hands it on). */
  #onChange(event: ChangeEvent | null, cause: ReadInFlight | undefined): void {
    if (event === null) this.#deps.cache.clear();
    else this.#deps.cache.evict(event.providerId, event.connectionId);
    if (event?.connectionId !== undefined)
      this.#refusing.delete(connectionKeyOf({ providerId: event.providerId, connectionId: event.connectionId }));
    else
      for (const cacheKey of [...this.#refusing.keys()]) if (affects(event, cacheKey)) this.#refusing.delete(cacheKey);
    for (const pending of this.#pending) {
      if (pending === cause || !affects(event, pending.cacheKey)) continue;
      pending.stale = true;
      // Misses from now on read afresh instead of joining a read from before the change.
      if (this.#loads.get(pending.cacheKey) === pending) this.#loads.delete(pending.cacheKey);
    }
  }

  resolve(request: TokenRequest): Promise<AccessToken> {
    return inSpan('token.resolve', {}, async (span) => {
      if (span.isRecording())
        span.setAttributes({
          [ATTR.providerId]: request.providerId,
          [ATTR.connectionRef]: connectionRef(request.providerId, request.connectionId),
          ...(request.subgraph !== undefined && { [ATTR.subgraph]: request.subgraph }),
        });
      const trail: Trail = { outcome: 'error' };
      try {
        return await this.#resolveAndAudit(request, trail);
      } catch (e) {
        trail.outcome = isGatewayError(e) && e.code === 'ACCESS_DENIED' ? 'denied' : 'error';
        throw e;
      } finally {
        span.setAttribute(ATTR.tokenOutcome, trail.outcome);
      }
    });
  }

  async #resolveAndAudit(request: TokenRequest, trail: Trail): Promise<AccessToken> {
    const events = this.#deps.events ?? NO_TOKEN_EVENTS;
    const principal =
      request.principal.kind === 'managed'
        ? `managed:${request.principal.objectId}`
        : `${request.principal.caller.issuer}#${request.principal.caller.sub}`;
    const use = {
      providerId: request.providerId,
      connectionId: request.connectionId,
      principal,
      ...(request.subgraph !== undefined && { subgraph: request.subgraph }),
    };
    try {
      const token = await this.#resolve(request, events, trail);
      events.tokenUse({ ...use, outcome: 'granted' });
      this.#deps.refresher?.noteUse({ providerId: request.providerId, connectionId: request.connectionId }, token);
      return token;
    } catch (e) {
      events.tokenUse({ ...use, outcome: isGatewayError(e) ? e.code : 'INTERNAL_SERVER_ERROR' });
      throw e;
    }
  }

  async #resolve(request: TokenRequest, events: TokenEvents, trail: Trail): Promise<AccessToken> {
    const key: ConnectionKey = { providerId: request.providerId, connectionId: request.connectionId };
    const cacheKey = connectionKeyOf(key);
    const hit = this.#deps.cache.get(cacheKey);
    if (hit) {
      events.cacheHit(key);
      if (!isAllowed(hit.policies, request.principal)) throw this.#denied(key);
      trail.outcome = 'cache_hit';
      return hit.token;
    }
    events.cacheMiss(key);
    const refusing = this.#refusing.get(cacheKey);
    if (refusing && !isAllowed(refusing, request.principal)) throw this.#denied(key);
    const load = this.#join(key, cacheKey);
    try {
      const policies = await load.policies;
      if (!isAllowed(policies, request.principal)) {
        if (policies.length > 0) {
          if (!load.stale) this.#refusing.set(cacheKey, policies);
          throw this.#denied(key);
        }
        // No policy at all: most often no connection yet.
        const connection = await load.connection;
        if (connection) throw this.#denied(key);
        if (request.delegated && request.principal.kind === 'caller') return await this.#createForCaller(request);
        throw connectionNotFound(key);
      }
      try {
        load.token ??= this.#acquire(key, load);
        const token = await load.token;
        trail.outcome = load.renewed ? 'refresh' : 'store';
        if (!load.stale) this.#deps.cache.set(cacheKey, { token, policies });
        return token;
      } catch (e) {
        if (isGatewayError(e) && CONSENT_CODES.has(e.code)) throw await this.#consentError(key, e, request.delegated);
        throw e;
      }
    } finally {
      this.#leave(load);
    }
  }

  /**
   * The token of a shared read, fetched for the first allowed caller: only then is it counted as the
   * connection's acquisition, so that callers its policies refuse never spend the connection's budget.
   */
  #acquire(key: ConnectionKey, load: Load): Promise<AccessToken> {
    this.#deps.limiter.take(load.cacheKey);
    return this.#deps.tokens.get(key, {
      cause: load,
      connection: load.connection,
      onRenewal: () => {
        load.renewed = true;
      },
    });
  }

  /** Joins the read in progress for this connection, or starts one (counted only once a caller is allowed: #acquire). */
  #join(key: ConnectionKey, cacheKey: string): Load {
    const current = this.#loads.get(cacheKey);
    if (current) {
      current.users++;
      return current;
    }
    const store = this.#deps.reads;
    const load: Load = {
      cacheKey,
      stale: false,
      users: 1,
      token: null,
      renewed: false,
      policies: orStoreUnavailable(store.listAccessPolicies([key])).then(([policies = []]) => Object.freeze(policies)),
      connection: orStoreUnavailable(store.getConnection(key)),
    };
    // A refused caller never awaits it: its failure must not become an unhandled rejection.
    load.connection.catch(() => {});
    this.#loads.set(cacheKey, load);
    this.#pending.add(load);
    return load;
  }

  #leave(load: Load): void {
    if (--load.users > 0) return;
    this.#pending.delete(load);
    if (this.#loads.get(load.cacheKey) === load) this.#loads.delete(load.cacheKey);
  }

  #denied(key: ConnectionKey): GatewayError {
    return new GatewayError(
      'ACCESS_DENIED',
      `the caller may not use connection '${key.connectionId}' of provider '${key.providerId}'`,
    );
  }

  /**
   * A connection that needs consent: with a login link for delegated use; an API key or basic
   * connection (no consent brings a key or a password) says it needs a new credential from an admin.
   */
  async #consentError(key: ConnectionKey, e: GatewayError, delegated: boolean): Promise<GatewayError> {
    const provider = await orStoreUnavailable(this.#deps.reads.getProvider(key.providerId));
    if (provider && isStaticCredential(provider.grantType))
      return new GatewayError(
        e.code,
        `connection '${key.connectionId}' of provider '${key.providerId}' needs a new ${provider.grantType === 'BASIC' ? 'username and password' : 'API key'} (updateConnection)`,
      );
    return delegated ? this.#withLoginLink(key, e) : e;
  }

  async #withLoginLink(key: ConnectionKey, e: GatewayError): Promise<GatewayError> {
    const link = await this.#deps.loginLinks.runtimeLoginLink(key, this.#deps.postLoginRedirectUrl);
    return new GatewayError(e.code, `${e.message}: open extensions.loginUrl to consent`, {
      details: { ...e.details, loginUrl: link.url },
      cause: e.cause,
    });
  }

  /** First use by a user: their own connection, usable by them only, waiting for their consent. */
  async #createForCaller(request: TokenRequest): Promise<never> {
    if (request.principal.kind !== 'caller') throw new Error('unreachable: delegated use needs a caller');
    const caller = request.principal.caller;
    const key: ConnectionKey = { providerId: request.providerId, connectionId: request.connectionId };
    try {
      await this.#deps.createOnFirstUse(
        key,
        { objectId: caller.oid ?? caller.sub, tenantId: caller.tenantId, issuer: caller.issuer },
        caller.sub,
      );
      this.#deps.logger.info(
        { provider: key.providerId, connection: key.connectionId },
        'created a connection for its user on first use',
      );
    } catch (e) {
      if (!isGatewayError(e)) throw e;
      if (e.code === 'NOT_FOUND')
        throw new GatewayError('CONNECTION_NOT_FOUND', `${providerLabel(key.providerId)} not found`);
      if (e.code !== 'ALREADY_EXISTS') throw e;
      // Created meanwhile: by this user's concurrent request, fine; by anyone else, not theirs.
      const [policies = []] = await this.#deps.reads.listAccessPolicies([key]);
      if (!isAllowed(policies, request.principal)) throw this.#denied(key);
    }
    throw await this.#withLoginLink(key, needsConsent({ id: key.connectionId, providerId: key.providerId }));
  }
}
