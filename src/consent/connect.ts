/**
 * The end of every successful consent: the new tokens become the connection's tokens through the
 * one connected-token write (caches on every replica hear of it), and the connection's other
 * links, states and pending consents stop working.
 */
import type { Envelope } from '../crypto/envelope.js';
import type { ProviderRecord, StoredTokenSet } from '../domain/model.js';
import { GatewayError } from '../errors.js';
import { sameBinding } from '../providers/binding.js';
import { findIdentityProvider } from '../providers/catalog.js';
import type { ChangeFeed } from '../registry/changes.js';
import type { Store } from '../store/types.js';
import type { ConnectionKey } from '../domain/ids.js';
import { connectedTokenWrite } from '../tokens/tokenSet.js';

const TOKEN_WRITE_ATTEMPTS = 3;

export interface ConnectDeps {
  readonly store: Store;
  readonly envelope: Envelope;
  readonly now: () => Date;
  readonly changes?: ChangeFeed;
}

/**
 * Tokens obtained from `exchangedWith` belong to its endpoints and client: once the provider is
 * re-pointed (which drops every token of its connections), they would be refreshed at the new ones.
 */
export async function requireSameBinding(store: Store, exchangedWith: ProviderRecord): Promise<void> {
  const entry = findIdentityProvider(exchangedWith.identityProvider);
  const provider = await store.getProvider(exchangedWith.id);
  if (!provider || entry === undefined || !sameBinding(entry, exchangedWith, provider))
    throw new GatewayError(
      'CONNECTION_NOT_CONNECTED',
      "the provider's endpoints or client changed during consent; start again from a new login link",
    );
}

/**
 * A new consent supersedes whatever tokens the connection had; retry if a refresh races us.
 * `exchangedWith`: the provider the tokens came from, still bound as it was when they are written.
 */
export async function connectWithConsentedTokens(
  deps: ConnectDeps,
  key: ConnectionKey,
  tokens: StoredTokenSet,
  exchangedWith: ProviderRecord,
): Promise<void> {
  for (let attempt = 0; attempt < TOKEN_WRITE_ATTEMPTS; attempt++) {
    const connection = await deps.store.getConnection(key);
    if (!connection) throw new GatewayError('NOT_FOUND', `connection '${key.connectionId}' was deleted during consent`);
    // Read after the connection: a re-pointing drops tokens in the transaction that moves the
    // endpoints, so if the provider is still bound as it was, the generation read above predates it.
    await requireSameBinding(deps.store, exchangedWith);
    const write = { ...connectedTokenWrite(deps.envelope, key, tokens, deps.now()), consented: true };
    const written = await deps.store.writeTokens(key, write, connection.tokenGeneration);
    if (written) {
      // A link sent around before this consent must not bring another identity in after it.
      await deps.store.deleteConsentsOf(key);
      await deps.changes?.publish(key);
      return;
    }
  }
  throw new GatewayError('INTERNAL_SERVER_ERROR', 'could not store the tokens', {
    cause: new Error('token generation kept moving'),
  });
}
