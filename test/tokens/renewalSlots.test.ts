/**
 * RenewalSlots on its own: how many renewals run at once, in all and per provider, and that a slow
 * provider's queue never holds back another provider's renewals.
 */
import { describe, expect, it } from 'vitest';
import { RenewalSlots } from '../../src/tokens/renewalSlots.js';

/** A renewal the test finishes by hand. */
function gate() {
  let open!: () => void;
  let fail!: (e: unknown) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('RenewalSlots', () => {
  it('runs at most perGroup renewals of one provider, queueing the rest in arrival order', async () => {
    const slots = new RenewalSlots({ total: 8, perGroup: 2 });
    const started: number[] = [];
    const gates = Array.from({ length: 5 }, () => gate());
    const runs = gates.map((g, i) =>
      slots.run('slow', async () => {
        started.push(i);
        await g.promise;
      }),
    );
    await tick();
    expect(started).toEqual([0, 1]);
    expect(slots.waiting).toBe(3);
    gates[1]!.open();
    await tick();
    expect(started).toEqual([0, 1, 2]);
    for (const g of gates) g.open();
    await Promise.all(runs);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(slots.running).toBe(0);
  });

  it("starts another provider's renewal at once while a slow provider's queue waits", async () => {
    const slots = new RenewalSlots({ total: 4, perGroup: 2 });
    const slow = Array.from({ length: 6 }, () => gate());
    const slowRuns = slow.map((g) => slots.run('slow', () => g.promise));
    await tick();
    let fastRan = false;
    await slots.run('fast', async () => {
      fastRan = true;
    });
    expect(fastRan).toBe(true);
    expect(slots.running).toBe(2);
    for (const g of slow) g.open();
    await Promise.all(slowRuns);
  });

  it('never runs more than total at once, across providers', async () => {
    const slots = new RenewalSlots({ total: 3, perGroup: 2 });
    let running = 0;
    let peak = 0;
    const runs = Array.from({ length: 12 }, (_, i) =>
      slots.run(`p${i % 4}`, async () => {
        running++;
        peak = Math.max(peak, running);
        await tick();
        running--;
      }),
    );
    await Promise.all(runs);
    expect(peak).toBe(3);
  });

  it('gives the slot back when a renewal fails, and the failure reaches its caller', async () => {
    const slots = new RenewalSlots({ total: 1, perGroup: 1 });
    const failing = gate();
    const first = slots.run('p', () => failing.promise);
    const second = slots.run('p', async () => 'second');
    failing.fail(new Error('provider down'));
    await expect(first).rejects.toThrow('provider down');
    await expect(second).resolves.toBe('second');
    expect(slots.running).toBe(0);
  });

  it('lets a waiter of a provider with room start before an earlier waiter of a full one', async () => {
    const slots = new RenewalSlots({ total: 2, perGroup: 1 });
    const a = gate();
    const b = gate();
    const order: string[] = [];
    const runA = slots.run('a', async () => {
      order.push('a1');
      await a.promise;
    });
    const runB = slots.run('b', async () => {
      order.push('b1');
      await b.promise;
    });
    const runA2 = slots.run('a', async () => void order.push('a2'));
    const runC = slots.run('c', async () => void order.push('c1'));
    await tick();
    // Both slots busy: a2 and c1 wait. b ends: c1 fits, a2 does not (a is still running).
    b.open();
    await runB;
    await tick();
    expect(order).toEqual(['a1', 'b1', 'c1']);
    a.open();
    await Promise.all([runA, runA2, runC]);
    expect(order).toEqual(['a1', 'b1', 'c1', 'a2']);
  });
});
