/** Connection operations. A connection belongs to one provider; its secrets are sealed to it. */
import {
  isStaticCredential,
  type AccessPolicyRecord,
  type ConnectionRecord,
  type ConnectionState,
  type ProviderRecord,
} from '../domain/model.js';
import { badInput, GatewayError } from '../errors.js';
import { notFound } from '../store/errors.js';
import { absent, connectionLabel, validateId, type ConnectionKey } from '../domain/ids.js';
import { findIdentityProvider } from '../providers/catalog.js';
import {
  credentialHeader,
  credentialTokenSet,
  credentialValue,
  type CredentialInputRaw,
} from '../providers/credentials.js';
import { validateClientId, validateDisplayName } from '../providers/validate.js';
import type { ConnectionPatch, TokenWrite } from '../store/types.js';
import type { RegistryDeps } from './deps.js';
import { requireProvider } from './providers.js';
import { managedIdentityPolicy, ownerPolicy, type Owner } from './policies.js';
import { tokenRetirement } from './retirement.js';

export interface ConnectionInputRaw extends CredentialInputRaw {
  readonly id?: unknown;
  readonly displayName?: unknown;
  readonly clientId?: unknown;
  readonly clientSecret?: unknown;
}

/**
 * An API_KEY or BASIC connection's credential as the write that makes it the connection's token set
 * (sealed in the same field as OAuth tokens, tokens/tokenSet.ts), CONNECTED; null when none is given.
 */
function credentialWrite(
  deps: RegistryDeps,
  provider: ProviderRecord,
  key: ConnectionKey,
  raw: CredentialInputRaw,
  path: string,
): TokenWrite | null {
  const kind = isStaticCredential(provider.grantType) ? provider.grantType : null;
  const credential = credentialValue(kind, raw, path);
  if (credential === null) return null;
  const entry = findIdentityProvider(provider.identityProvider);
  if (!entry)
    throw new GatewayError('INTERNAL_SERVER_ERROR', 'provider configuration is invalid', {
      cause: new Error(`unknown identity provider ${provider.identityProvider}`),
    });
  const set = credentialTokenSet(credential, credentialHeader(entry, provider.parameters));
  return {
    tokens: deps.envelope.seal(JSON.stringify(set), { kind: 'connection', field: 'tokens', ...key }),
    tokenExpiresAt: null,
    lastRefreshedAt: deps.now(),
    state: { status: 'CONNECTED' },
  };
}

function credentialRequired(provider: ProviderRecord, path: string): GatewayError {
  const fields = provider.grantType === 'BASIC' ? 'username and password' : 'apiKey';
  return badInput(
    `${path}.${provider.grantType === 'BASIC' ? 'username' : 'apiKey'}`,
    `is required: ${provider.grantType} connections hold their ${fields}`,
  );
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
function requireClient(
  provider: ProviderRecord,
  client: { clientId?: string; clientSecret?: string },
  path: string,
): void {
  if (provider.grantType !== 'CLIENT_CREDENTIALS') return;
  if (client.clientId === undefined && client.clientSecret !== undefined)
    throw badInput(`${path}.clientId`, `is required with ${path}.clientSecret`);
  if (client.clientId !== undefined && client.clientSecret === undefined)
    throw badInput(`${path}.clientSecret`, `is required with ${path}.clientId`);
  if (client.clientId === undefined && provider.clientId === null) {
    throw badInput(`${path}.clientId`, `is required: credential provider '${provider.id}' has no client of its own`);
  }
}

export async function requireConnection(
  deps: Pick<RegistryDeps, 'store'>,
  key: ConnectionKey,
): Promise<ConnectionRecord> {
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
  requireClient(
    provider,
    { ...(clientId !== undefined && { clientId }), ...(clientSecret !== undefined && { clientSecret }) },
    path,
  );
  const key = { providerId: provider.id, connectionId: id };
  const credential = credentialWrite(deps, provider, key, raw, path);
  if (credential === null && isStaticCredential(provider.grantType)) throw credentialRequired(provider, path);
  const now = deps.now();
  // Client credentials need no consent: usable at once with the connection's or the provider's client.
  const state: ConnectionState =
    provider.grantType === 'CLIENT_CREDENTIALS' || credential !== null
      ? { status: 'CONNECTED' }
      : { status: 'NOT_CONNECTED' };
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
    tokens: credential?.tokens ?? null,
    tokenExpiresAt: null,
    lastRefreshedAt: credential?.lastRefreshedAt ?? null,
    tokenGeneration: 0,
    version: 1,
    createdAt: now,
    updatedAt: now,
  };
  const inserted = await deps.store.insertConnection(
    record,
    initialPolicies(key, now),
    deps.limits.connectionsPerProvider,
    { autoCreated },
  );
  // Nothing cached knows it yet; told anyway so that its `connection.created` webhooks go out at once.
  await deps.changes.publish(key);
  return inserted;
}

/**
 * First use by a user: their own connection, usable by them only, waiting for their consent (and
 * swept if it never gets it). NOT_FOUND without the provider, ALREADY_EXISTS when the connection exists,
 * CONNECTION_NOT_FOUND for an API key or basic provider (their connections are an admin's to make).
 */
export async function createOnFirstUse(
  deps: RegistryDeps,
  key: ConnectionKey,
  owner: Owner,
  displayName: string,
): Promise<void> {
  const provider = await requireProvider(deps, key.providerId);
  // An API key or a password comes from an admin, never from a user's first query.
  if (isStaticCredential(provider.grantType))
    throw new GatewayError('CONNECTION_NOT_FOUND', `${connectionLabel(key)} not found`);
  await insertConnection(
    deps,
    provider,
    { id: key.connectionId, displayName },
    (k, now) => [ownerPolicy(k, owner, now)],
    { autoCreated: true },
  );
}

export async function createConnection(
  deps: RegistryDeps,
  providerId: string,
  raw: ConnectionInputRaw,
): Promise<ConnectionRecord> {
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
  // An API key or password is rotated here: the new one replaces the old at once, on every replica.
  const credential = credentialWrite(deps, provider, key, raw, 'input');
  const rebinds = clientId !== undefined && clientId !== current.clientId;
  if (rebinds && clientSecret === undefined) {
    throw badInput(
      'input.clientSecret',
      "is required with a change of input.clientId: the connection's secret and tokens are bound to its client",
    );
  }
  if (clientSecret !== undefined && (clientId ?? current.clientId) === null)
    throw badInput('input.clientId', 'is required with input.clientSecret');
  const reconnects = clientSecret !== undefined && current.state.status === 'NOT_CONNECTED';
  const patch: ConnectionPatch = {
    ...(displayName !== undefined && { displayName }),
    ...(clientId !== undefined && { clientId }),
    ...(clientSecret !== undefined && {
      clientSecret: deps.envelope.seal(clientSecret, { kind: 'connection', field: 'clientSecret', ...key }),
    }),
    ...(reconnects && { state: { status: 'CONNECTED' as const } }),
  };
  const updated = await deps.store.updateConnection(key, patch, expectedVersion, {
    dropTokens: rebinds,
    ...(credential !== null && { tokens: credential }),
  });
  await deps.changes.publish(key);
  return updated;
}

export async function deleteConnection(
  deps: RegistryDeps,
  key: ConnectionKey,
  expectedVersion: number | null,
): Promise<void> {
  // Its tokens move to the revocation queue in the same transaction; the provider is not waited on.
  await deps.store.deleteConnection(key, expectedVersion, { retire: tokenRetirement(deps.envelope) });
  deps.onTokensRetired?.();
  await deps.changes.publish(key);
}
