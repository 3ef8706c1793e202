/**
 * The loop behind the store's durable queues (revocations, webhook deliveries): every replica
 * runs one; the store hands each due row to one of them. It polls, and can be woken early (a
 * change was just recorded). A step that returns a full batch runs again at once.
 */

/** Exponential backoff with jitter: attempt 1 waits about `baseMs`, each further one twice as long, capped. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  // "Equal jitter": between half and all of it, so replicas retrying together spread out.
  return Math.round(exponential / 2 + (random() * exponential) / 2);
}

export interface QueueLoopOptions {
  /** Processes one batch; resolves with true when it was full (more may be due). */
  readonly step: () => Promise<boolean>;
  readonly intervalMs: number;
  readonly onError: (error: unknown) => void;
}

export class QueueLoop {
  readonly #options: QueueLoopOptions;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #stopped = false;

  constructor(options: QueueLoopOptions) {
    this.#options = options;
  }

  start(): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setInterval(() => this.wake(), this.#options.intervalMs);
    this.#timer.unref();
    this.wake();
  }

  /** Runs a step now, or right after the one under way. */
  wake(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#drain().finally(() => {
      this.#running = null;
    });
  }

  /** Resolves once the queue looked empty (tests and benches wait for delivery with it). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  async #drain(): Promise<void> {
    do {
      this.#again = false;
      try {
        while (!this.#stopped && (await this.#options.step()));
      } catch (e) {
        this.#options.onError(e);
      }
    } while (this.#again && !this.#stopped);
  }
}
