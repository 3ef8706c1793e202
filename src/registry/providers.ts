/** Credential provider operations: validate at the edge, seal secrets, let the store enforce the rest. */
import type { ProviderRecord } from '../domain/model.js';
import { notFound } from '../store/errors.js';
import { providerLabel } from '../domain/ids.js';
import { isGatewayError } from '../errors.js';
import {
  validateProviderInput,
  validateProviderPatch,
  type ProviderInputRaw,
  type ValidationOptions,
} from '../providers/validate.js';
import type { ProviderPatch } from '../store/types.js';
import type { RegistryDeps } from './deps.js';
import { tokenRetirement } from './retirement.js';

export async function requireProvider(deps: Pick<RegistryDeps, 'store'>, id: string): Promise<ProviderRecord> {
  const provider = await deps.store.getProvider(id);
  if (!provider) throw notFound(providerLabel(id));
  return provider;
}

/** How provider URLs are checked at input: literal private addresses are refused at once unless allowed. */
function urlOptions(deps: RegistryDeps): ValidationOptions {
  return { allowInsecureHttp: deps.allowInsecureHttp, refusePrivateAddresses: !deps.allowPrivateNetworks };
}

export async function createProvider(deps: RegistryDeps, raw: ProviderInputRaw): Promise<ProviderRecord> {
  const input = validateProviderInput(raw, 'input', urlOptions(deps));
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

/** An update without an expected version is retried this often when another one lands between read and write. */
const UNCONDITIONAL_UPDATE_ATTEMPTS = 3;

/**
 * A change of the client id or of an endpoint (catalog: `ParameterSpec.endpoint`) needs a new client
 * secret, and drops every connection's tokens in the same transaction: a leaked admin key must not
 * be a way to send stored secrets and refresh tokens to a new host. Replicas hear of it through the
 * change feed and drop their cached tokens and clients.
 */
export async function updateProvider(
  deps: RegistryDeps,
  id: string,
  raw: Omit<ProviderInputRaw, 'id' | 'identityProvider' | 'grantType'>,
  expectedVersion: number | null,
): Promise<ProviderRecord> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await updateProviderOnce(deps, id, raw, expectedVersion);
    } catch (e) {
      const raced = expectedVersion === null && isGatewayError(e) && e.code === 'VERSION_CONFLICT';
      if (!raced || attempt >= UNCONDITIONAL_UPDATE_ATTEMPTS) throw e;
    }
  }
}

async function updateProviderOnce(
  deps: RegistryDeps,
  id: string,
  raw: Omit<ProviderInputRaw, 'id' | 'identityProvider' | 'grantType'>,
  expectedVersion: number | null,
): Promise<ProviderRecord> {
  const current = await requireProvider(deps, id);
  const valid = validateProviderPatch(current, raw, 'input', urlOptions(deps));
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
  // The patch was checked against `current` (parameters merge into it, the binding compares with
  // it): it applies to that version only.
  const rebinds = valid.rebinds ?? [];
  const updated = await deps.store.updateProvider(id, patch, expectedVersion ?? current.version, {
    dropConnectionTokens: rebinds.length > 0,
    // Connections' own client secrets are bound to the endpoints, not to the provider's client id.
    dropConnectionClientSecrets: rebinds.some((field) => field !== 'clientId'),
  });
  await deps.changes.publish({ providerId: id });
  return updated;
}

export async function deleteProvider(deps: RegistryDeps, id: string, expectedVersion: number | null): Promise<void> {
  // Its connections' tokens move to the revocation queue in the same transaction.
  await deps.store.deleteProvider(id, expectedVersion, { retire: tokenRetirement(deps.envelope) });
  deps.onTokensRetired?.();
  await deps.changes.publish({ providerId: id });
}
