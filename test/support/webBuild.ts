/**
 * Vitest global setup: builds web/ into web/dist when the build is missing or older than its
 * sources (web/ and src/client/), so a single test file run sees the current apps. `npm test`
 * and `npm start` build first anyway (their `pre` scripts); then this finds nothing to do.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SOURCES = [join(REPO, 'web'), join(REPO, 'src/client')];
const DIST = join(REPO, 'web/dist');
const STAMP = join(DIST, 'demo/index.html');

function newestMtimeMs(dir: string): number {
  if (!existsSync(dir)) return 0;
  return Math.max(
    0,
    ...readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.name !== 'dist' && d.name !== 'node_modules')
      .map((d) => (d.isDirectory() ? newestMtimeMs(join(dir, d.name)) : statSync(join(dir, d.name)).mtimeMs)),
  );
}

export function webBuildIsCurrent(): boolean {
  if (!existsSync(STAMP)) return false;
  const built = statSync(STAMP).mtimeMs;
  return SOURCES.every((dir) => newestMtimeMs(dir) <= built);
}

export default async function setup(): Promise<void> {
  if (webBuildIsCurrent()) return;
  await build({ configFile: join(REPO, 'web/vite.config.ts') });
}
