/**
 * Machine-wide CPU time from /proc/stat (Linux), so that a run can tell how much of the machine
 * something other than the benchmark used while a case was measured: on a shared 2-core machine
 * that is the first thing to check before trusting a figure.
 */
import { readFileSync } from 'node:fs';

/** USER_HZ: the unit of /proc/stat, 100 on every Linux architecture Node runs on. */
const MICROS_PER_CLOCK_TICK = 10_000;

/**
 * CPU time all cores spent busy since boot, µs; null off Linux. User, nice, system and steal (time
 * the hypervisor gave to others); not irq and softirq, where much of the run's own loopback traffic
 * is handled without being charged to any of its processes.
 */
export function machineBusyMicros(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const [label, user, nice, system, , , , , steal] = line.trim().split(/\s+/);
    if (label !== 'cpu') return null;
    return [user, nice, system, steal].reduce((sum, v) => sum + Number(v ?? 0), 0) * MICROS_PER_CLOCK_TICK;
  } catch {
    return null;
  }
}
