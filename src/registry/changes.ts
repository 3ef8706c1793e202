/**
 * What changed in the registry (or in a connection's tokens), for whoever holds derived state (the
 * token cache). One path: with a store attached, a change goes through `Store.publishChange`, which
 * tells this process's subscribers at once and every other replica through the database; without
 * one (unit tests), subscribers in this process only.
 *
 * A process hears of its own change once, synchronously, during `publish` (the store drops its own
 * notifications when they come back from the database); only then do subscribers get the
 * publisher's `cause`, the ReadInFlight the change was written for.
 */
import type { ChangeEvent, Store } from '../store/types.js';

export type { ChangeEvent } from '../store/types.js';

declare const READ_IN_FLIGHT: unique symbol;

/**
 * A read in flight whose result may be cached, named by the write it started. The invariant: a
 * read is not made stale by its own write. A token renewal started for a read publishes its change
 * with that read as `cause`; the listener that marks reads in flight stale skips that one read.
 * Compared by identity only; a read is one when its type extends this one.
 */
export interface ReadInFlight {
  readonly [READ_IN_FLIGHT]?: never;
}

/**
 * `event` null: changes may have been missed, anything may have changed. `cause`: the read this
 * process's publisher wrote the change for (undefined for changes from other replicas).
 */
export type ChangeFeedListener = (event: ChangeEvent | null, cause: ReadInFlight | undefined) => void;

export interface ChangeFeedOptions {
  /** Shared with the other replicas. */
  readonly store?: Pick<Store, 'publishChange' | 'onChange'>;
  /** A change that could not be sent on (other replicas keep their entries until TTL). Without it, `publish` rejects. */
  readonly onError?: (error: unknown, event: ChangeEvent) => void;
}

export class ChangeFeed {
  readonly #store: ChangeFeedOptions['store'];
  readonly #onError: ChangeFeedOptions['onError'];
  readonly #local = new Set<(event: ChangeEvent) => void>();
  /** Set only while this process's subscribers are told of its own change (synchronously). */
  #cause: ReadInFlight | undefined = undefined;

  constructor(options: ChangeFeedOptions = {}) {
    this.#store = options.store;
    this.#onError = options.onError;
  }

  subscribe(listener: ChangeFeedListener): () => void {
    const relay = (event: ChangeEvent | null): void => listener(event, this.#cause);
    if (this.#store) return this.#store.onChange(relay);
    this.#local.add(relay);
    return () => void this.#local.delete(relay);
  }

  /**
   * This process's subscribers are told before this returns its promise; the promise settles once
   * the change is on its way to the other replicas. With `onError` it never rejects.
   */
  async publish(event: ChangeEvent, cause?: ReadInFlight): Promise<void> {
    const outer = this.#cause;
    this.#cause = cause;
    let sent: Promise<void>;
    try {
      sent = this.#store ? this.#store.publishChange(event) : this.#tellLocal(event);
    } finally {
      this.#cause = outer;
    }
    try {
      await sent;
    } catch (e) {
      if (!this.#onError) throw e;
      this.#onError(e, event);
    }
  }

  async #tellLocal(event: ChangeEvent): Promise<void> {
    for (const listener of [...this.#local]) listener(event);
  }
}
