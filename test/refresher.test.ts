/**
 * The proactive refresher's schedule on its own (its renew function is a plain callback here; the
 * end-to-end behaviour is in proactiveRefresh.test.ts): when it renews, when it leaves a
 * connection alone, and that one connection never has two renewals at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { applyEnv } from '../src/config/load.js';
import { ConfigError, validateConfig } from '../src/config/schema.js';
import { GatewayError } from '../src/errors.js';
import type { ConnectionKey } from '../src/domain/ids.js';
import { ProactiveRefresher, type TokenTimes } from '../src/tokens/refresher.js';

const KEY: ConnectionKey = Object.freeze({ providerId: 'p', connectionId: 'c' });
const LIFETIME_MS = 3_000;

function tokenFrom(now: number, lifetimeMs = LIFETIME_MS): TokenTimes {
  return { expiresAt: now + lifetimeMs, obtainedAt: now };
}

describe('ProactiveRefresher', () => {
  it('renews once, ahead of the refresh window (skew + lead), asking for a token valid beyond the whole window', async () => {
    const renewals: { at: number; minValidityMs: number }[] = [];
    const started = Date.now();
    const refresher = new ProactiveRefresher({
      refreshSkewMs: 500,
      random: () => 0,
      renew: async (_key, minValidityMs) => {
        renewals.push({ at: Date.now(), minValidityMs });
        refresher.stop();
        return tokenFrom(Date.now());
      },
    });
    refresher.noteUse(KEY, tokenFrom(started));
    await sleep(LIFETIME_MS);
    expect(renewals).toHaveLength(1);
    // lead: max(10% of 3 s, 1 s) capped at 25%: 750 ms; due 3000 - 500 - 750 = 1750 ms after issue.
    expect(renewals[0]!.at - started).toBeGreaterThanOrEqual(1_700);
    expect(renewals[0]!.at - started).toBeLessThan(2_500);
    expect(renewals[0]!.minValidityMs).toBeGreaterThanOrEqual(500 + 750 + 300);
  });

  it('never runs two renewals of one connection at once, even when other tokens of it show up meanwhile', async () => {
    let running = 0;
    let peak = 0;
    let calls = 0;
    const refresher = new ProactiveRefresher({
      refreshSkewMs: 0,
      random: () => 0,
      renew: async () => {
        calls++;
        running++;
        peak = Math.max(peak, running);
        await sleep(1_200);
        running--;
        return tokenFrom(Date.now());
      },
    });
    refresher.noteUse(KEY, tokenFrom(Date.now() - 2_200));
    // Due at once; while it runs, requests keep showing tokens whose renewal would be due too.
    await sleep(100);
    for (let i = 0; i < 20; i++) {
      refresher.noteUse(KEY, tokenFrom(Date.now() - 2_200 + i));
      await sleep(50);
    }
    await sleep(300);
    refresher.stop();
    expect(calls).toBe(1);
    expect(peak).toBe(1);
  });

  it('leaves tokens too short-lived to renew ahead to the requests (at most twice the calls requests would make)', async () => {
    let calls = 0;
    const refresher = new ProactiveRefresher({
      refreshSkewMs: 1_000,
      renew: async () => {
        calls++;
        return tokenFrom(Date.now(), 2_000);
      },
    });
    // Fresh for 1 s, but lead (500 ms) and jitter (up to 200 ms) would cut that by more than half.
    refresher.noteUse(KEY, tokenFrom(Date.now(), 2_000));
    await sleep(2_200);
    refresher.stop();
    expect(calls).toBe(0);
  });

  it('forgets a connection whose renewal fails (reported once) until a request uses it again', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const refresher = new ProactiveRefresher({
      refreshSkewMs: 0,
      random: () => 0,
      renew: async () => {
        calls++;
        throw new GatewayError('REAUTHORIZATION_REQUIRED', 'connection c must be authorized again');
      },
      onError: (e) => errors.push(e),
    });
    refresher.noteUse(KEY, tokenFrom(Date.now()));
    await sleep(LIFETIME_MS + 300);
    refresher.stop();
    expect(calls).toBe(1);
    expect(errors).toHaveLength(1);
    expect(refresher.size).toBe(0);
  });

  it('stop() cancels every timer: nothing is renewed afterwards', async () => {
    let calls = 0;
    const refresher = new ProactiveRefresher({
      refreshSkewMs: 0,
      renew: async () => {
        calls++;
        return tokenFrom(Date.now());
      },
    });
    refresher.noteUse(KEY, tokenFrom(Date.now(), 1_500));
    refresher.stop();
    refresher.noteUse(KEY, tokenFrom(Date.now(), 1_500));
    await sleep(1_700);
    expect(calls).toBe(0);
    expect(refresher.size).toBe(0);
  });

  it('remembers only so many connections (the least recently used are let go)', () => {
    const refresher = new ProactiveRefresher({
      refreshSkewMs: 0,
      maxConnections: 3,
      renew: async () => tokenFrom(Date.now()),
    });
    for (let i = 0; i < 5; i++)
      refresher.noteUse({ providerId: 'p', connectionId: `c${i}` }, tokenFrom(Date.now(), 60_000));
    expect(refresher.size).toBe(3);
    refresher.stop();
  });
});

describe('cache.proactiveRefresh', () => {
  it('is on by default and can be turned off from the environment', () => {
    expect(validateConfig(undefined).cache.proactiveRefresh).toBe(true);
    expect(validateConfig(applyEnv({}, { CG_CACHE_PROACTIVE_REFRESH: 'false' })).cache.proactiveRefresh).toBe(false);
  });

  it('refuses anything but a boolean, naming the key', () => {
    expect(() => validateConfig({ cache: { proactiveRefresh: 'sometimes' } })).toThrow(ConfigError);
    expect(() => validateConfig({ cache: { proactiveRefresh: 'sometimes' } })).toThrow(
      'cache.proactiveRefresh must be true or false',
    );
  });
});
