/**
 * What changed in the registry (or in a connection's tokens), for whoever holds derived state (the
 * token cache). One path: with a store attached, a change goes through `Store.publishChange`, which
 * tells this process's subscribers at once and every other replica through the database; without
 * one (unit tests), subscribers in this process only.
 *
 * A process hears of its own change once, synchronously, during `publish` (the store drops its own
 * notifications when they come back from the database); only then do subscribers get the
 * publisher's `cause`.
 */
import type { ChangeEvent, Store } from '../store/types.js';

export type { ChangeEvent } from '../store/types.js';

/**
 * `event` null: changes may have been missed, anything may have changed. `cause`: what the
 * publisher in this process passed along (undefined for changes from other replicas).
 */
export type ChangeFeedListener = (event: ChangeEvent | null, cause: unknown) => void;

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
  #cause: unknown = undefined;

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
  async publish(event: ChangeEvent, cause?: unknown): Promise<void> {
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
