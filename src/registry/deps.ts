import type { Config } from '../config/schema.js';
import type { Envelope } from '../crypto/envelope.js';
import type { Store } from '../store/types.js';
import type { ChangeFeed } from './changes.js';

/** What the registry operations need; wired once in src/server/wire.ts. */
export interface RegistryDeps {
  readonly store: Store;
  readonly envelope: Envelope;
  readonly limits: Config['limits'];
  readonly managedObjectId: string;
  /** `identity.issuers[].issuer`: what an access policy's `issuer` may name besides an absolute URL. */
  readonly trustedIssuers?: readonly string[];
  readonly allowInsecureHttp: boolean;
  /** `oauth.allowPrivateNetworks`: literal private addresses are refused at input unless set. */
  readonly allowPrivateNetworks: boolean;
  readonly now: () => Date;
  /** Told after every change that can invalidate a cached token or access decision. */
  readonly changes: ChangeFeed;
  /** Told after a delete queued tokens for revocation (this replica's worker starts at once). */
  readonly onTokensRetired?: () => void;
}
