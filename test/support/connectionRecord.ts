/** Connection records to write straight into a store, for tests and benches that skip the API. */
import type { ConnectionRecord } from '../../src/domain/model.js';

/** A fresh, not yet connected connection created and last updated `at`; `over` replaces any field. */
export function connectionRecord(
  providerId: string,
  id: string,
  at: Date,
  over: Partial<ConnectionRecord> = {},
): ConnectionRecord {
  return {
    providerId,
    id,
    displayName: `Connection ${id}`,
    state: { status: 'NOT_CONNECTED' },
    clientId: null,
    clientSecret: null,
    tokens: null,
    tokenExpiresAt: null,
    lastRefreshedAt: null,
    tokenGeneration: 0,
    version: 1,
    createdAt: at,
    updatedAt: at,
    ...over,
  };
}
