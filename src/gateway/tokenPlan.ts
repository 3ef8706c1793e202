/**
 * Token planning: for one subgraph and one caller, binding → principal → connection id → token
 * request. This is where the connection id of a subgraph call is born (renderConnectionId over the
 * binding's template and the caller's claims). Each request gets one DataLoader that plans once per
 * subgraph and resolves each distinct connection once.
 */
import DataLoader from 'dataloader';
import { asGatewayError, GatewayError } from '../errors.js';
import type { Caller } from '../identity/caller.js';
import type { Logger } from '../log.js';
import type { Principal } from '../tokens/accessPolicy.js';
import type { TokenExchanger } from '../tokens/exchange.js';
import type { TokenRequest, TokenResolver } from '../tokens/resolver.js';
import type { AccessToken } from '../tokens/tokenSource.js';
import type { GatewayContext } from './dataSource.js';
import { renderConnectionId, type SubgraphBinding } from './supergraphConfig.js';

export interface TokenPlanDeps {
  /** Read per request: a reload may change a binding without changing the schema. */
  readonly bindingOf: (subgraph: string) => SubgraphBinding | null;
  readonly resolver: TokenResolver;
  /** `identity: exchange` bindings: the caller's JWT exchanged for the subgraph's own audience. */
  readonly exchanger: TokenExchanger;
  readonly managedObjectId: string;
  readonly logger: Logger;
}

/** An `identity: exchange` binding's request: the caller's JWT (held for this request only) for the binding's audience. */
export interface ExchangeRequest {
  readonly exchange: true;
  readonly providerId: string;
  readonly caller: Caller;
  readonly jwt: string;
  readonly audience: string;
  readonly scope: string | null;
}

export type PlannedRequest = TokenRequest | ExchangeRequest;

/** One subgraph's binding and what it asks for this caller, or why it cannot (decided once per request). */
type Planned = { readonly binding: SubgraphBinding; readonly request: PlannedRequest | GatewayError } | null;

/**
 * The token request a binding makes for this caller; throws when the caller cannot make it. `jwt`
 * is the bearer JWT the caller was verified from: only an exchange binding sends it on.
 */
export function requestFor(
  binding: SubgraphBinding,
  caller: Caller | null,
  managedObjectId: string,
  jwt: string | null = null,
): PlannedRequest {
  if (binding.identity === 'exchange') {
    if (!caller || jwt === null)
      throw new GatewayError('UNAUTHENTICATED', 'this field needs a signed-in caller: send a bearer JWT');
    return {
      exchange: true,
      providerId: binding.providerId,
      caller,
      jwt,
      audience: binding.audience,
      scope: binding.scope,
    };
  }
  let principal: Principal;
  if (binding.identity === 'managed') principal = { kind: 'managed', objectId: managedObjectId };
  else if (caller) principal = { kind: 'caller', caller };
  else throw new GatewayError('UNAUTHENTICATED', 'this field needs a signed-in caller: send a bearer JWT');
  // Without a caller only a managed binding is left, and those name a fixed connection (supergraphConfig).
  const connectionId = renderConnectionId(binding.connection, caller?.claims ?? {}, caller?.issuerName ?? null);
  if (connectionId === null)
    throw new GatewayError(
      'ACCESS_DENIED',
      "the caller's token lacks the claims this subgraph's connection is named after",
    );
  return {
    providerId: binding.providerId,
    connectionId,
    principal,
    delegated: binding.identity === 'jwt' && binding.connection.kind === 'claims',
  };
}

function plan(deps: TokenPlanDeps, name: string, caller: Caller | null, jwt: string | null): Planned {
  const binding = deps.bindingOf(name);
  if (!binding) return null;
  try {
    return { binding, request: requestFor(binding, caller, deps.managedObjectId, jwt) };
  } catch (e) {
    return { binding, request: asGatewayError(e) };
  }
}

/** What one subgraph's binding resolves to for this caller; null when it needs no token. */
async function tokenFor(deps: TokenPlanDeps, name: string, planned: Planned): Promise<AccessToken | null> {
  if (!planned) return null;
  const { binding, request } = planned;
  try {
    if (request instanceof GatewayError) throw request;
    if ('exchange' in request) return await deps.exchanger.exchange({ ...request, subjectToken: request.jwt });
    return await deps.resolver.resolve({ ...request, subgraph: name });
  } catch (e) {
    if (!binding.ignoreError) throw e;
    deps.logger.info(
      { subgraph: name, code: asGatewayError(e).code },
      'token resolution failed; sending without a token (ignore_error)',
    );
    return null;
  }
}

/** Two subgraphs bound to the same connection for the same caller share one resolution. */
function resolutionKey(name: string, planned: Planned): string {
  if (!planned) return `none:${name}`;
  const { binding, request } = planned;
  if (request instanceof GatewayError) return `invalid:${name}`;
  if ('exchange' in request)
    return `exchange:${JSON.stringify([request.providerId, request.audience, request.scope, binding.ignoreError])}`;
  return `${request.providerId}/${request.connectionId}/${binding.identity}/${binding.ignoreError}`;
}

/** The per-request context: the tokens this caller's subgraph calls carry (`jwt`: the bearer JWT `caller` was verified from). */
export function tokenContext(deps: TokenPlanDeps, caller: Caller | null, jwt: string | null): GatewayContext {
  // The DataLoader asks for a key on every load and resolves each batch once: plan once per name.
  const planned = new Map<string, Planned>();
  const planOf = (name: string): Planned => {
    if (!planned.has(name)) planned.set(name, plan(deps, name, caller, jwt));
    return planned.get(name)!;
  };
  return {
    tokens: new DataLoader<string, AccessToken | null, string>(
      (names) =>
        Promise.all(names.map((name) => tokenFor(deps, name, planOf(name)).catch((e: unknown) => asGatewayError(e)))),
      { cacheKeyFn: (name) => resolutionKey(name, planOf(name)) },
    ),
  };
}

/**
 * Start resolving every token the plan will need, all at once, before the first fetch goes out.
 * Failures surface at each subgraph's fetch (`loadMany` settles every key; it never rejects).
 */
export function prefetchTokens(context: Partial<GatewayContext>, services: readonly string[]): void {
  void context.tokens?.loadMany(services);
}
