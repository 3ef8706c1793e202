/** How deletes hand tokens to the revocation queue: sealed anew to the queue's row, never in plaintext outside. */
import { randomUUID } from 'node:crypto';
import type { Envelope } from '../crypto/envelope.js';
import type { TokenRetirement } from '../store/types.js';

export function tokenRetirement(envelope: Envelope): TokenRetirement {
  const retirement: TokenRetirement = {
    newId: () => `rev_${randomUUID()}`,
    reseal: (value, from, to) => envelope.reseal(value, from, to),
  };
  return Object.freeze(retirement);
}
