/** Temporary directories for tests: real files, removed by `cleanup()` (safe to call twice). */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  readonly path: string;
  /** A path inside the directory (nothing is created). */
  file(...segments: string[]): string;
  cleanup(): Promise<void>;
}

export async function tempDir(prefix = 'cg-test-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return Object.freeze({
    path,
    file: (...segments: string[]) => join(path, ...segments),
    cleanup: () => rm(path, { recursive: true, force: true }),
  });
}
