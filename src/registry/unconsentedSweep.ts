/**
 * Deletes the connections the gateway created for callers on first use that nobody consented to
 * within `limits.unconsentedConnectionTtlSeconds`. Without it, anyone the trusted issuer will sign
 * a token for (a self-registration page is enough) could fill `limits.connectionsPerProvider`
 * with connections that never become usable. Connections an admin created are never touched.
 *
 * Every replica sweeps on its own timer: the store's delete is a single conditional statement, so
 * replicas sweeping at once delete (and report) each connection once. Each deletion is published,
 * so every replica's caches drop what they held for it.
 */
import type { ConnectionKey } from '../domain/ids.js';
import type { RegistryDeps } from './deps.js';

/** How often a replica looks for expired unconsented connections. */
export const UNCONSENTED_SWEEP_INTERVAL_MS = 5 * 60_000;
/** Connections deleted per statement: one statement stays short however many have expired. */
const SWEEP_BATCH_SIZE = 500;
/** Statements per sweep; the rest waits for the next one, so a backlog never holds the store long. */
const MAX_BATCHES_PER_SWEEP = 20;

export interface UnconsentedSweepOptions {
  readonly registry: Pick<RegistryDeps, 'store' | 'changes' | 'now'>;
  readonly ttlMs: number;
  readonly intervalMs?: number;
  /** Told of every batch deleted (for the log). */
  readonly onSwept?: (keys: readonly ConnectionKey[]) => void;
  readonly onError?: (error: unknown) => void;
}

export class UnconsentedSweep {
  readonly #options: UnconsentedSweepOptions;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<number> | null = null;

  constructor(options: UnconsentedSweepOptions) {
    this.#options = options;
  }

  /** Sweeps every interval until stopped; the timer never keeps the process alive. */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      this.sweep().catch((e: unknown) => this.#options.onError?.(e));
    }, this.#options.intervalMs ?? UNCONSENTED_SWEEP_INTERVAL_MS);
    this.#timer.unref();
  }

  /** One sweep now (joining one under way); resolves with the number of connections it deleted. */
  sweep(): Promise<number> {
    this.#running ??= this.#sweep().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  /** Stops the timer and waits for a sweep under way. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => {});
  }

  async #sweep(): Promise<number> {
    const { registry, ttlMs } = this.#options;
    const now = registry.now();
    const createdBefore = new Date(now.getTime() - ttlMs);
    let deleted = 0;
    for (let batch = 0; batch < MAX_BATCHES_PER_SWEEP; batch++) {
      const keys = await registry.store.deleteUnconsentedConnections(createdBefore, now, SWEEP_BATCH_SIZE);
      if (keys.length === 0) break;
      deleted += keys.length;
      await Promise.all(keys.map((key) => registry.changes.publish(key)));
      this.#options.onSwept?.(keys);
      if (keys.length < SWEEP_BATCH_SIZE) break;
    }
    return deleted;
  }
}
