/**
 * Validation of credential provider input against the catalog. Every failure is BAD_USER_INPUT
 * naming the full path of the offending field (`input.parameters.tenantId`); values are never
 * echoed back, since some of them are secrets.
 */
import { badInput } from '../errors.js';
import { absent, characters, requireString, validateId } from '../domain/ids.js';
import { hasControlCharacter } from '../values.js';
import { GRANT_TYPES, isStaticCredential, type GrantType, type ProviderRecord } from '../domain/model.js';
import {
  IDENTITY_PROVIDER_NAMES,
  findIdentityProvider,
  type IdentityProviderEntry,
  type ParameterLevel,
  type ParameterSpec,
} from './catalog.js';
import { bindingChanges } from './binding.js';
import { checkParameterValue, hasWhitespaceOrControl, type UrlOptions } from './formats.js';

export const MAX_DISPLAY_NAME_LENGTH = 256;
export const MAX_CLIENT_ID_LENGTH = 1024;
export const MAX_CLIENT_SECRET_LENGTH = 4096;
export const MAX_SCOPES = 100;
export const MAX_SCOPE_LENGTH = 1024;

export interface ParameterInputRaw {
  readonly name: string;
  readonly value: string | null;
}

/** A `{name, value}` list (GraphQL input) or a plain string map. */
export type ParametersRaw = readonly ParameterInputRaw[] | Readonly<Record<string, string | null>>;

/** A provider as the GraphQL layer receives it; everything is checked, types included. */
export interface ProviderInputRaw {
  readonly id?: string | null;
  readonly displayName?: string | null;
  readonly identityProvider?: string | null;
  readonly grantType?: string | null;
  readonly clientId?: string | null;
  readonly clientSecret?: string | null;
  readonly scopes?: readonly string[] | null;
  readonly parameters?: ParametersRaw | null;
}

export interface ValidProviderInput {
  readonly id: string;
  readonly displayName: string;
  readonly identityProvider: string;
  readonly grantType: GrantType;
  /** Null only for client credentials: then each connection carries its own client. */
  readonly clientId: string | null;
  readonly clientSecret: string | null;
  readonly scopes: readonly string[];
  readonly parameters: Readonly<Record<string, string>>;
}

/** Only the fields that change; absent means "keep". `clientSecret: null` removes a public client's secret. */
export interface ValidProviderPatch {
  readonly displayName?: string;
  readonly clientId?: string;
  readonly clientSecret?: string | null;
  readonly scopes?: readonly string[];
  readonly parameters?: Readonly<Record<string, string>>;
  /**
   * The client id and endpoint parameters the patch changes (`clientId`, `parameters.tokenUrl`):
   * when any, the connections' tokens must go with the update (src/providers/binding.ts).
   */
  readonly rebinds?: readonly string[];
}

export type ValidationOptions = UrlOptions;

const PARAMETER_NAME = /^[A-Za-z][A-Za-z0-9]{0,63}$/;

/** A display name; `fallback` (usually the id) when none is given. */
export function validateDisplayName(value: unknown, field: string, fallback: string): string {
  if (absent(value)) return fallback;
  const name = requireString(value, field);
  const length = characters(name);
  if (length < 1 || length > MAX_DISPLAY_NAME_LENGTH || hasControlCharacter(name)) {
    throw badInput(field, `must be 1-${MAX_DISPLAY_NAME_LENGTH} characters without control characters`);
  }
  return name;
}

export function validateClientId(value: unknown, field: string): string {
  const id = requireString(value, field);
  if (id.length < 1 || id.length > MAX_CLIENT_ID_LENGTH || hasWhitespaceOrControl(id)) {
    throw badInput(field, `must be 1-${MAX_CLIENT_ID_LENGTH} characters without whitespace or control characters`);
  }
  return id;
}

/**
 * A client secret; null when absent or empty and `required` is false. `requiredBy` names who
 * requires it in the message (for example `identity provider github`).
 */
export function validateClientSecret(
  value: unknown,
  field: string,
  required: boolean,
  requiredBy: string,
): string | null {
  if (absent(value) || value === '') {
    if (required) throw badInput(field, `is required by ${requiredBy}`);
    return null;
  }
  if (typeof value !== 'string') throw badInput(field, 'must be a string');
  if (value.length > MAX_CLIENT_SECRET_LENGTH)
    throw badInput(field, `must be at most ${MAX_CLIENT_SECRET_LENGTH} characters`);
  return value;
}

function validateIdentityProvider(value: unknown, field: string): IdentityProviderEntry {
  const entry = typeof value === 'string' ? findIdentityProvider(value) : undefined;
  if (entry === undefined) throw badInput(field, `must be one of ${IDENTITY_PROVIDER_NAMES.join(', ')}`);
  return entry;
}

function validateGrantType(value: unknown, field: string, entry: IdentityProviderEntry): GrantType {
  // Most providers support one grant type; the catalog lists the usual one first.
  if (absent(value)) return entry.grantTypes[0] as GrantType;
  const grantType = GRANT_TYPES.find((g) => g === value);
  if (grantType === undefined) throw badInput(field, `must be one of ${GRANT_TYPES.join(', ')}`);
  if (!entry.grantTypes.includes(grantType)) throw badInput(field, `${grantType} is not supported by ${entry.name}`);
  return grantType;
}

/** Scopes as given (duplicates dropped); none means the entry's defaults apply. */
export function validateScopes(value: unknown, field: string, entry: IdentityProviderEntry): readonly string[] {
  if (absent(value)) return Object.freeze([]);
  if (!Array.isArray(value)) throw badInput(field, 'must be a list of strings');
  if (value.length > MAX_SCOPES) throw badInput(field, `must have at most ${MAX_SCOPES} items`);
  const separator = entry.quirks.scopeSeparator;
  value.forEach((scope: unknown, i) => {
    const item = `${field}[${i}]`;
    if (typeof scope !== 'string') throw badInput(item, 'must be a string');
    if (scope.length < 1 || scope.length > MAX_SCOPE_LENGTH || hasWhitespaceOrControl(scope)) {
      throw badInput(item, `must be 1-${MAX_SCOPE_LENGTH} characters without whitespace or control characters`);
    }
    if (scope.includes(separator))
      throw badInput(item, `must not contain '${separator}' (the scope separator of ${entry.name})`);
  });
  return Object.freeze([...new Set(value as string[])]);
}

/** The given parameters as a map; '' and null values stay in it (they mean "unset"). */
function parameterMap(value: unknown, field: string): Map<string, string | null> {
  const map = new Map<string, string | null>();
  const add = (name: unknown, v: unknown, at: string): void => {
    if (typeof name !== 'string' || !PARAMETER_NAME.test(name))
      throw badInput(at, 'must have a parameter name (letters and digits)');
    const path = `${field}.${name}`;
    if (map.has(name)) throw badInput(path, 'is given more than once');
    if (!absent(v) && typeof v !== 'string') throw badInput(path, 'must be a string');
    map.set(name, absent(v) ? null : v);
  };
  if (Array.isArray(value)) {
    value.forEach((item: unknown, i) => {
      const at = `${field}[${i}]`;
      if (item === null || typeof item !== 'object') throw badInput(at, 'must be an object with name and value');
      const { name, value: v } = item as { name?: unknown; value?: unknown };
      add(name, v, at);
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [name, v] of Object.entries(value)) add(name, v, field);
  } else {
    throw badInput(field, 'must be a list of {name, value} or a string map');
  }
  return map;
}

export function providerParameterSpecs(entry: IdentityProviderEntry): readonly ParameterSpec[] {
  return entry.parameters.filter((p) => p.level === 'PROVIDER');
}

/** Parameters set per connection (none of the built-in entries has any yet). */
export function connectionParameterSpecs(entry: IdentityProviderEntry): readonly ParameterSpec[] {
  return entry.parameters.filter((p) => p.level === 'CONNECTION');
}

export interface ParameterValidation extends ValidationOptions {
  /** Path of the parameters field, for messages (`input.parameters`). */
  readonly path: string;
  readonly level: ParameterLevel;
}

/**
 * Checks parameters of one level against the entry and grant type: names known, values in
 * format, required ones present; defaults filled in. Empty values count as unset.
 */
export function validateParameters(
  entry: IdentityProviderEntry,
  grantType: GrantType,
  value: unknown,
  how: ParameterValidation,
): Readonly<Record<string, string>> {
  const given = absent(value) ? new Map<string, string | null>() : parameterMap(value, how.path);
  const specs = entry.parameters.filter((p) => p.level === how.level && p.grantTypes.includes(grantType));
  for (const [name, v] of given) {
    const field = `${how.path}.${name}`;
    const spec = entry.parameters.find((p) => p.name === name);
    if (spec === undefined) {
      const known = entry.parameters.map((p) => p.name);
      const hint = known.length === 0 ? 'it takes none' : `expected ${known.join(', ')}`;
      throw badInput(field, `is not a parameter of identity provider ${entry.name} (${hint})`);
    }
    if (spec.level !== how.level) throw badInput(field, `is set on the ${spec.level.toLowerCase()}, not here`);
    if (!specs.includes(spec) && v !== null && v !== '')
      throw badInput(field, `is not used with grant type ${grantType}`);
  }
  const out: Record<string, string> = {};
  for (const spec of specs) {
    const field = `${how.path}.${spec.name}`;
    const v = given.get(spec.name);
    const raw = v === undefined || v === null || v === '' ? spec.default : v;
    if (raw === null) {
      if (!spec.required) continue;
      const forGrant = spec.grantTypes.length < entry.grantTypes.length ? ` with grant type ${grantType}` : '';
      throw badInput(field, `is required by identity provider ${entry.name}${forGrant}`);
    }
    const check = checkParameterValue(spec, raw, how);
    if (!check.ok) throw badInput(field, check.problem);
    out[spec.name] = check.value;
  }
  return Object.freeze(out);
}

function refuseSecretWithoutClient(secret: unknown, path: string): void {
  if (!absent(secret) && secret !== '')
    throw badInput(`${path}.clientSecret`, `is only accepted with ${path}.clientId`);
}

/** API_KEY and BASIC providers have no OAuth client: each connection holds its credential. */
function refuseClientOfStaticCredential(
  input: Pick<ProviderInputRaw, 'clientId' | 'clientSecret'>,
  grantType: GrantType,
  path: string,
): void {
  for (const field of ['clientId', 'clientSecret'] as const) {
    if (!absent(input[field]) && input[field] !== '')
      throw badInput(
        `${path}.${field}`,
        `is not used with grant type ${grantType}: each connection holds its own credential`,
      );
  }
}

/**
 * A change of the client id or an endpoint needs a new client secret in the same update: the stored
 * one must never reach wherever the new values point. Not for a public client (it has no secret)
 * nor for a provider left without a client.
 */
function requireSecretForRebinding(
  current: Pick<ProviderRecord, 'clientId' | 'clientSecret'>,
  patch: Pick<ValidProviderPatch, 'clientId' | 'clientSecret'>,
  rebinds: readonly string[],
  entry: IdentityProviderEntry,
  path: string,
): void {
  if (patch.clientSecret !== undefined) return;
  if ((patch.clientId ?? current.clientId) === null) return;
  if (current.clientSecret === null && entry.quirks.publicClientAllowed) return;
  const changed = rebinds.map((field) => `${path}.${field}`).join(', ');
  throw badInput(
    `${path}.clientSecret`,
    `is required with a change of ${changed}: the stored client secret is bound to the endpoints and the client id ` +
      "(the change also disconnects the provider's connections)",
  );
}

/** A new credential provider, checked against the catalog, defaults applied, frozen. */
export function validateProviderInput(
  input: ProviderInputRaw,
  path = 'input',
  options: ValidationOptions = {},
): ValidProviderInput {
  const id = validateId(input.id, `${path}.id`);
  const displayName = validateDisplayName(input.displayName, `${path}.displayName`, id);
  const entry = validateIdentityProvider(input.identityProvider, `${path}.identityProvider`);
  const grantType = validateGrantType(input.grantType, `${path}.grantType`, entry);
  if (isStaticCredential(grantType)) refuseClientOfStaticCredential(input, grantType, path);
  // A client-credentials provider needs no client: each connection may carry its own.
  const clientId =
    isStaticCredential(grantType) || (grantType === 'CLIENT_CREDENTIALS' && absent(input.clientId))
      ? null
      : validateClientId(input.clientId, `${path}.clientId`);
  if (clientId === null) refuseSecretWithoutClient(input.clientSecret, path);
  const clientSecret =
    clientId === null
      ? null
      : validateClientSecret(
          input.clientSecret,
          `${path}.clientSecret`,
          !entry.quirks.publicClientAllowed,
          `identity provider ${entry.name}`,
        );
  const scopes = validateScopes(input.scopes, `${path}.scopes`, entry);
  const parameters = validateParameters(entry, grantType, input.parameters, {
    ...options,
    path: `${path}.parameters`,
    level: 'PROVIDER',
  });
  return Object.freeze({
    id,
    displayName,
    identityProvider: entry.name,
    grantType,
    clientId,
    clientSecret,
    scopes,
    parameters,
  });
}

/**
 * An update of an existing provider. The identity provider and grant type are fixed at creation
 * (tokens and connections depend on them); the id is the resource's name. Parameters merge into
 * the current ones, an empty value unsets one; scopes replace the current list.
 */
export function validateProviderPatch(
  current: Pick<ProviderRecord, 'id' | 'identityProvider' | 'grantType' | 'parameters' | 'clientId' | 'clientSecret'>,
  input: ProviderInputRaw,
  path = 'input',
  options: ValidationOptions = {},
): ValidProviderPatch {
  if (!absent(input.id) && input.id !== current.id) throw badInput(`${path}.id`, 'cannot be changed');
  if (!absent(input.identityProvider) && input.identityProvider !== current.identityProvider) {
    throw badInput(
      `${path}.identityProvider`,
      `cannot be changed (it is ${current.identityProvider}); create a new provider instead`,
    );
  }
  if (!absent(input.grantType) && input.grantType !== current.grantType) {
    throw badInput(
      `${path}.grantType`,
      `cannot be changed (it is ${current.grantType}); create a new provider instead`,
    );
  }
  const entry = findIdentityProvider(current.identityProvider);
  if (entry === undefined) {
    throw badInput(
      `${path}.identityProvider`,
      `${current.identityProvider} is no longer in the catalog; create a new provider instead`,
    );
  }
  const patch: { -readonly [K in keyof ValidProviderPatch]: ValidProviderPatch[K] } = {};
  if (isStaticCredential(current.grantType)) refuseClientOfStaticCredential(input, current.grantType, path);
  if (!absent(input.displayName))
    patch.displayName = validateDisplayName(input.displayName, `${path}.displayName`, current.id);
  if (!absent(input.clientId)) patch.clientId = validateClientId(input.clientId, `${path}.clientId`);
  if ((patch.clientId ?? current.clientId) === null) {
    refuseSecretWithoutClient(input.clientSecret, path);
  } else if (input.clientSecret !== undefined && input.clientSecret !== null) {
    patch.clientSecret = validateClientSecret(
      input.clientSecret,
      `${path}.clientSecret`,
      !entry.quirks.publicClientAllowed,
      `identity provider ${entry.name}`,
    );
  }
  if (!absent(input.scopes)) patch.scopes = validateScopes(input.scopes, `${path}.scopes`, entry);
  if (!absent(input.parameters)) {
    const field = `${path}.parameters`;
    const merged = new Map<string, string | null>();
    // Stored values of parameters the catalog no longer knows are dropped rather than blocking the update.
    for (const spec of providerParameterSpecs(entry)) {
      const stored = Object.hasOwn(current.parameters, spec.name) ? current.parameters[spec.name] : undefined;
      if (stored !== undefined) merged.set(spec.name, stored);
    }
    for (const [name, v] of parameterMap(input.parameters, field)) merged.set(name, v);
    patch.parameters = validateParameters(entry, current.grantType, Object.fromEntries(merged), {
      ...options,
      path: field,
      level: 'PROVIDER',
    });
  }
  const rebinds = bindingChanges(entry, current, patch);
  if (rebinds.length > 0) {
    requireSecretForRebinding(current, patch, rebinds, entry, path);
    patch.rebinds = rebinds;
  }
  return Object.freeze(patch);
}
