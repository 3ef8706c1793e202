/**
 * Rows to records and back. Both databases hand back the same column names; they differ only in
 * how numbers (PostgreSQL BIGINT arrives as a string) and JSON (PostgreSQL parses jsonb) arrive,
 * which the readers below absorb. Records leave the store frozen.
 */
import type { Sealed } from '../crypto/sealed.js';
import {
  CONNECTION_STATUSES,
  CONSENT_STARTERS,
  GRANT_TYPES,
  POLICY_KINDS,
  STATIC_CREDENTIAL_KINDS,
  isStaticCredential,
  type GrantType,
  type StaticCredentialKind,
  type AccessPolicyRecord,
  type ConnectionRecord,
  type ConnectionState,
  type ConsentStateRecord,
  type PendingConsentRecord,
  type ProviderRecord,
} from '../domain/model.js';
import { raw, type Row } from './sql.js';

export const PROVIDER_COLUMNS = raw(
  'id, display_name, identity_provider, grant_type, client_id, client_secret, scopes, parameters, version, created_at, updated_at, credential_kind',
);

/** `grant_type` and `credential_kind` of a provider row (migration 7 says why there are two). */
export function grantTypeColumns(grantType: GrantType): {
  readonly grantType: GrantType;
  readonly credentialKind: StaticCredentialKind | null;
} {
  return isStaticCredential(grantType)
    ? { grantType: 'CLIENT_CREDENTIALS', credentialKind: grantType }
    : { grantType, credentialKind: null };
}

function grantTypeOf(row: Row): GrantType {
  return row['credential_kind'] === null || row['credential_kind'] === undefined
    ? oneOf(GRANT_TYPES, row, 'grant_type')
    : oneOf(STATIC_CREDENTIAL_KINDS, row, 'credential_kind');
}

export const CONNECTION_COLUMNS = raw(
  'provider_id, id, display_name, status, error_code, error_message, client_id, client_secret, tokens, ' +
    'token_expires_at, last_refreshed_at, token_generation, version, created_at, updated_at',
);

export const POLICY_COLUMNS = raw(
  'provider_id, connection_id, id, kind, object_id, tenant_id, app_ids, created_at, issuer',
);

export const CONSENT_COLUMNS = raw(
  'state_hash, provider_id, connection_id, code_verifier, nonce, post_login_redirect_url, started_by, link_token, expires_at, created_at',
);

export const PENDING_CONSENT_COLUMNS = raw('consent_hash, provider_id, connection_id, tokens, expires_at, created_at');
/**
 * `providers.client_id` is NOT NULL in the released schema; a provider without a client of its own
 * is stored with '' there (never a valid client id: they have at least one character).
 */
export function providerClientIdColumn(clientId: string | null): string {
  return clientId ?? '';
}

function providerClientIdOf(row: Row): string | null {
  const value = str(row, 'client_id');
  return value === '' ? null : value;
}

export function ms(date: Date): number {
  return date.getTime();
}

export function msOrNull(date: Date | null): number | null {
  return date === null ? null : date.getTime();
}

export function json(value: unknown): string {
  return JSON.stringify(value);
}

/** The three columns a ConnectionState is stored in. */
export function stateColumns(state: ConnectionState): {
  status: string;
  errorCode: string | null;
  errorMessage: string | null;
} {
  return state.status === 'ERROR'
    ? { status: state.status, errorCode: state.error.code, errorMessage: state.error.message }
    : { status: state.status, errorCode: null, errorMessage: null };
}

function str(row: Row, column: string): string {
  const v = row[column];
  if (typeof v !== 'string') throw new TypeError(`column ${column} is not text`);
  return v;
}

function strOrNull(row: Row, column: string): string | null {
  return row[column] === null || row[column] === undefined ? null : str(row, column);
}

export function num(row: Row, column: string): number {
  const v = row[column];
  const n = typeof v === 'string' || typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new TypeError(`column ${column} is not an integer`);
  return n;
}

function date(row: Row, column: string): Date {
  return new Date(num(row, column));
}

function dateOrNull(row: Row, column: string): Date | null {
  return row[column] === null || row[column] === undefined ? null : date(row, column);
}

function sealedOrNull(row: Row, column: string): Sealed | null {
  return strOrNull(row, column) as Sealed | null;
}

/** SQLite keeps JSON as text; PostgreSQL jsonb arrives parsed. */
function parsed(row: Row, column: string): unknown {
  const v = row[column];
  return typeof v === 'string' ? JSON.parse(v) : v;
}

function stringArray(row: Row, column: string): readonly string[] {
  const v = parsed(row, column);
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string'))
    throw new TypeError(`column ${column} is not a string array`);
  return Object.freeze([...v]);
}

function stringMap(row: Row, column: string): Readonly<Record<string, string>> {
  const v = parsed(row, column);
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((s) => typeof s === 'string'))
    throw new TypeError(`column ${column} is not a string map`);
  return Object.freeze({ ...(v as Record<string, string>) });
}

function oneOf<T extends string>(allowed: readonly T[], row: Row, column: string): T {
  const v = str(row, column);
  if (!(allowed as readonly string[]).includes(v)) throw new TypeError(`column ${column} holds an unknown value`);
  return v as T;
}

function state(row: Row): ConnectionState {
  const status = oneOf(CONNECTION_STATUSES, row, 'status');
  if (status !== 'ERROR') return Object.freeze({ status });
  const error = Object.freeze({ code: str(row, 'error_code'), message: str(row, 'error_message') });
  return Object.freeze({ status, error });
}

export function toProvider(row: Row): ProviderRecord {
  return Object.freeze({
    id: str(row, 'id'),
    displayName: str(row, 'display_name'),
    identityProvider: str(row, 'identity_provider'),
    grantType: grantTypeOf(row),
    clientId: providerClientIdOf(row),
    clientSecret: sealedOrNull(row, 'client_secret'),
    scopes: stringArray(row, 'scopes'),
    parameters: stringMap(row, 'parameters'),
    version: num(row, 'version'),
    createdAt: date(row, 'created_at'),
    updatedAt: date(row, 'updated_at'),
  });
}

export function toConnection(row: Row): ConnectionRecord {
  return Object.freeze({
    providerId: str(row, 'provider_id'),
    id: str(row, 'id'),
    displayName: str(row, 'display_name'),
    state: state(row),
    clientId: strOrNull(row, 'client_id'),
    clientSecret: sealedOrNull(row, 'client_secret'),
    tokens: sealedOrNull(row, 'tokens'),
    tokenExpiresAt: dateOrNull(row, 'token_expires_at'),
    lastRefreshedAt: dateOrNull(row, 'last_refreshed_at'),
    tokenGeneration: num(row, 'token_generation'),
    version: num(row, 'version'),
    createdAt: date(row, 'created_at'),
    updatedAt: date(row, 'updated_at'),
  });
}

export function toPolicy(row: Row): AccessPolicyRecord {
  return Object.freeze({
    providerId: str(row, 'provider_id'),
    connectionId: str(row, 'connection_id'),
    id: str(row, 'id'),
    kind: oneOf(POLICY_KINDS, row, 'kind'),
    objectId: str(row, 'object_id'),
    tenantId: strOrNull(row, 'tenant_id'),
    appIds: stringArray(row, 'app_ids'),
    issuer: strOrNull(row, 'issuer'),
    createdAt: date(row, 'created_at'),
  });
}

export function toConsentState(row: Row): ConsentStateRecord {
  return Object.freeze({
    stateHash: str(row, 'state_hash'),
    providerId: str(row, 'provider_id'),
    connectionId: str(row, 'connection_id'),
    codeVerifier: sealedOrNull(row, 'code_verifier'),
    nonce: strOrNull(row, 'nonce'),
    postLoginRedirectUrl: str(row, 'post_login_redirect_url'),
    startedBy: oneOf(CONSENT_STARTERS, row, 'started_by'),
    linkToken: sealedOrNull(row, 'link_token'),
    expiresAt: date(row, 'expires_at'),
    createdAt: date(row, 'created_at'),
  });
}

export function toPendingConsent(row: Row): PendingConsentRecord {
  return Object.freeze({
    consentHash: str(row, 'consent_hash'),
    providerId: str(row, 'provider_id'),
    connectionId: str(row, 'connection_id'),
    tokens: str(row, 'tokens') as Sealed,
    expiresAt: date(row, 'expires_at'),
    createdAt: date(row, 'created_at'),
  });
}
