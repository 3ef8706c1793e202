/** Starts the real gateway on loopback with a temp SQLite file (or a PostgreSQL schema) and a temp keyring. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/log.js';
import { startApp, type App, type AppOptions } from '../../src/server/wire.js';

export const ADMIN_KEY = 'cgk_test-admin-key-0123456789abcdefghijklmnop';

export interface TestApp {
  readonly app: App;
  readonly dir: string;
  readonly url: string;
  /** POST a GraphQL operation to /admin/graphql with the admin key (or the given headers). */
  admin<T = any>(
    query: string,
    variables?: Record<string, unknown>,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: { data?: T; errors?: any[] } }>;
  close(): Promise<void>;
}

export interface TestAppOptions extends Pick<AppOptions, 'plugins' | 'graphos'> {
  readonly storeUrl?: string;
  readonly logLines?: string[];
  readonly now?: () => Date;
}

export async function startTestApp(
  overrides: Record<string, unknown> = {},
  options: TestAppOptions = {},
): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'cg-app-'));
  const raw: Record<string, any> = {
    server: { host: '127.0.0.1', port: 0, drainTimeoutSeconds: 0, ...(overrides['server'] as object) },
    store: { url: options.storeUrl ?? `sqlite:${join(dir, 'credentials.db')}` },
    keys: { keyringFile: join(dir, 'keyring.json') },
    admin: { apiKeys: [ADMIN_KEY], ...(overrides['admin'] as object) },
    oauth: { allowInsecureHttp: true, allowPrivateNetworks: true, timeoutMs: 3000, ...(overrides['oauth'] as object) },
    log: { level: 'info' },
  };
  for (const [k, v] of Object.entries(overrides)) if (!['server', 'admin', 'oauth'].includes(k)) raw[k] = v;
  const config = validateConfig(raw);
  const lines = options.logLines ?? [];
  const logger = createLogger(config.log.level, { write: (line: string) => void lines.push(line) });
  const app = await startApp(config, {
    logger,
    ...(options.now && { now: options.now }),
    ...(options.plugins && { plugins: options.plugins }),
    ...(options.graphos && { graphos: options.graphos }),
  });
  return {
    app,
    dir,
    url: app.url,
    async admin(query, variables = {}, headers = { 'x-api-key': ADMIN_KEY }) {
      const res = await fetch(`${app.url}/admin/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query, variables }),
      });
      return { status: res.status, body: (await res.json()) as any };
    },
    async close() {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
