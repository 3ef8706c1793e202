/**
 * oidc-provider's storage for the demo authorization server: one in-memory map per server, so
 * that grants can be listed and revoked. Everything is forgotten when the server stops.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';

const GRANT_PREFIX = 'Grant:';
const REFRESH_TOKEN_MODEL = 'RefreshToken';

export interface GrantMemoryOptions {
  /**
   * Seconds a rotated-out refresh token stays usable, as Okta's rotation grace period, Auth0's
   * rotation overlap period and Cognito's RetryGracePeriodSeconds allow: a client that lost the
   * token response (network, crash) retries with the token it still has. Only the latest
   * rotated-out token of a grant qualifies. 0 (default): oidc-provider's own rule, where any
   * reuse of a rotated-out token revokes the whole grant.
   */
  readonly refreshTokenReuseIntervalSeconds?: number;
}

interface RotatedOut {
  readonly id: string;
  readonly atMs: number;
}

export class GrantMemory {
  readonly #entries = new Map<string, AdapterPayload>();
  readonly #reuseIntervalMs: number;
  /** Per grant, the refresh token rotated out last; its reuse interval runs from its first rotation. */
  readonly #lastRotatedOut = new Map<string, RotatedOut>();

  constructor(options: GrantMemoryOptions = {}) {
    this.#reuseIntervalMs = (options.refreshTokenReuseIntervalSeconds ?? 0) * 1000;
  }

  adapterFor(model: string): Adapter {
    const key = (id: string): string => `${model}:${id}`;
    const entries = this.#entries;
    const findBy = (field: 'userCode' | 'uid', value: string): AdapterPayload | undefined => {
      for (const [k, payload] of entries) if (k.startsWith(`${model}:`) && payload[field] === value) return payload;
      return undefined;
    };
    const graceful = model === REFRESH_TOKEN_MODEL && this.#reuseIntervalMs > 0;
    return {
      upsert: async (id, payload) => void entries.set(key(id), { ...payload }),
      find: async (id) => {
        const payload = entries.get(key(id));
        if (graceful && payload !== undefined) this.#expireReuse(id, payload);
        return payload;
      },
      findByUserCode: async (userCode) => findBy('userCode', userCode),
      findByUid: async (uid) => findBy('uid', uid),
      consume: async (id) => {
        const payload = entries.get(key(id));
        if (payload === undefined) return;
        if (graceful && typeof payload.grantId === 'string') this.#rotateOut(payload.grantId, id);
        else payload.consumed = Math.floor(Date.now() / 1000);
      },
      destroy: async (id) => void entries.delete(key(id)),
      revokeByGrantId: async (grantId) => this.deleteGrant(grantId),
    };
  }

  /** The token stays unconsumed for now; the one rotated out before it is consumed for good. */
  #rotateOut(grantId: string, id: string): void {
    const last = this.#lastRotatedOut.get(grantId);
    if (last?.id === id) return;
    if (last !== undefined) {
      const previous = this.#entries.get(`${REFRESH_TOKEN_MODEL}:${last.id}`);
      if (previous !== undefined) previous.consumed = Math.floor(Date.now() / 1000);
    }
    this.#lastRotatedOut.set(grantId, { id, atMs: Date.now() });
  }

  /** Past its reuse interval, a rotated-out token counts as consumed (reuse then revokes the grant). */
  #expireReuse(id: string, payload: AdapterPayload): void {
    if (payload.consumed !== undefined || typeof payload.grantId !== 'string') return;
    const last = this.#lastRotatedOut.get(payload.grantId);
    if (last?.id === id && Date.now() - last.atMs > this.#reuseIntervalMs)
      payload.consumed = Math.floor(last.atMs / 1000);
  }

  /** Deletes a grant and every token issued under it. */
  deleteGrant(grantId: string): void {
    for (const [k, payload] of this.#entries) if (payload.grantId === grantId) this.#entries.delete(k);
    this.#entries.delete(`${GRANT_PREFIX}${grantId}`);
    this.#lastRotatedOut.delete(grantId);
  }

  /** Grant ids of an account (all accounts when undefined). */
  grantIds(accountId?: string): string[] {
    const ids: string[] = [];
    for (const [k, payload] of this.#entries) {
      if (k.startsWith(GRANT_PREFIX) && (accountId === undefined || payload.accountId === accountId))
        ids.push(k.slice(GRANT_PREFIX.length));
    }
    return ids;
  }
}
