/**
 * The gateway for bench/ecosystem.ts, in its own process: configured from CG_* and OTEL_* like a
 * production start; `BENCH_NOOP_PLUGIN=1` adds one Apollo Server plugin that does nothing (the
 * prepared pipeline then steps aside). Prints `READY <url>`; stops on SIGTERM.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { loadConfig } from '../src/config/load.js';
import type { GatewayContext } from '../src/gateway/dataSource.js';
import { startApp } from '../src/server/wire.js';

const noop: ApolloServerPlugin<GatewayContext> = {
  async requestDidStart() {
    return {};
  },
};

const app = await startApp(loadConfig([], process.env), {
  telemetryEnv: process.env,
  ...(process.env['BENCH_NOOP_PLUGIN'] === '1' && { plugins: [noop] }),
});
process.stdout.write(`READY ${app.url}\n`);
process.once('SIGTERM', () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
