/** Access policy operations: who may use a connection's tokens. */
import { POLICY_KINDS, type AccessPolicyKind, type AccessPolicyRecord } from '../domain/model.js';
import { badInput } from '../errors.js';
import { validateId } from '../providers/validate.js';
import type { ConnectionKey } from '../store/types.js';
import type { RegistryDeps } from './deps.js';

export interface AccessPolicyInputRaw {
  readonly id?: unknown;
  readonly kind?: unknown;
  readonly objectId?: unknown;
  readonly tenantId?: unknown;
  readonly appIds?: unknown;
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
    createdAt: now,
  });
}

/** A user-delegated connection's own policy: its user (by object id, within its tenant) and no one else. */
export function ownerPolicy(key: ConnectionKey, objectId: string, tenantId: string | null, now: Date): AccessPolicyRecord {
  return Object.freeze({ ...key, id: DELEGATED_USER_POLICY_ID, kind: 'USER', objectId, tenantId, appIds: Object.freeze([]), createdAt: now });
}

export function validateAccessPolicy(key: ConnectionKey, raw: AccessPolicyInputRaw, now: Date, path = 'input'): AccessPolicyRecord {
  const id = validateId(raw.id, `${path}.id`);
  if (typeof raw.kind !== 'string' || !(POLICY_KINDS as readonly string[]).includes(raw.kind))
    throw badInput(`${path}.kind`, `must be one of ${POLICY_KINDS.join(', ')}`);
  const objectId = boundedString(raw.objectId, `${path}.objectId`);
  const tenantId = raw.tenantId === undefined || raw.tenantId === null ? null : boundedString(raw.tenantId, `${path}.tenantId`);
  const appIds = raw.appIds === undefined || raw.appIds === null ? [] : raw.appIds;
  if (!Array.isArray(appIds) || appIds.length > MAX_APP_IDS)
    throw badInput(`${path}.appIds`, `must be a list of at most ${MAX_APP_IDS} ids`);
  appIds.forEach((a, i) => boundedString(a, `${path}.appIds[${i}]`));
  return Object.freeze({
    ...key,
    id,
    kind: raw.kind as AccessPolicyKind,
    objectId,
    tenantId,
    appIds: Object.freeze([...(appIds as string[])]),
    createdAt: now,
  });
}

export async function createAccessPolicy(deps: RegistryDeps, key: ConnectionKey, raw: AccessPolicyInputRaw): Promise<AccessPolicyRecord> {
  const policy = validateAccessPolicy(key, raw, deps.now());
  const created = await deps.store.insertAccessPolicy(policy, deps.limits.accessPoliciesPerConnection);
  await deps.changes.publish(key);
  return created;
}

export async function deleteAccessPolicy(deps: RegistryDeps, key: ConnectionKey, id: string): Promise<void> {
  await deps.store.deleteAccessPolicy(key, id);
  await deps.changes.publish(key);
}
