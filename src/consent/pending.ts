/**
 * Tokens a runtime login link brought (docs/trust-model.md, "Who can consent into a connection"). A runtime link is a bearer link: whoever opens it consents, so its
 * tokens are held sealed and unusable until a caller whom the connection's access policies admit
 * confirms them with the consent id. A refused confirmation spends the consent id all the same.
 */
import type { Envelope } from '../crypto/envelope.js';
import type { Sealed } from '../crypto/sealed.js';
import type { StoredTokenSet } from '../domain/model.js';
import { GatewayError } from '../errors.js';
import type { Caller } from '../identity/caller.js';
import type { Logger } from '../log.js';
import type { ConnectionKey } from '../domain/ids.js';
import { isAllowed } from '../tokens/accessPolicy.js';
import { connectWithConsentedTokens, type ConnectDeps } from './connect.js';
import { hashOf, isSecretShaped, newSecret } from './secrets.js';

/** How long tokens wait for their owner's confirmation. */
export const PENDING_CONSENT_TTL_MS = 10 * 60_000;

export interface PendingDeps extends ConnectDeps {
  readonly envelope: Envelope;
  readonly logger: Logger;
}

export interface Confirmed {
  readonly providerId: string;
  readonly connectionId: string;
  readonly status: 'CONNECTED';
}

/** Bound to the pending record and its connection: never the connection's own `tokens` ref. */
const refOf = (key: ConnectionKey, consentHash: string) =>
  ({ kind: 'pendingConsent', field: 'tokens', ...key, consentHash }) as const;

const unknownConsent = () =>
  new GatewayError('NOT_FOUND', 'this consent is unknown, already used or expired; start again from a new login link');

/** Holds the tokens for the owner's confirmation; returns the consent id (shown once, stored as a hash). */
export async function holdPendingConsent(
  deps: PendingDeps,
  key: ConnectionKey,
  tokens: StoredTokenSet,
): Promise<string> {
  const id = newSecret();
  const consentHash = hashOf('consent', id);
  const now = deps.now();
  await deps.store.insertPendingConsent({
    consentHash,
    ...key,
    tokens: deps.envelope.seal(JSON.stringify(tokens), refOf(key, consentHash)),
    expiresAt: new Date(now.getTime() + PENDING_CONSENT_TTL_MS),
    createdAt: now,
  });
  return id;
}

/** `POST /oauth/confirm`: the caller must be one the connection's access policies admit. */
export async function confirmPendingConsent(deps: PendingDeps, consentId: string, caller: Caller): Promise<Confirmed> {
  if (!isSecretShaped(consentId)) throw unknownConsent();
  const consentHash = hashOf('consent', consentId);
  const pending = await deps.store.consumePendingConsent(consentHash, deps.now());
  if (!pending) throw unknownConsent();
  const key: ConnectionKey = { providerId: pending.providerId, connectionId: pending.connectionId };
  const [policies = []] = await deps.store.listAccessPolicies([key]);
  if (!isAllowed(policies, { kind: 'caller', caller })) {
    deps.logger.warn(
      { provider: key.providerId, connection: key.connectionId },
      'consent confirmation refused: the caller may not use this connection; its tokens were dropped',
    );
    throw new GatewayError(
      'ACCESS_DENIED',
      `the caller may not use connection '${key.connectionId}' of provider '${key.providerId}'`,
    );
  }
  const tokens = Object.freeze(
    JSON.parse(deps.envelope.open(pending.tokens as Sealed, refOf(key, consentHash))) as StoredTokenSet,
  );
  // Re-pointing the provider deletes its pending consents in the same transaction, so a consent
  // consumed above was held under the binding read here (up to a change landing between the two).
  const provider = await deps.store.getProvider(key.providerId);
  if (!provider) throw unknownConsent();
  await connectWithConsentedTokens(deps, key, tokens, provider);
  deps.logger.info(
    { provider: key.providerId, connection: key.connectionId },
    'consent confirmed by the connection owner; connection connected',
  );
  return { ...key, status: 'CONNECTED' };
}
