/**
 * Seeds the demo through the registry, as the management API would, and idempotently: the
 * store persists across restarts (./data), the demo authorization servers do not.
 *
 * - A demo provider is created, or updated to the running authorization server (its issuer and
 *   its client secret, new on every start). A provider of another kind under the same id is
 *   not the demo's: the start fails instead of changing it.
 * - The connected user gets a connection on each provider, usable by that user only (the same
 *   policy the gateway gives a connection it creates for its user on first use). Existing
 *   connections are kept.
 * - Tokens stored by an earlier run belong to grants the restarted authorization servers no
 *   longer know: such connections are set to REAUTHORIZATION_REQUIRED at once, so the first
 *   query answers with a login link rather than with a token the subgraph refuses.
 */
import { ConfigError } from '../config/schema.js';
import { MAX_PAGE_SIZE, type ProviderRecord } from '../domain/model.js';
import { insertConnection } from '../registry/connections.js';
import type { RegistryDeps } from '../registry/deps.js';
import { ownerPolicy } from '../registry/policies.js';
import { createProvider, updateProvider } from '../registry/providers.js';
import type { ConnectionKey } from '../domain/ids.js';

export interface DemoProvider {
  readonly id: string;
  readonly displayName: string;
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scopes: readonly string[];
}

/** Every demo provider is of this catalog kind; a provider of another kind is not the demo's. */
export const DEMO_IDENTITY_PROVIDER = 'oidc';
const GRANT_TYPE = 'AUTHORIZATION_CODE';
const FORGOTTEN_GRANT_MESSAGE =
  'the demo authorization server was restarted and no longer knows this grant; consent again';

async function upsertProvider(registry: RegistryDeps, p: DemoProvider): Promise<ProviderRecord> {
  const fields = {
    clientId: p.clientId,
    clientSecret: p.clientSecret,
    scopes: p.scopes,
    parameters: { issuer: p.issuer },
  };
  const existing = await registry.store.getProvider(p.id);
  if (existing === null) {
    return createProvider(registry, {
      id: p.id,
      displayName: p.displayName,
      identityProvider: DEMO_IDENTITY_PROVIDER,
      grantType: GRANT_TYPE,
      ...fields,
    });
  }
  if (existing.identityProvider !== DEMO_IDENTITY_PROVIDER || existing.grantType !== GRANT_TYPE) {
    throw new ConfigError([
      `credential provider '${p.id}' in the store is not the demo's (${existing.identityProvider}, ${existing.grantType}); ` +
        'delete it through the admin API, or run the demo on another store (CG_STORE_URL)',
    ]);
  }
  return updateProvider(registry, p.id, fields, null);
}

async function ensureConnectionOf(registry: RegistryDeps, provider: ProviderRecord, user: DemoUser): Promise<void> {
  const key: ConnectionKey = { providerId: provider.id, connectionId: user.sub };
  if ((await registry.store.getConnection(key)) !== null) return;
  await insertConnection(registry, provider, { id: user.sub, displayName: user.sub }, (k, now) => [
    ownerPolicy(k, { objectId: user.sub, tenantId: null, issuer: user.issuer }, now),
  ]);
}

/** Connections of the provider holding tokens from grants the authorization server has forgotten. */
async function expireForgottenGrants(registry: RegistryDeps, providerId: string): Promise<number> {
  let after: string | null = null;
  let count = 0;
  do {
    const [page] = await registry.store.listConnectionsOfProviders([providerId], { first: MAX_PAGE_SIZE, after });
    if (page === undefined) break;
    for (const connection of page.items) {
      if (connection.state.status !== 'CONNECTED') continue;
      const key: ConnectionKey = { providerId, connectionId: connection.id };
      await registry.store.setConnectionState(key, {
        status: 'ERROR',
        error: { code: 'REAUTHORIZATION_REQUIRED', message: FORGOTTEN_GRANT_MESSAGE },
      });
      await registry.changes.publish(key);
      count += 1;
    }
    after = page.nextCursor;
  } while (after !== null);
  return count;
}

export interface SeedReport {
  /** Connections whose stored grant the fresh authorization servers do not know. */
  readonly expiredConnections: number;
}

/** The connected user: a subject of the demo's caller issuer. */
export interface DemoUser {
  readonly sub: string;
  readonly issuer: string;
}

/** Providers up to date with the running authorization servers, and a connection for `user` on each. */
export async function seedDemo(
  registry: RegistryDeps,
  providers: readonly DemoProvider[],
  user: DemoUser,
): Promise<SeedReport> {
  let expiredConnections = 0;
  for (const p of providers) {
    const provider = await upsertProvider(registry, p);
    expiredConnections += await expireForgottenGrants(registry, provider.id);
    await ensureConnectionOf(registry, provider, user);
  }
  return Object.freeze({ expiredConnections });
}
