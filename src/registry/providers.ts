/** Credential provider operations: validate at the edge, seal secrets, let the store enforce the rest. */
import type { ProviderRecord } from '../domain/model.js';
import { notFound, providerLabel } from '../store/errors.js';
import { validateProviderInput, validateProviderPatch, type ProviderInputRaw } from '../providers/validate.js';
import type { ProviderPatch } from '../store/types.js';
import type { RegistryDeps } from './deps.js';

export async function requireProvider(deps: Pick<RegistryDeps, 'store'>, id: string): Promise<ProviderRecord> {
  const provider = await deps.store.getProvider(id);
  if (!provider) throw notFound(providerLabel(id));
  return provider;
}

export async function createProvider(deps: RegistryDeps, raw: ProviderInputRaw): Promise<ProviderRecord> {
  const input = validateProviderInput(raw, 'input', { allowInsecureHttp: deps.allowInsecureHttp });
  const now = deps.now();
  return deps.store.insertProvider(
    {
      id: input.id,
      displayName: input.displayName,
      identityProvider: input.identityProvider,
      grantType: input.grantType,
      clientId: input.clientId,
      clientSecret:
        input.clientSecret === null
          ? null
          : deps.envelope.seal(input.clientSecret, { kind: 'provider', field: 'clientSecret', providerId: input.id }),
      scopes: input.scopes,
      parameters: input.parameters,
      version: 1,
      createdAt: now,
      updatedAt: now,
    },
    deps.limits.providersPerInstance,
  );
}

export async function updateProvider(
  deps: RegistryDeps,
  id: string,
  raw: Omit<ProviderInputRaw, 'id' | 'identityProvider' | 'grantType'>,
  expectedVersion: number | null,
): Promise<ProviderRecord> {
  const current = await requireProvider(deps, id);
  const valid = validateProviderPatch(current, raw, 'input', { allowInsecureHttp: deps.allowInsecureHttp });
  const patch: ProviderPatch = {
    ...(valid.displayName !== undefined && { displayName: valid.displayName }),
    ...(valid.clientId !== undefined && { clientId: valid.clientId }),
    ...(valid.scopes !== undefined && { scopes: valid.scopes }),
    ...(valid.parameters !== undefined && { parameters: valid.parameters }),
    ...(valid.clientSecret !== undefined && {
      clientSecret:
        valid.clientSecret === null
          ? null
          : deps.envelope.seal(valid.clientSecret, { kind: 'provider', field: 'clientSecret', providerId: id }),
    }),
  };
  const updated = await deps.store.updateProvider(id, patch, expectedVersion);
  await deps.changes.publish({ providerId: id });
  return updated;
}

export async function deleteProvider(deps: RegistryDeps, id: string, expectedVersion: number | null): Promise<void> {
  await deps.store.deleteProvider(id, expectedVersion);
  await deps.changes.publish({ providerId: id });
}
