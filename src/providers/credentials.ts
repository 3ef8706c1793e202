/**
 * API_KEY and BASIC credentials (catalog `credential`): the secret an admin gives a connection, its
 * checks at the edge, and how it is sent. The credential rests sealed as the connection's token set
 * (a token that never expires), so bindings, policies, caches and the token endpoint serve it as
 * they serve tokens.
 */
import type { CredentialHeader, StaticCredentialKind, StoredTokenSet } from '../domain/model.js';
import { badInput } from '../errors.js';
import { CONTROL_CHARACTER } from '../values.js';
import { NO_SCHEME, type IdentityProviderEntry } from './catalog.js';
import { expandScope, expandUrl } from './endpoints.js';
import type { UrlOptions } from './formats.js';

export interface CredentialInputRaw {
  readonly apiKey?: unknown;
  readonly username?: unknown;
  readonly password?: unknown;
}

export const MAX_API_KEY_CHARS = 4096;
export const MAX_USERNAME_CHARS = 256;
export const MAX_PASSWORD_CHARS = 1024;

// A key goes into a header line as it is: whitespace or a control character could split or end it.
const KEY_FORBIDDEN = /[\s\p{Cc}]/u;

const given = (value: unknown): boolean => value !== undefined && value !== null;

function secretString(value: unknown, field: string, max: number, forbidden: RegExp, rule: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max || forbidden.test(value))
    throw badInput(field, `must be 1-${max} characters ${rule}`);
  return value;
}

/**
 * The credential as it goes after the scheme (the key; base64 of `username:password`), or null when
 * the input gives none. Fields of the other kind, or of no kind, are refused by name; values are
 * never echoed.
 */
export function credentialValue(
  kind: StaticCredentialKind | null,
  raw: CredentialInputRaw,
  path: string,
): string | null {
  const fields = (['apiKey', 'username', 'password'] as const).filter((f) => given(raw[f]));
  const allowed: readonly string[] = kind === 'API_KEY' ? ['apiKey'] : kind === 'BASIC' ? ['username', 'password'] : [];
  const stray = fields.find((f) => !allowed.includes(f));
  if (stray !== undefined)
    throw badInput(`${path}.${stray}`, `is only accepted for ${stray === 'apiKey' ? 'API_KEY' : 'BASIC'} connections`);
  if (kind === 'API_KEY') {
    return given(raw.apiKey)
      ? secretString(
          raw.apiKey,
          `${path}.apiKey`,
          MAX_API_KEY_CHARS,
          KEY_FORBIDDEN,
          'without whitespace or control characters',
        )
      : null;
  }
  if (kind !== 'BASIC' || fields.length === 0) return null;
  // The two are sealed together and never read back: a rotation gives both.
  if (!given(raw.username)) throw badInput(`${path}.username`, `is required with ${path}.password`);
  if (!given(raw.password)) throw badInput(`${path}.password`, `is required with ${path}.username`);
  // RFC 7617: the user-id ends at the first colon.
  const username = secretString(
    raw.username,
    `${path}.username`,
    MAX_USERNAME_CHARS,
    /[:\p{Cc}]/u,
    'without a colon or control characters',
  );
  const password = secretString(
    raw.password,
    `${path}.password`,
    MAX_PASSWORD_CHARS,
    CONTROL_CHARACTER,
    'without control characters',
  );
  return Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
}

function catalogBug(entry: IdentityProviderEntry): Error {
  return new Error(`catalog entry ${entry.name} has no credential header`);
}

/** The header the entry's credentials go in, for the provider's parameters. */
export function credentialHeader(
  entry: IdentityProviderEntry,
  parameters: Readonly<Record<string, string>>,
): CredentialHeader {
  const spec = entry.credential;
  if (spec === null) throw catalogBug(entry);
  const name = expandScope(entry, spec.header, parameters);
  const scheme = expandScope(entry, spec.scheme, parameters);
  if (name === null || scheme === null) throw catalogBug(entry);
  return Object.freeze({ name, scheme: scheme === NO_SCHEME ? null : scheme });
}

/** Where `testConnection` sends the credential; null when the entry (or the provider) names no check URL. */
export function credentialCheckUrl(
  entry: IdentityProviderEntry,
  parameters: Readonly<Record<string, string>>,
  options: UrlOptions,
): string | null {
  const template = entry.credential?.checkUrl ?? null;
  return template === null ? null : expandUrl(entry, template, parameters, options);
}

/** The header value: `<scheme> <credential>`, or the bare credential. */
export function headerValue(header: CredentialHeader, credential: string): string {
  return header.scheme === null ? credential : `${header.scheme} ${credential}`;
}

/**
 * The token set a static credential rests as: it never expires and has nothing to refresh with.
 * `tokenType` is the scheme (`Bearer`, `Basic`), or `ApiKey` for a key sent bare.
 */
export function credentialTokenSet(credential: string, header: CredentialHeader): StoredTokenSet {
  return Object.freeze({
    accessToken: credential,
    refreshToken: null,
    tokenType: header.scheme ?? BARE_KEY_TOKEN_TYPE,
    expiresAt: null,
    scope: null,
    idTokenClaims: null,
    extra: Object.freeze({}),
    sendAs: header,
  });
}

/** The `token_type` of a key sent bare in its own header. */
export const BARE_KEY_TOKEN_TYPE = 'ApiKey';
