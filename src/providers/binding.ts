/**
 * What a provider's client secret and its connections' tokens are bound to: its client id and
 * every parameter its endpoint URLs are made of (catalog data: `ParameterSpec.endpoint`). A change
 * to any of them sends the secret and the tokens to wherever the new values point, so a leaked
 * admin key could collect every stored refresh token; such a change needs a new secret in the same
 * update, and the registry drops the connections' tokens with it.
 */
import type { ProviderRecord } from '../domain/model.js';
import type { IdentityProviderEntry } from './catalog.js';
import { parameterValue } from './endpoints.js';

/** Whether two states of one provider send secrets and tokens to the same client at the same endpoints. */
export function sameBinding(
  entry: IdentityProviderEntry,
  a: Pick<ProviderRecord, 'clientId' | 'parameters'>,
  b: Pick<ProviderRecord, 'clientId' | 'parameters'>,
): boolean {
  return a.clientId === b.clientId && bindingChanges(entry, a, { parameters: b.parameters }).length === 0;
}

/**
 * The bound fields the patch changes, as input paths relative to the input (`clientId`,
 * `parameters.tokenUrl`); empty when the binding stays. Effective values are compared, defaults
 * included, so setting a parameter to the value it already has changes nothing.
 */
export function bindingChanges(
  entry: IdentityProviderEntry,
  current: Pick<ProviderRecord, 'clientId' | 'parameters'>,
  patch: { readonly clientId?: string; readonly parameters?: Readonly<Record<string, string>> },
): readonly string[] {
  const changed: string[] = [];
  if (patch.clientId !== undefined && patch.clientId !== current.clientId) changed.push('clientId');
  if (patch.parameters !== undefined) {
    const next = patch.parameters;
    for (const spec of entry.parameters) {
      if (spec.endpoint && parameterValue(spec, current.parameters) !== parameterValue(spec, next)) {
        changed.push(`parameters.${spec.name}`);
      }
    }
  }
  return Object.freeze(changed);
}
