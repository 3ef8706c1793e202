/**
 * Reading token endpoint responses the way the catalog describes them: tokens nested in an odd
 * place (Slack `authed_user`), errors reported with HTTP 200, extra fields worth keeping.
 */
import type { IdentityProviderEntry } from './catalog.js';

type Json = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The value at a dot path (`team.id`), or undefined. */
function at(body: Json, path: string): unknown {
  let current: unknown = body;
  for (const key of path.split('.')) {
    if (!isObject(current) || !Object.hasOwn(current, key)) return undefined;
    current = current[key];
  }
  return current;
}

/**
 * The object holding `access_token`, `refresh_token`, `expires_in`...: the one at the entry's
 * `tokenResponsePath` when it holds an access token, else the top level (refresh responses are flat).
 */
export function tokenFieldsOf(entry: IdentityProviderEntry, body: Json): Json {
  const path = entry.quirks.tokenResponsePath;
  if (path === null) return body;
  const nested = at(body, path);
  return isObject(nested) && typeof nested['access_token'] === 'string' ? nested : body;
}

/** The `keepResponseFields` present in a response, as strings (numbers and booleans converted). */
export function keptResponseFields(entry: IdentityProviderEntry, body: Json): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const path of entry.quirks.keepResponseFields) {
    const value = at(body, path);
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[path] = String(value);
  }
  return Object.freeze(out);
}

/**
 * The OAuth error code hidden in a successful (HTTP 200) response of a provider that reports
 * errors that way, or null when the body is a real success.
 */
export function errorInSuccessBody(entry: IdentityProviderEntry, body: Json): string | null {
  if (!entry.quirks.errorsAsStatus200) return null;
  const error = body['error'];
  if (typeof error === 'string' && error !== '') return error;
  return body['ok'] === false ? 'server_error' : null;
}
