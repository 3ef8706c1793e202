/**
 * The end of every successful consent: the new tokens become the connection's tokens through the
 * one connected-token write (caches on every replica hear of it), and the connection's other
 * links, states and pending consents stop working.
 */
import type { Envelope } from '../crypto/envelope.js';
import type { StoredTokenSet } from '../domain/model.js';
import { GatewayError } from '../errors.js';
import type { ChangeFeed } from '../registry/changes.js';
import type { ConnectionKey, Store } from '../store/types.js';
import { connectedTokenWrite } from '../tokens/tokenSet.js';

const TOKEN_WRITE_ATTEMPTS = 3;

export interface ConnectDeps {
  readonly store: Store;
  readonly envelope: Envelope;
  readonly now: () => Date;
  readonly changes?: ChangeFeed;
}

/** A new consent supersedes whatever tokens the connection had; retry if a refresh races us. */
export async function connectWithConsentedTokens(deps: ConnectDeps, key: ConnectionKey, tokens: StoredTokenSet): Promise<void> {
  for (let attempt = 0; attempt < TOKEN_WRITE_ATTEMPTS; attempt++) {
    const connection = await deps.store.getConnection(key);
    if (!connection) throw new GatewayError('NOT_FOUND', `connection '${key.connectionId}' was deleted during consent`);
    const written = await deps.store.writeTokens(key, connectedTokenWrite(deps.envelope, key, tokens, deps.now()), connection.tokenGeneration);
    if (written) {
      // A link sent around before this consent must not bring another identity in after it.
      await deps.store.deleteConsentsOf(key);
      await deps.changes?.publish(key);
      return;
    }
  }
  throw new GatewayError('INTERNAL_SERVER_ERROR', 'could not store the tokens', { cause: new Error('token generation kept moving') });
}
