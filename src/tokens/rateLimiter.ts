/**
 * Token acquisitions per connection per minute (the reference's 250): a fixed one-minute window
 * per connection. Only acquisitions that reach the store or the identity provider are counted.
 *
 * Windows are kept in the order they opened, so the ones that have ended sit at the front: each
 * take() drops those first. Memory follows the connections used in the last minute, never the
 * keys ever seen.
 */
import { GatewayError } from '../errors.js';

const WINDOW_MS = 60_000;
/** Windows kept at most; past it the oldest is dropped (its connection starts a fresh window). */
export const MAX_TRACKED_CONNECTIONS = 100_000;

interface Window {
  readonly start: number;
  count: number;
}

export class AcquisitionLimiter {
  readonly #perMinute: number;
  readonly #now: () => number;
  readonly #maxWindows: number;
  /** Insertion order is opening order: a window that restarts is deleted and set again. */
  readonly #windows = new Map<string, Window>();

  constructor(perMinute: number, now: () => number = Date.now, maxWindows = MAX_TRACKED_CONNECTIONS) {
    this.#perMinute = perMinute;
    this.#now = now;
    this.#maxWindows = maxWindows;
  }

  /** Windows held (ended ones go at the next take()). */
  get size(): number {
    return this.#windows.size;
  }

  /** Counts one acquisition or throws RATE_LIMITED with the seconds until the window ends. */
  take(key: string): void {
    const now = this.#now();
    this.#sweep(now);
    let w = this.#windows.get(key);
    // Behind the front (a clock that stepped back) an ended window can outlive the sweep.
    if (w && now - w.start >= WINDOW_MS) {
      this.#windows.delete(key);
      w = undefined;
    }
    if (!w) {
      if (this.#windows.size >= this.#maxWindows) this.#windows.delete(this.#windows.keys().next().value!);
      w = { start: now, count: 0 };
      this.#windows.set(key, w);
    }
    if (w.count >= this.#perMinute) {
      const retryAfterSeconds = Math.max(1, Math.ceil((w.start + WINDOW_MS - now) / 1000));
      throw new GatewayError(
        'RATE_LIMITED',
        `more than ${this.#perMinute} token acquisitions this minute for this connection`,
        {
          details: { retryAfterSeconds },
        },
      );
    }
    w.count++;
  }

  /** Drops ended windows from the front; stops at the first one still running. */
  #sweep(now: number): void {
    for (const [key, w] of this.#windows) {
      if (now - w.start < WINDOW_MS) return;
      this.#windows.delete(key);
    }
  }
}
