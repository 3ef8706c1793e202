/**
 * Turns a catalog entry plus a provider's parameters into what a flow needs: endpoint URLs,
 * scopes and extra request parameters. Generic over the catalog data; no provider names here.
 */
import { badInput } from '../errors.js';
import type { GrantType } from '../domain/model.js';
import { PLACEHOLDER, type IdentityProviderEntry, type ParameterSpec, type RequestPart } from './catalog.js';
import { checkParameterValue, type UrlOptions } from './formats.js';

export interface ResolvedEndpoints {
  readonly authorizationUrl: string | null;
  readonly tokenUrl: string | null;
  readonly discoveryUrl: string | null;
  readonly issuer: string | null;
  readonly revocationUrl: string | null;
}

/** The parts of a provider the expansion reads. */
export interface ProviderSettings {
  readonly grantType: GrantType;
  readonly scopes: readonly string[];
  readonly parameters: Readonly<Record<string, string>>;
}

export { templateParameters } from './catalog.js';

/** A parameter's value, its default when unset; null when neither exists. */
export function parameterValue(spec: ParameterSpec, parameters: Readonly<Record<string, string>>): string | null {
  const given = Object.hasOwn(parameters, spec.name) ? parameters[spec.name] : undefined;
  return given !== undefined && given !== '' ? given : spec.default;
}

function specOf(entry: IdentityProviderEntry, name: string): ParameterSpec {
  const spec = entry.parameters.find((p) => p.name === name);
  // The catalog tests guarantee every placeholder is declared; reaching this is a catalog bug.
  if (spec === undefined) throw new Error(`catalog entry ${entry.name} uses undeclared parameter {${name}}`);
  return spec;
}

/**
 * Expands a URL template. Host and path values are re-checked here (stored values may predate a
 * rule), path values are URL-encoded, and a URL value's trailing `/` merges with the template's.
 * Null when a placeholder has no value (for example `{authorizationUrl}` of a client-credentials provider).
 */
export function expandUrl(
  entry: IdentityProviderEntry,
  template: string | null,
  parameters: Readonly<Record<string, string>>,
  options: UrlOptions,
): string | null {
  if (template === null) return null;
  let missing = false;
  const expanded = template.replace(PLACEHOLDER, (_match, name: string, offset: number) => {
    const spec = specOf(entry, name);
    const value = parameterValue(spec, parameters);
    if (value === null) {
      missing = true;
      return '';
    }
    const check = checkParameterValue(spec, value, options);
    if (!check.ok) throw badInput(`parameters.${name}`, check.problem);
    switch (spec.format) {
      case 'url':
      case 'issuer':
        return template[offset + name.length + 2] === '/' ? check.value.replace(/\/+$/, '') : check.value;
      case 'host':
      case 'hostLabel':
        return check.value;
      case 'pathSegment':
      case 'text':
      case 'httpToken':
      case 'headerName':
        return encodeURIComponent(check.value);
    }
  });
  if (missing) return null;
  // Every part was checked on its own; the whole must still be a URL.
  if (!URL.canParse(expanded))
    throw badInput('parameters', `do not form a valid URL for identity provider ${entry.name}`);
  return expanded;
}

/** Expands a scope (or header) template with raw values; null when a placeholder has no value. */
export function expandScope(
  entry: IdentityProviderEntry,
  template: string,
  parameters: Readonly<Record<string, string>>,
): string | null {
  let missing = false;
  const expanded = template.replace(PLACEHOLDER, (_match, name: string) => {
    const value = parameterValue(specOf(entry, name), parameters);
    if (value === null) missing = true;
    return value ?? '';
  });
  return missing ? null : expanded;
}

/**
 * The endpoints of a provider. Throws BAD_USER_INPUT (field `parameters.<name>`) when a stored
 * value breaks its format, so no parameter can move an endpoint to another host.
 */
export function resolveEndpoints(
  entry: IdentityProviderEntry,
  parameters: Readonly<Record<string, string>>,
  options: UrlOptions = {},
): ResolvedEndpoints {
  const { endpoints } = entry;
  return Object.freeze({
    authorizationUrl: expandUrl(entry, endpoints.authorizationUrl, parameters, options),
    tokenUrl: expandUrl(entry, endpoints.tokenUrl, parameters, options),
    discoveryUrl: expandUrl(entry, endpoints.discovery, parameters, options),
    issuer: expandUrl(entry, endpoints.issuer, parameters, options),
    revocationUrl: expandUrl(entry, endpoints.revocationUrl, parameters, options),
  });
}

/**
 * Scopes to request: the provider's own, or else the entry's defaults for the grant type; then,
 * for authorization code, `openid` for OpenID Connect entries and the entry's always-added scopes.
 * Order kept, duplicates dropped.
 */
export function effectiveScopes(entry: IdentityProviderEntry, provider: ProviderSettings): readonly string[] {
  const code = provider.grantType === 'AUTHORIZATION_CODE';
  const base =
    provider.scopes.length > 0
      ? provider.scopes
      : (code ? entry.defaultScopes : entry.quirks.clientCredentialsScopes)
          .map((t) => expandScope(entry, t, provider.parameters))
          .filter((s): s is string => s !== null && s !== '');
  const added = code
    ? [...(entry.quirks.openIdConnect ? ['openid'] : []), ...entry.quirks.authorizationCodeScopes]
    : [];
  return Object.freeze([...new Set([...base, ...added])]);
}

/** The scope parameter value, joined with the entry's separator ('' when there are none: omit it). */
export function scopeString(entry: IdentityProviderEntry, scopes: readonly string[]): string {
  return scopes.join(entry.quirks.scopeSeparator);
}

function sentParameters(
  entry: IdentityProviderEntry,
  provider: Pick<ProviderSettings, 'grantType' | 'parameters'>,
  part: RequestPart,
  fixed: Readonly<Record<string, string>>,
): Readonly<Record<string, string>> {
  const out: Record<string, string> = { ...fixed };
  for (const spec of entry.parameters) {
    if (spec.sendAs === null || !spec.sendAs.in.includes(part) || !spec.grantTypes.includes(provider.grantType))
      continue;
    const value = parameterValue(spec, provider.parameters);
    if (value !== null) out[spec.sendAs.name] = value;
  }
  return Object.freeze(out);
}

/**
 * Extra parameters of the authorization request: the entry's fixed ones (Google offline access)
 * plus every set parameter sent with it (generic entries: `audience`, `resource`).
 */
export function extraAuthorizationParameters(
  entry: IdentityProviderEntry,
  provider: Pick<ProviderSettings, 'grantType' | 'parameters'>,
): Readonly<Record<string, string>> {
  return sentParameters(entry, provider, 'authorization', entry.quirks.extraAuthorizationParams);
}

/**
 * Extra parameters of every token request (code exchange, refresh, client credentials) of the
 * provider's grant type: generic `audience` / `resource`, Box's client-credentials subject.
 */
export function extraTokenParameters(
  entry: IdentityProviderEntry,
  provider: Pick<ProviderSettings, 'grantType' | 'parameters'>,
): Readonly<Record<string, string>> {
  return sentParameters(entry, provider, 'token', {});
}
