/**
 * One gateway replica in its own process, for multi-replica tests: the real server, configured
 * from CG_* variables only (no file). Prints `READY <url>` on stdout once listening; stops on
 * SIGTERM. Started by test/support/replicas.ts.
 */
import { loadConfig } from '../../src/config/load.js';
import { startApp } from '../../src/server/wire.js';

process.env['APOLLO_TELEMETRY_DISABLED'] ??= '1';

const app = await startApp(loadConfig([], process.env), { telemetryEnv: process.env });
process.stdout.write(`READY ${app.url}\n`);
process.once('SIGTERM', () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
