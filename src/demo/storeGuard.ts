/**
 * The demo seeds providers, rewrites their client secrets and expires connections' grants on
 * every start: it may only do that to a store it created itself. It checks before it opens the
 * store (opening migrates, which already writes), so a store it refuses is left untouched.
 */
import { ConfigError } from '../config/schema.js';
import { sqliteFileOf } from '../store/open.js';
import { peekSqliteProviders } from '../store/sqlite.js';
import { DEMO_IDENTITY_PROVIDER } from './seed.js';

const IN_MEMORY = ':memory:';
const HOW_TO = 'run the demo on a store of its own (unset CG_STORE_URL, or point it at a new sqlite: file)';

/** Throws ConfigError unless `storeUrl` is a SQLite store that is absent, empty or holds only the demo's providers. */
export function assertDemoStore(storeUrl: string, demoProviderIds: readonly string[]): void {
  if (!storeUrl.startsWith('sqlite:')) {
    throw new ConfigError([`store.url: the demo does not write into a PostgreSQL (or any shared) store; ${HOW_TO}`]);
  }
  const file = sqliteFileOf(storeUrl);
  if (file === IN_MEMORY) return;
  let providers: ReturnType<typeof peekSqliteProviders>;
  try {
    providers = peekSqliteProviders(file);
  } catch (e) {
    throw new ConfigError([
      `store.url: ${file} is not a credential store the demo can read (${(e as Error).message}); ${HOW_TO}`,
    ]);
  }
  const demo = new Set(demoProviderIds);
  const foreign = (providers ?? [])
    .filter((p) => !demo.has(p.id) || p.identityProvider !== DEMO_IDENTITY_PROVIDER)
    .map((p) => p.id);
  if (foreign.length > 0) {
    const named = foreign.slice(0, 3).join(', ') + (foreign.length > 3 ? `, … (${foreign.length} in all)` : '');
    throw new ConfigError([
      `store.url: ${file} holds credential providers that are not the demo's (${named}), so the demo did not create it; ${HOW_TO}`,
    ]);
  }
}
