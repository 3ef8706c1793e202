/**
 * Change propagation behind `Store.publishChange` / `Store.onChange`: this process's listeners are
 * told synchronously, other processes through a transport (PostgreSQL LISTEN/NOTIFY). Without a
 * transport (SQLite: one process per file) the hub is purely in-process.
 */
import type { ChangeEvent, ChangeListener } from './types.js';

/** Carries changes between processes. It never hands a process its own changes back. */
export interface ChangeTransport {
  /** Starts delivering other processes' changes (and `null` after a gap); resolves once listening. */
  start(deliver: ChangeListener): Promise<void>;
  send(event: ChangeEvent): Promise<void>;
  close(): Promise<void>;
}

export class ChangeHub {
  readonly #listeners = new Set<ChangeListener>();
  readonly #transport: ChangeTransport | null;
  readonly #onError: (error: unknown) => void;

  /** `onError`: a listener failed on a change that came from another process (nobody else to tell). */
  constructor(transport: ChangeTransport | null = null, onError: (error: unknown) => void = () => {}) {
    this.#transport = transport;
    this.#onError = onError;
  }

  start(): Promise<void> {
    return (
      this.#transport?.start((event) => {
        const failure = this.#deliver(event);
        if (failure !== undefined) this.#onError(failure);
      }) ?? Promise.resolve()
    );
  }

  on(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** Local listeners first, before any await: when this returns a promise, they already know. */
  async publish(event: ChangeEvent): Promise<void> {
    const copy: ChangeEvent = Object.freeze(
      event.connectionId === undefined
        ? { providerId: event.providerId }
        : { providerId: event.providerId, connectionId: event.connectionId },
    );
    const failure = this.#deliver(copy);
    await this.#transport?.send(copy);
    if (failure !== undefined) throw failure;
  }

  close(): Promise<void> {
    this.#listeners.clear();
    return this.#transport?.close() ?? Promise.resolve();
  }

  /** Every listener hears of it even if one throws; the first failure is returned. */
  #deliver(event: ChangeEvent | null): unknown {
    let failure: unknown;
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (e) {
        failure ??= e;
      }
    }
    return failure;
  }
}
