/**
 * The `get-authorization-context` step: access check → cache → store (decrypt) → refresh. Shared by
 * the federation gateway (one call per subgraph binding) and the token endpoint.
 */
import type { AccessPolicyRecord } from '../domain/model.js';
import { GatewayError, isGatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import { insertConnection } from '../registry/connections.js';
import type { RegistryDeps } from '../registry/deps.js';
import { requireProvider } from '../registry/providers.js';
import type { ConnectionKey } from '../store/types.js';
import { isAllowed, type Principal } from './accessPolicy.js';
import type { TokenCache } from './cache.js';
import { NO_TOKEN_EVENTS, type TokenEvents } from './events.js';
import type { AcquisitionLimiter } from './rateLimiter.js';
import type { AccessToken, TokenSource } from './tokenSource.js';

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
  createLoginLink(key: ConnectionKey, postLoginRedirectUrl: string): Promise<{ readonly url: string }>;
}

export interface ResolverDeps {
  readonly tokens: TokenSource;
  readonly registry: RegistryDeps;
  readonly cache: TokenCache;
  readonly limiter: AcquisitionLimiter;
  readonly loginLinks: LoginLinks;
  /** Where the browser lands after consent started from a runtime error. */
  readonly postLoginRedirectUrl: string;
  readonly logger: Logger;
  readonly events?: TokenEvents;
}

/** The policy id of a connection created for its user on first use. */
export const DELEGATED_USER_POLICY_ID = 'owner';

const CONSENT_CODES = new Set(['CONNECTION_NOT_CONNECTED', 'REAUTHORIZATION_REQUIRED']);

export class TokenResolver {
  readonly #deps: ResolverDeps;

  constructor(deps: ResolverDeps) {
    this.#deps = deps;
    deps.registry.changes.subscribe((e) => deps.cache.evict(e.providerId, e.connectionId));
  }

  async resolve(request: TokenRequest): Promise<AccessToken> {
    const events = this.#deps.events ?? NO_TOKEN_EVENTS;
    const principal = request.principal.kind === 'managed' ? `managed:${request.principal.objectId}` : `${request.principal.caller.issuer}#${request.principal.caller.sub}`;
    const use = { providerId: request.providerId, connectionId: request.connectionId, principal, ...(request.subgraph !== undefined && { subgraph: request.subgraph }) };
    try {
      const token = await this.#resolve(request, events);
      events.tokenUse({ ...use, outcome: 'granted' });
      return token;
    } catch (e) {
      events.tokenUse({ ...use, outcome: isGatewayError(e) ? e.code : 'INTERNAL_SERVER_ERROR' });
      throw e;
    }
  }

  async #resolve(request: TokenRequest, events: TokenEvents): Promise<AccessToken> {
    const key: ConnectionKey = { providerId: request.providerId, connectionId: request.connectionId };
    const cacheKey = `${key.providerId}/${key.connectionId}`;
    const hit = this.#deps.cache.get(cacheKey);
    if (hit) {
      events.cacheHit(key);
      if (!isAllowed(hit.policies, request.principal)) throw this.#denied(key);
      return hit.token;
    }
    events.cacheMiss(key);
    this.#deps.limiter.take(cacheKey);
    const [policies = []] = await this.#deps.registry.store.listAccessPolicies([key]);
    if (!isAllowed(policies, request.principal)) {
      if (policies.length > 0) throw this.#denied(key);
      // No policy at all: most often no connection yet.
      const connection = await this.#deps.registry.store.getConnection(key);
      if (connection) throw this.#denied(key);
      if (request.delegated && request.principal.kind === 'caller') return this.#createForCaller(request);
      throw new GatewayError('CONNECTION_NOT_FOUND', `connection '${key.connectionId}' of provider '${key.providerId}' not found`);
    }
    try {
      const token = await this.#deps.tokens.get(key);
      this.#deps.cache.set(cacheKey, { token, policies: policies as readonly AccessPolicyRecord[] });
      return token;
    } catch (e) {
      if (request.delegated && isGatewayError(e) && CONSENT_CODES.has(e.code)) throw await this.#withLoginLink(key, e);
      throw e;
    }
  }

  #denied(key: ConnectionKey): GatewayError {
    return new GatewayError('ACCESS_DENIED', `the caller may not use connection '${key.connectionId}' of provider '${key.providerId}'`);
  }

  async #withLoginLink(key: ConnectionKey, e: GatewayError): Promise<GatewayError> {
    const link = await this.#deps.loginLinks.createLoginLink(key, this.#deps.postLoginRedirectUrl);
    return new GatewayError(e.code, `${e.message}: open extensions.loginUrl to consent`, { details: { ...e.details, loginUrl: link.url }, cause: e.cause });
  }

  /** First use by a user: their own connection, usable by them only, waiting for their consent. */
  async #createForCaller(request: TokenRequest): Promise<never> {
    if (request.principal.kind !== 'caller') throw new Error('unreachable: delegated use needs a caller');
    const caller = request.principal.caller;
    const key: ConnectionKey = { providerId: request.providerId, connectionId: request.connectionId };
    try {
      const provider = await requireProvider(this.#deps.registry, key.providerId);
      await insertConnection(this.#deps.registry, provider, { id: key.connectionId, displayName: caller.sub }, (k, now) => [
        Object.freeze({
          ...k,
          id: DELEGATED_USER_POLICY_ID,
          kind: 'USER' as const,
          objectId: caller.oid ?? caller.sub,
          tenantId: caller.tenantId,
          appIds: Object.freeze([]),
          createdAt: now,
        }),
      ]);
      this.#deps.logger.info({ provider: key.providerId, connection: key.connectionId }, 'created a connection for its user on first use');
    } catch (e) {
      if (!isGatewayError(e)) throw e;
      if (e.code === 'NOT_FOUND') throw new GatewayError('CONNECTION_NOT_FOUND', `credential provider '${key.providerId}' not found`);
      if (e.code !== 'ALREADY_EXISTS') throw e;
      // Created meanwhile: by this user's concurrent request, fine; by anyone else, not theirs.
      const [policies = []] = await this.#deps.registry.store.listAccessPolicies([key]);
      if (!isAllowed(policies, request.principal)) throw this.#denied(key);
    }
    throw await this.#withLoginLink(
      key,
      new GatewayError('CONNECTION_NOT_CONNECTED', `connection '${key.connectionId}' of provider '${key.providerId}' needs consent first`),
    );
  }
}
