/** Access policy operations: who may use a connection's tokens. */
import { POLICY_KINDS, type AccessPolicyKind, type AccessPolicyRecord } from '../domain/model.js';
import { badInput } from '../errors.js';
import { validateId, type ConnectionKey } from '../domain/ids.js';
import type { RegistryDeps } from './deps.js';
import { parseUrl } from '../values.js';

export interface AccessPolicyInputRaw {
  readonly id?: unknown;
  readonly kind?: unknown;
  readonly objectId?: unknown;
  readonly tenantId?: unknown;
  readonly appIds?: unknown;
  readonly issuer?: unknown;
}

const MAX_OBJECT_ID_CHARS = 256;
const MAX_APP_IDS = 100;
/** The id of the policy every admin-created connection starts with. */
export const MANAGED_IDENTITY_POLICY_ID = 'managed-identity';
/** The policy id of a connection created for its user on first use. */
export const DELEGATED_USER_POLICY_ID = 'owner';

function boundedString(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.trim().length === 0 || value.length > MAX_OBJECT_ID_CHARS)
    throw badInput(field, `must be a non-empty string of at most ${MAX_OBJECT_ID_CHARS} characters`);
  return value;
}

export function managedIdentityPolicy(deps: RegistryDeps, key: ConnectionKey, now: Date): AccessPolicyRecord {
  return Object.freeze({
    ...key,
    id: MANAGED_IDENTITY_POLICY_ID,
    kind: 'MANAGED_IDENTITY',
    objectId: deps.managedObjectId,
    tenantId: null,
    appIds: Object.freeze([]),
    issuer: null,
    createdAt: now,
  });
}

/** Who a user-delegated connection belongs to: a subject is only unique within its issuer. */
export interface Owner {
  /** `oid`, else `sub`. */
  readonly objectId: string;
  readonly tenantId: string | null;
  /** The verified `iss` of the owner's token. */
  readonly issuer: string;
}

/** A user-delegated connection's own policy: its user (by object id, within its issuer and tenant) and no one else. */
export function ownerPolicy(key: ConnectionKey, owner: Owner, now: Date): AccessPolicyRecord {
  const { objectId, tenantId, issuer } = owner;
  return Object.freeze({
    ...key,
    id: DELEGATED_USER_POLICY_ID,
    kind: 'USER',
    objectId,
    tenantId,
    appIds: Object.freeze([]),
    issuer,
    createdAt: now,
  });
}

function isAbsoluteUrl(value: string): boolean {
  return parseUrl(value) !== null && /^[a-z][a-z0-9+.-]*:\/\//i.test(value);
}

/**
 * The issuer a policy is bound to: kept exactly as given, since it is compared with the token's
 * `iss` as a string. An absolute URL (an issuer not configured yet is allowed), or one of the
 * configured issuers, whatever its form.
 */
function validIssuer(value: unknown, field: string, trustedIssuers: readonly string[]): string | null {
  if (value === undefined || value === null) return null;
  const issuer = boundedString(value, field);
  if (issuer !== issuer.trim() || !(isAbsoluteUrl(issuer) || trustedIssuers.includes(issuer)))
    throw badInput(
      field,
      "must be the issuer URL a caller's token carries in iss (an absolute URL or a configured identity.issuers[].issuer)",
    );
  return issuer;
}

export function validateAccessPolicy(
  key: ConnectionKey,
  raw: AccessPolicyInputRaw,
  now: Date,
  path = 'input',
  trustedIssuers: readonly string[] = [],
): AccessPolicyRecord {
  const id = validateId(raw.id, `${path}.id`);
  if (typeof raw.kind !== 'string' || !(POLICY_KINDS as readonly string[]).includes(raw.kind))
    throw badInput(`${path}.kind`, `must be one of ${POLICY_KINDS.join(', ')}`);
  const objectId = boundedString(raw.objectId, `${path}.objectId`);
  const tenantId =
    raw.tenantId === undefined || raw.tenantId === null ? null : boundedString(raw.tenantId, `${path}.tenantId`);
  const appIds = raw.appIds === undefined || raw.appIds === null ? [] : raw.appIds;
  if (!Array.isArray(appIds) || appIds.length > MAX_APP_IDS)
    throw badInput(`${path}.appIds`, `must be a list of at most ${MAX_APP_IDS} ids`);
  for (const [i, a] of appIds.entries()) boundedString(a, `${path}.appIds[${i}]`);
  const issuer = validIssuer(raw.issuer, `${path}.issuer`, trustedIssuers);
  if (issuer !== null && raw.kind === 'MANAGED_IDENTITY')
    throw badInput(
      `${path}.issuer`,
      "does not apply to MANAGED_IDENTITY policies: the gateway's own identity has no issuer",
    );
  return Object.freeze({
    ...key,
    id,
    kind: raw.kind as AccessPolicyKind,
    objectId,
    tenantId,
    appIds: Object.freeze([...(appIds as string[])]),
    issuer,
    createdAt: now,
  });
}

export async function createAccessPolicy(
  deps: RegistryDeps,
  key: ConnectionKey,
  raw: AccessPolicyInputRaw,
): Promise<AccessPolicyRecord> {
  const policy = validateAccessPolicy(key, raw, deps.now(), 'input', deps.trustedIssuers ?? []);
  const created = await deps.store.insertAccessPolicy(policy, deps.limits.accessPoliciesPerConnection);
  await deps.changes.publish(key);
  return created;
}

export async function deleteAccessPolicy(deps: RegistryDeps, key: ConnectionKey, id: string): Promise<void> {
  await deps.store.deleteAccessPolicy(key, id);
  await deps.changes.publish(key);
}
