/**
 * Decrypted access tokens in memory, with the reference's rule: cached until `skew` before expiry;
 * a token with less than `skew` left is cached until it expires. The access policies that admitted
 * it are cached alongside, so a hit still checks the caller, and admin changes evict entries.
 */
import { LRUCache } from 'lru-cache';
import type { AccessPolicyRecord } from '../domain/model.js';
import { connectionKeyOf } from '../domain/ids.js';
import type { AccessToken } from './tokenSource.js';

/** Tokens that never expire are still re-read now and then, so a revoked grant is noticed. */
export const NEVER_EXPIRING_CACHE_TTL_MS = 15 * 60_000;

export interface CachedToken {
  readonly token: AccessToken;
  readonly policies: readonly AccessPolicyRecord[];
}

export function cacheTtlMs(expiresAt: number | null, now: number, skewMs: number): number {
  if (expiresAt === null) return NEVER_EXPIRING_CACHE_TTL_MS;
  const left = expiresAt - now;
  return left > skewMs ? left - skewMs : left;
}

export class TokenCache {
  readonly #lru: LRUCache<string, CachedToken> | null;
  readonly #skewMs: number;
  readonly #now: () => number;

  constructor(options: { enabled: boolean; maxEntries: number; skewMs: number; now?: () => number }) {
    this.#now = options.now ?? Date.now;
    this.#skewMs = options.skewMs;
    // ttlResolution 0: lru-cache otherwise reuses one reading of the clock for a millisecond of real
    // time, so an injected clock that jumps (tests, benches) would see stale entries served.
    this.#lru = options.enabled
      ? new LRUCache({ max: options.maxEntries, ttlAutopurge: false, ttlResolution: 0, perf: { now: this.#now } })
      : null;
  }

  get(key: string): CachedToken | undefined {
    return this.#lru?.get(key);
  }

  set(key: string, entry: CachedToken): void {
    if (!this.#lru) return;
    const ttl = cacheTtlMs(entry.token.expiresAt, this.#now(), this.#skewMs);
    if (ttl > 0) this.#lru.set(key, entry, { ttl });
  }

  /** Evicts one connection, or every connection of a provider when `connectionId` is absent. */
  evict(providerId: string, connectionId?: string): void {
    if (!this.#lru) return;
    if (connectionId !== undefined) {
      this.#lru.delete(connectionKeyOf({ providerId, connectionId }));
      return;
    }
    const prefix = `${providerId}/`;
    for (const key of [...this.#lru.keys()]) if (key.startsWith(prefix)) this.#lru.delete(key);
  }

  clear(): void {
    this.#lru?.clear();
  }
}
