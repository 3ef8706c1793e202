/**
 * `npm start`: with a config file (`--config FILE` or `CONFIG`), the gateway alone; without one,
 * unless `CG_DEMO=false`, the local demo around it (src/demo). Stops cleanly on SIGINT/SIGTERM.
 */
import { configPathFrom, loadConfig } from './config/load.js';
import { ConfigError } from './config/schema.js';
import { portInUseMessage } from './server/portInUse.js';
import { graphosFromEnv } from './gateway/graphos.js';
import type { Logger } from './log.js';
import { startApp } from './server/wire.js';

const DEMO_ENV = 'CG_DEMO';

function announceAdminKey(key: string): void {
  process.stderr.write(
    `\nGenerated an admin API key (shown once; only its hash is stored):\n\n  ${key}\n\n` +
      `Send it as the x-api-key header to /admin/graphql, or set admin.apiKeys in the config.\n\n`,
  );
}

/** The demo runs only when no configuration file is given; `CG_DEMO=false` turns it off. */
function demoWanted(argv: readonly string[], env: NodeJS.ProcessEnv): boolean {
  if (configPathFrom(argv, env) !== null) return false;
  const value = env[DEMO_ENV];
  if (value === undefined || value === '' || value === 'true') return true;
  if (value === 'false') return false;
  throw new ConfigError([`${DEMO_ENV} must be true or false`]);
}

/**
 * The first SIGINT/SIGTERM closes everything, then exits 0. Later ones are ignored while closing:
 * Ctrl-C reaches every process of the group, and wrappers (npm, tsx) relay it once more.
 */
function stopOnSignals(close: () => Promise<void>, logger: Logger): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function runDemo(env: NodeJS.ProcessEnv): Promise<void> {
  // Only the demo needs oidc-provider and the sample subgraphs: a production start never loads them.
  const [{ startDemo }, { demoBanner }] = await Promise.all([import('./demo/demo.js'), import('./demo/banner.js')]);
  const demo = await startDemo({ env, onAdminKeyGenerated: announceAdminKey });
  process.stderr.write(demoBanner(demo));
  stopOnSignals(() => demo.close(), demo.app.logger);
}

async function runGateway(): Promise<void> {
  const app = await startApp(loadConfig(), {
    onAdminKeyGenerated: announceAdminKey,
    graphos: graphosFromEnv(process.env),
    telemetryEnv: process.env,
  });
  process.stderr.write(
    `Credential gateway ready\n  admin API: ${app.publicUrl}/admin/graphql\n  health:    ${app.publicUrl}/healthz\n`,
  );
  stopOnSignals(() => app.close(), app.logger);
}

function startFailure(e: unknown): string {
  if (e instanceof ConfigError) return e.message;
  const err = e as NodeJS.ErrnoException & { port?: unknown };
  if (err?.code === 'EADDRINUSE' && typeof err.port === 'number')
    return `failed to start: ${portInUseMessage(err.port, 'the gateway', 'server.port (CG_SERVER_PORT)')}`;
  return `failed to start: ${e instanceof Error ? e.message : String(e)}`;
}

async function main(): Promise<void> {
  if (demoWanted(process.argv.slice(2), process.env)) await runDemo(process.env);
  else await runGateway();
}

main().catch((e: unknown) => {
  process.stderr.write(`${startFailure(e)}\n`);
  process.exit(1);
});
