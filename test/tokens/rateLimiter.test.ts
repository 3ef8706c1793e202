/** The per-connection acquisition budget: its one-minute windows, and that ended ones are swept. */
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.js';
import { AcquisitionLimiter } from '../../src/tokens/rateLimiter.js';

const MINUTE_MS = 60_000;

function clock(start = 1_000_000) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

function refusal(fn: () => void): GatewayError | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
}

describe('AcquisitionLimiter', () => {
  it('allows perMinute acquisitions per key in a window, then refuses with RATE_LIMITED and the seconds left', () => {
    const c = clock();
    const limiter = new AcquisitionLimiter(3, c.now);
    for (let i = 0; i < 3; i++) limiter.take('p/a');
    c.advance(20_500);
    const e = refusal(() => limiter.take('p/a'));
    expect(e?.code).toBe('RATE_LIMITED');
    expect(e?.details['retryAfterSeconds']).toBe(40);
    // Another connection has its own budget.
    expect(refusal(() => limiter.take('p/b'))).toBeNull();
    c.advance(MINUTE_MS);
    expect(refusal(() => limiter.take('p/a'))).toBeNull();
  });

  it('sweeps ended windows: 10,000 distinct keys leave one window a minute later', () => {
    const c = clock();
    const limiter = new AcquisitionLimiter(250, c.now);
    for (let i = 0; i < 10_000; i++) limiter.take(`p/${'x'.repeat(200)}${i}`);
    expect(limiter.size).toBe(10_000);
    c.advance(MINUTE_MS);
    limiter.take('p/next');
    expect(limiter.size).toBe(1);
  });

  it('keeps windows still running when it sweeps, and a restarted window moves to the back', () => {
    const c = clock();
    const limiter = new AcquisitionLimiter(2, c.now);
    limiter.take('p/old');
    c.advance(30_000);
    limiter.take('p/young');
    c.advance(30_000);
    // p/old ended and starts again (at the back); p/young still runs.
    limiter.take('p/old');
    expect(limiter.size).toBe(2);
    limiter.take('p/young');
    expect(refusal(() => limiter.take('p/young'))?.code).toBe('RATE_LIMITED');
    c.advance(30_000);
    limiter.take('p/other');
    // p/young ended; p/old (restarted 30 s ago) and p/other remain.
    expect(limiter.size).toBe(2);
    limiter.take('p/old');
    expect(refusal(() => limiter.take('p/old'))?.code).toBe('RATE_LIMITED');
  });

  it('drops an ended window behind a running one when its key comes back (a clock that stepped back)', () => {
    const c = clock();
    const limiter = new AcquisitionLimiter(1, c.now);
    limiter.take('p/a');
    c.advance(-10_000);
    limiter.take('p/b');
    c.advance(MINUTE_MS + 5_000);
    // Now T+55 s: p/a (opened at T, in front) still runs, so the sweep stops there; p/b (opened at
    // T-10 s, behind it) has ended all the same.
    expect(refusal(() => limiter.take('p/b'))).toBeNull();
    expect(refusal(() => limiter.take('p/a'))?.code).toBe('RATE_LIMITED');
  });

  it('holds at most maxWindows windows, dropping the oldest', () => {
    const c = clock();
    const limiter = new AcquisitionLimiter(1, c.now, 3);
    for (const k of ['a', 'b', 'c', 'd']) limiter.take(k);
    expect(limiter.size).toBe(3);
    // 'a' was dropped: it starts a fresh window; 'd' is still limited.
    expect(refusal(() => limiter.take('a'))).toBeNull();
    expect(refusal(() => limiter.take('d'))?.code).toBe('RATE_LIMITED');
  });

  it('counts each connection on its own: one spent budget leaves the others whole', () => {
    const limiter = new AcquisitionLimiter(2, () => 0);
    limiter.take('p/a');
    limiter.take('p/a');
    expect(() => limiter.take('p/a')).toThrow(GatewayError);
    expect(() => limiter.take('p/b')).not.toThrow();
    expect(() => limiter.take('q/a')).not.toThrow();
  });

  it('starts a fresh window a minute after the first acquisition of the last one', () => {
    let now = 0;
    const limiter = new AcquisitionLimiter(1, () => now);
    limiter.take('p/c');
    now = MINUTE_MS - 1;
    expect(refusal(() => limiter.take('p/c'))?.details).toEqual({ retryAfterSeconds: 1 });
    now = MINUTE_MS;
    expect(() => limiter.take('p/c')).not.toThrow();
    expect(() => limiter.take('p/c')).toThrow(GatewayError);
  });

  it('never counts a refused attempt: the window ends when it would have without them', () => {
    let now = 0;
    const limiter = new AcquisitionLimiter(1, () => now);
    limiter.take('p/c');
    for (let i = 0; i < 100; i++) expect(() => limiter.take('p/c')).toThrow(GatewayError);
    now = MINUTE_MS;
    expect(() => limiter.take('p/c')).not.toThrow();
  });
});
