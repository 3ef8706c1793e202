/** Connection operations. A connection belongs to one provider; its secrets are sealed to it. */
import type { AccessPolicyRecord, ConnectionRecord, ConnectionState, ProviderRecord } from '../domain/model.js';
import { badInput } from '../errors.js';
import { notFound } from '../store/errors.js';
import { absent, connectionLabel, validateId, type ConnectionKey } from '../domain/ids.js';
import { validateClientId, validateDisplayName } from '../providers/validate.js';
import type { ConnectionPatch } from '../store/types.js';
import type { RegistryDeps } from './deps.js';
import { requireProvider } from './providers.js';
import { managedIdentityPolicy, ownerPolicy, type Owner } from './policies.js';

export interface ConnectionInputRaw {
  readonly id?: unknown;
  readonly displayName?: unknown;
  readonly clientId?: unknown;
  readonly clientSecret?: unknown;
}

const MAX_CLIENT_SECRET_CHARS = 4096;

function optionalString(value: unknown, field: string, max: number): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > max)
    throw badInput(field, `must be a non-empty string of at most ${max} characters`);
  return value;
}

/** Display names and client ids follow the providers' rules (src/providers/validate.ts). */
function optionalDisplayName(value: unknown, field: string): string | undefined {
  return absent(value) ? undefined : validateDisplayName(value, field, '');
}

/** Client credentials connections carry their own client; others must not. */
function clientFields(provider: ProviderRecord, raw: ConnectionInputRaw, path: string) {
  const clientId = absent(raw.clientId) ? undefined : validateClientId(raw.clientId, `${path}.clientId`);
  const clientSecret = optionalString(raw.clientSecret, `${path}.clientSecret`, MAX_CLIENT_SECRET_CHARS);
  if (provider.grantType !== 'CLIENT_CREDENTIALS' && (clientId !== undefined || clientSecret !== undefined)) {
    const field = clientId !== undefined ? 'clientId' : 'clientSecret';
    throw badInput(`${path}.${field}`, 'is only accepted for client credentials connections (set it on the provider)');
  }
  return { clientId, clientSecret };
}

/** A new client-credentials connection has a client: its own (id and secret together), or else the provider's. */
function requireClient(provider: ProviderRecord, client: { clientId?: string; clientSecret?: string }, path: string): void {
  if (provider.grantType !== 'CLIENT_CREDENTIALS') return;
  if (client.clientId === undefined && client.clientSecret !== undefined) throw badInput(`${path}.clientId`, `is required with ${path}.clientSecret`);
  if (client.clientId !== undefined && client.clientSecret === undefined) throw badInput(`${path}.clientSecret`, `is required with ${path}.clientId`);
  if (client.clientId === undefined && provider.clientId === null) {
    throw badInput(`${path}.clientId`, `is required: credential provider '${provider.id}' has no client of its own`);
  }
}

export async function requireConnection(deps: Pick<RegistryDeps, 'store'>, key: ConnectionKey): Promise<ConnectionRecord> {
  const connection = await deps.store.getConnection(key);
  if (!connection) throw notFound(connectionLabel(key));
  return connection;
}

export interface InsertOptions {
  /** Where the input sits in the request, for error messages. Default `input`. */
  readonly path?: string;
  /** Created for its user on first use: deleted if still unconsented after `limits.unconsentedConnectionTtlSeconds`. */
  readonly autoCreated?: boolean;
}

/**
 * Inserts a connection with the given initial policies. Shared by the admin API (which adds the
 * gateway's managed identity) and by user-delegated auto-creation (which adds the user only).
 */
export async function insertConnection(
  deps: RegistryDeps,
  provider: ProviderRecord,
  raw: ConnectionInputRaw,
  initialPolicies: (key: ConnectionKey, now: Date) => readonly AccessPolicyRecord[],
  { path = 'input', autoCreated = false }: InsertOptions = {},
): Promise<ConnectionRecord> {
  const id = validateId(raw.id, `${path}.id`);
  const displayName = optionalDisplayName(raw.displayName, `${path}.displayName`) ?? id;
  const { clientId, clientSecret } = clientFields(provider, raw, path);
  requireClient(provider, { ...(clientId !== undefined && { clientId }), ...(clientSecret !== undefined && { clientSecret }) }, path);
  const key = { providerId: provider.id, connectionId: id };
  const now = deps.now();
  // Client credentials need no consent: usable at once with the connection's or the provider's client.
  const state: ConnectionState = provider.grantType === 'CLIENT_CREDENTIALS' ? { status: 'CONNECTED' } : { status: 'NOT_CONNECTED' };
  const record: ConnectionRecord = {
    providerId: provider.id,
    id,
    displayName,
    state,
    clientId: clientId ?? null,
    clientSecret:
      clientSecret === undefined
        ? null
        : deps.envelope.seal(clientSecret, { kind: 'connection', field: 'clientSecret', ...key }),
    tokens: null,
    tokenExpiresAt: null,
    lastRefreshedAt: null,
    tokenGeneration: 0,
    version: 1,
    createdAt: now,
    updatedAt: now,
  };
  return deps.store.insertConnection(record, initialPolicies(key, now), deps.limits.connectionsPerProvider, { autoCreated });
}

/**
 * First use by a user: their own connection, usable by them only, waiting for their consent (and
 * swept if it never gets it). NOT_FOUND without the provider, ALREADY_EXISTS when the connection exists.
 */
export async function createOnFirstUse(deps: RegistryDeps, key: ConnectionKey, owner: Owner, displayName: string): Promise<void> {
  const provider = await requireProvider(deps, key.providerId);
  await insertConnection(deps, provider, { id: key.connectionId, displayName }, (k, now) => [ownerPolicy(k, owner, now)], { autoCreated: true });
}

export async function createConnection(deps: RegistryDeps, providerId: string, raw: ConnectionInputRaw): Promise<ConnectionRecord> {
  const provider = await requireProvider(deps, providerId);
  return insertConnection(deps, provider, raw, (key, now) => [managedIdentityPolicy(deps, key, now)]);
}

/**
 * A connection's own client id is bound to its secret and its tokens, as a provider's is: changing
 * it needs a new clientSecret in the same update and drops the connection's tokens with it. A new
 * secret on a client-credentials connection that lost its own (its provider's endpoints changed)
 * makes it usable again.
 */
export async function updateConnection(
  deps: RegistryDeps,
  key: ConnectionKey,
  raw: Omit<ConnectionInputRaw, 'id'>,
  expectedVersion: number | null,
): Promise<ConnectionRecord> {
  const provider = await requireProvider(deps, key.providerId);
  const current = await requireConnection(deps, key);
  const displayName = optionalDisplayName(raw.displayName, 'input.displayName');
  const { clientId, clientSecret } = clientFields(provider, raw, 'input');
  const rebinds = clientId !== undefined && clientId !== current.clientId;
  if (rebinds && clientSecret === undefined) {
    throw badInput('input.clientSecret', "is required with a change of input.clientId: the connection's secret and tokens are bound to its client");
  }
  if (clientSecret !== undefined && (clientId ?? current.clientId) === null) throw badInput('input.clientId', 'is required with input.clientSecret');
  const reconnects = clientSecret !== undefined && current.state.status === 'NOT_CONNECTED';
  const patch: ConnectionPatch = {
    ...(displayName !== undefined && { displayName }),
    ...(clientId !== undefined && { clientId }),
    ...(clientSecret !== undefined && {
      clientSecret: deps.envelope.seal(clientSecret, { kind: 'connection', field: 'clientSecret', ...key }),
    }),
    ...(reconnects && { state: { status: 'CONNECTED' as const } }),
  };
  const updated = await deps.store.updateConnection(key, patch, expectedVersion, { dropTokens: rebinds });
  await deps.changes.publish(key);
  return updated;
}

export async function deleteConnection(deps: RegistryDeps, key: ConnectionKey, expectedVersion: number | null): Promise<void> {
  await deps.store.deleteConnection(key, expectedVersion);
  await deps.changes.publish(key);
}
