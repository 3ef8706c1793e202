/**
 * How many renewals run at once in this process: at most `total`, and at most `perGroup` for any one
 * group (a provider). A renewal holds a store lock (on PostgreSQL, one session of a small pool) for
 * as long as its provider takes to answer, so an unbounded number would starve the pool; and one
 * slow provider must not take every slot from the others. The rest wait in arrival order, each
 * starting as soon as its own group and the total allow.
 */

interface Waiter {
  readonly group: string;
  readonly start: () => void;
}

export interface RenewalSlotsOptions {
  readonly total: number;
  readonly perGroup: number;
}

export class RenewalSlots {
  readonly #total: number;
  readonly #perGroup: number;
  readonly #running = new Map<string, number>();
  readonly #queue: Waiter[] = [];
  #runningTotal = 0;

  constructor(options: RenewalSlotsOptions) {
    if (!(options.total >= 1 && options.perGroup >= 1))
      throw new RangeError('renewal slots need total >= 1 and perGroup >= 1');
    this.#total = options.total;
    this.#perGroup = Math.min(options.perGroup, options.total);
  }

  /** Renewals running now (all groups). */
  get running(): number {
    return this.#runningTotal;
  }

  /** Renewals waiting for a slot now (all groups). */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Runs `fn` once a slot of `group` is free; the slot is given back however `fn` ends. */
  async run<T>(group: string, fn: () => Promise<T>): Promise<T> {
    if (this.#free(group)) this.#take(group);
    // Else the slot is taken for us by the renewal that gives it back (#give), so no newcomer slips in first.
    else await new Promise<void>((start) => this.#queue.push({ group, start }));
    try {
      return await fn();
    } finally {
      this.#give(group);
    }
  }

  #free(group: string): boolean {
    return this.#runningTotal < this.#total && (this.#running.get(group) ?? 0) < this.#perGroup;
  }

  #take(group: string): void {
    this.#runningTotal++;
    this.#running.set(group, (this.#running.get(group) ?? 0) + 1);
  }

  #give(group: string): void {
    this.#runningTotal--;
    const left = (this.#running.get(group) ?? 1) - 1;
    if (left === 0) this.#running.delete(group);
    else this.#running.set(group, left);
    // One slot came free, so at most one waiter can start: the first whose group has room (an
    // earlier one's group may still be full).
    const next = this.#queue.findIndex((w) => this.#free(w.group));
    if (next < 0) return;
    const [waiter] = this.#queue.splice(next, 1);
    this.#take(waiter!.group);
    waiter!.start();
  }
}
