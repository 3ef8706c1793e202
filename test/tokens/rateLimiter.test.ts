/**
 * AcquisitionLimiter on its own: a fixed one-minute window per connection, counted per key, with
 * the seconds until the window ends told to whoever is refused.
 */
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.js';
import { AcquisitionLimiter } from '../../src/tokens/rateLimiter.js';

const MINUTE_MS = 60_000;

function refusal(run: () => void): GatewayError {
  try {
    run();
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error('expected RATE_LIMITED');
}

describe('AcquisitionLimiter', () => {
  it('allows the limit within a minute, then refuses with RATE_LIMITED and the seconds left in the window', () => {
    let now = 1_000_000;
    const limiter = new AcquisitionLimiter(3, () => now);
    for (let i = 0; i < 3; i++) limiter.take('p/c');
    now += 20_500;
    const e = refusal(() => limiter.take('p/c'));
    expect(e.code).toBe('RATE_LIMITED');
    expect(e.httpStatus).toBe(429);
    expect(e.details).toEqual({ retryAfterSeconds: 40 });
    expect(e.message).toBe('more than 3 token acquisitions this minute for this connection');
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
    expect(refusal(() => limiter.take('p/c')).details).toEqual({ retryAfterSeconds: 1 });
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
