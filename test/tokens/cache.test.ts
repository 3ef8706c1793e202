/**
 * tokens/cache.ts: the reference's cache rule (cached until the skew before expiry; with less
 * left, until expiry), never-expiring tokens re-read now and then, eviction by connection or
 * provider, and a disabled cache that keeps nothing.
 */
import { describe, expect, it } from 'vitest';
import type { AccessPolicyRecord } from '../../src/domain/model.js';
import { NEVER_EXPIRING_CACHE_TTL_MS, TokenCache, cacheTtlMs } from '../../src/tokens/cache.js';
import type { AccessToken } from '../../src/tokens/tokenSource.js';

const SKEW_MS = 180_000;
const NO_POLICIES: readonly AccessPolicyRecord[] = Object.freeze([]);

function token(expiresAt: number | null): AccessToken {
  return { accessToken: 'at', tokenType: 'Bearer', expiresAt } as unknown as AccessToken;
}

function clock(start = 1_000_000) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('cacheTtlMs', () => {
  it('keeps a token until the skew before it expires', () => {
    expect(cacheTtlMs(1_000_000 + 3_600_000, 1_000_000, SKEW_MS)).toBe(3_600_000 - SKEW_MS);
  });

  it('keeps a token with less than the skew left until it expires', () => {
    expect(cacheTtlMs(1_000_000 + 60_000, 1_000_000, SKEW_MS)).toBe(60_000);
  });

  it('gives an expired token no time at all', () => {
    expect(cacheTtlMs(999_000, 1_000_000, SKEW_MS)).toBeLessThanOrEqual(0);
  });

  it('re-reads a never-expiring token after a fixed interval', () => {
    expect(cacheTtlMs(null, 1_000_000, SKEW_MS)).toBe(NEVER_EXPIRING_CACHE_TTL_MS);
  });
});

describe('TokenCache', () => {
  it('serves an entry until the skew before expiry, then drops it', () => {
    const c = clock();
    const cache = new TokenCache({ enabled: true, maxEntries: 10, skewMs: SKEW_MS, now: c.now });
    cache.set('p/a', { token: token(c.now() + 600_000), policies: NO_POLICIES });
    c.advance(600_000 - SKEW_MS - 1);
    expect(cache.get('p/a')).toBeDefined();
    c.advance(2);
    expect(cache.get('p/a')).toBeUndefined();
  });

  it('does not keep a token that has already expired', () => {
    const c = clock();
    const cache = new TokenCache({ enabled: true, maxEntries: 10, skewMs: SKEW_MS, now: c.now });
    cache.set('p/a', { token: token(c.now() - 1), policies: NO_POLICIES });
    expect(cache.get('p/a')).toBeUndefined();
  });

  it('evicts one connection, or every connection of one provider only', () => {
    const c = clock();
    const cache = new TokenCache({ enabled: true, maxEntries: 10, skewMs: SKEW_MS, now: c.now });
    for (const key of ['p/a', 'p/b', 'q/a', 'pp/a'])
      cache.set(key, { token: token(c.now() + 3_600_000), policies: NO_POLICIES });
    cache.evict('p', 'a');
    expect(cache.get('p/a')).toBeUndefined();
    expect(cache.get('p/b')).toBeDefined();
    cache.evict('p');
    expect(cache.get('p/b')).toBeUndefined();
    // A provider whose id starts like another's keeps its entries.
    expect(cache.get('pp/a')).toBeDefined();
    expect(cache.get('q/a')).toBeDefined();
  });

  it('holds at most maxEntries, dropping the least recently used', () => {
    const c = clock();
    const cache = new TokenCache({ enabled: true, maxEntries: 2, skewMs: SKEW_MS, now: c.now });
    cache.set('p/a', { token: token(c.now() + 3_600_000), policies: NO_POLICIES });
    cache.set('p/b', { token: token(c.now() + 3_600_000), policies: NO_POLICIES });
    cache.get('p/a');
    cache.set('p/c', { token: token(c.now() + 3_600_000), policies: NO_POLICIES });
    expect(cache.get('p/b')).toBeUndefined();
    expect(cache.get('p/a')).toBeDefined();
  });

  it('keeps nothing when disabled', () => {
    const cache = new TokenCache({ enabled: false, maxEntries: 10, skewMs: SKEW_MS });
    cache.set('p/a', { token: token(Date.now() + 3_600_000), policies: NO_POLICIES });
    expect(cache.get('p/a')).toBeUndefined();
    expect(() => cache.evict('p')).not.toThrow();
  });
});
