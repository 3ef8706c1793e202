/**
 * From a stored provider (and, for client credentials, its connection) to what the OAuth layer
 * needs: catalog quirks, resolved endpoints, request parameters, the opened client secret.
 */
import type { Envelope } from '../crypto/envelope.js';
import type { ConnectionRecord, ProviderRecord } from '../domain/model.js';
import { GatewayError } from '../errors.js';
import type { OAuthClientConfig } from '../oauth/types.js';
import { findIdentityProvider, type IdentityProviderEntry } from '../providers/catalog.js';
import type { ChangeEvent } from '../store/types.js';
import {
  effectiveScopes,
  extraAuthorizationParameters,
  extraTokenParameters,
  resolveEndpoints,
} from '../providers/endpoints.js';

export interface ResolvedClient {
  readonly config: OAuthClientConfig;
  readonly scopes: readonly string[];
}

export interface ClientOptions {
  readonly allowInsecureHttp: boolean;
}

const providerClientKey = (providerId: string): string => `provider:${providerId}`;
const connectionClientKey = (providerId: string, connectionId: string): string =>
  `${providerClientKey(providerId)}/connection:${connectionId}`;

/**
 * The OAuth client cache keys a change may have made stale or ownerless: a provider's own and its
 * connections' own clients; a connection's own client; everything after missed changes (null).
 */
export function clientsAffectedBy(event: ChangeEvent | null): (cacheKey: string) => boolean {
  if (event === null) return () => true;
  if (event.connectionId !== undefined) {
    const key = connectionClientKey(event.providerId, event.connectionId);
    return (cacheKey) => cacheKey === key;
  }
  const key = providerClientKey(event.providerId);
  return (cacheKey) => cacheKey === key || cacheKey.startsWith(`${key}/`);
}

/** The provider's catalog entry; a stored provider whose entry is gone is a configuration fault. */
export function catalogEntryOf(provider: Pick<ProviderRecord, 'identityProvider'>): IdentityProviderEntry {
  const entry = findIdentityProvider(provider.identityProvider);
  if (!entry)
    throw new GatewayError('INTERNAL_SERVER_ERROR', 'provider configuration is invalid', {
      cause: new Error(`unknown identity provider ${provider.identityProvider}`),
    });
  return entry;
}

export function resolveClient(
  envelope: Envelope,
  provider: ProviderRecord,
  options: ClientOptions,
  connection?: ConnectionRecord,
): ResolvedClient {
  const entry = catalogEntryOf(provider);
  const endpoints = resolveEndpoints(entry, provider.parameters, options);
  // Client credentials connections may carry their own client; otherwise the provider's is used.
  const own = connection !== undefined && connection.clientId !== null ? connection : null;
  const clientId = own ? own.clientId : provider.clientId;
  if (clientId === null) {
    // Creation refuses such a connection; this is a store edited by other means.
    throw new GatewayError(
      'PROVIDER_UNAVAILABLE',
      `credential provider '${provider.id}' has no client and the connection none of its own`,
    );
  }
  const clientSecret = own
    ? own.clientSecret &&
      envelope.open(own.clientSecret, {
        kind: 'connection',
        field: 'clientSecret',
        providerId: provider.id,
        connectionId: own.id,
      })
    : provider.clientSecret &&
      envelope.open(provider.clientSecret, { kind: 'provider', field: 'clientSecret', providerId: provider.id });
  return {
    scopes: effectiveScopes(entry, provider),
    config: {
      cacheKey: own ? connectionClientKey(provider.id, own.id) : providerClientKey(provider.id),
      issuer: endpoints.issuer,
      discoveryUrl: endpoints.discoveryUrl,
      authorizationUrl: endpoints.authorizationUrl,
      tokenUrl: endpoints.tokenUrl,
      revocationUrl: endpoints.revocationUrl,
      clientId,
      clientSecret: clientSecret ?? null,
      quirks: { ...entry.quirks, extraAuthorizationParams: extraAuthorizationParameters(entry, provider) },
      extraTokenParams: extraTokenParameters(entry, provider),
    },
  };
}
