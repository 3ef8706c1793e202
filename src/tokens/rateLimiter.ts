/**
 * Token acquisitions per connection per minute (the reference's 250): a fixed one-minute window
 * per connection. Only acquisitions that reach the store or the identity provider are counted.
 */
import { LRUCache } from 'lru-cache';
import { GatewayError } from '../errors.js';

const WINDOW_MS = 60_000;
/** Counters kept at most; idle ones fall out after their window anyway. */
const MAX_TRACKED_CONNECTIONS = 100_000;

interface Window {
  start: number;
  count: number;
}

export class AcquisitionLimiter {
  readonly #perMinute: number;
  readonly #now: () => number;
  readonly #windows = new LRUCache<string, Window>({ max: MAX_TRACKED_CONNECTIONS, ttl: WINDOW_MS, ttlAutopurge: false });

  constructor(perMinute: number, now: () => number = Date.now) {
    this.#perMinute = perMinute;
    this.#now = now;
  }

  /** Counts one acquisition or throws RATE_LIMITED with the seconds until the window ends. */
  take(key: string): void {
    const now = this.#now();
    let w = this.#windows.get(key);
    if (!w || now - w.start >= WINDOW_MS) {
      w = { start: now, count: 0 };
      this.#windows.set(key, w);
    }
    if (w.count >= this.#perMinute) {
      const retryAfterSeconds = Math.max(1, Math.ceil((w.start + WINDOW_MS - now) / 1000));
      throw new GatewayError('RATE_LIMITED', `more than ${this.#perMinute} token acquisitions this minute for this connection`, {
        details: { retryAfterSeconds },
      });
    }
    w.count++;
  }
}
