/** `npm start`: load configuration, start the gateway, stop cleanly on SIGINT/SIGTERM. */
import { loadConfig } from './config/load.js';
import { ConfigError } from './config/schema.js';
import { startApp } from './server/wire.js';

// The product never reports usage or probes cloud metadata unless the user configures it.
process.env['APOLLO_TELEMETRY_DISABLED'] ??= '1';

async function main(): Promise<void> {
  const config = loadConfig();
  const app = await startApp(config, {
    onAdminKeyGenerated: (key) =>
      process.stderr.write(
        `\nGenerated an admin API key (shown once; only its hash is stored):\n\n  ${key}\n\n` +
          `Send it as the x-api-key header to /admin/graphql, or set admin.apiKeys in the config.\n\n`,
      ),
  });
  process.stderr.write(`Credential gateway ready\n  admin API: ${app.publicUrl}/admin/graphql\n  health:    ${app.publicUrl}/healthz\n`);
  const stop = (signal: string) => {
    app.logger.info({ signal }, 'shutting down');
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

main().catch((e: unknown) => {
  if (e instanceof ConfigError) process.stderr.write(`${e.message}\n`);
  else process.stderr.write(`failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
