/**
 * The gateway of bench/edgeInput.ts, in its own process (its event loop is what is measured),
 * configured from CG_* variables like test/support/replica.ts. Started with --expose-gc; answers
 * `{type: 'memory'}` over IPC with its RSS and heap after a full collection.
 */
import { loadConfig } from '../src/config/load.js';
import { startApp } from '../src/server/wire.js';

process.env['APOLLO_TELEMETRY_DISABLED'] ??= '1';

export interface MemoryFigures {
  readonly type: 'memory';
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

const app = await startApp(loadConfig([], process.env));
process.send!({ type: 'ready', url: app.url });
// Gone with the bench, whatever way it ended.
process.once('disconnect', () => process.exit(0));
process.on('message', (m: { type: string }) => {
  if (m.type === 'memory') {
    // Twice: the first pass may only queue finalizers.
    globalThis.gc?.();
    globalThis.gc?.();
    const usage = process.memoryUsage();
    process.send!({ type: 'memory', rssBytes: usage.rss, heapUsedBytes: usage.heapUsed } satisfies MemoryFigures);
  } else if (m.type === 'stop') {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  }
});
