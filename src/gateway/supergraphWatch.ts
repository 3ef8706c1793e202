/**
 * Watches supergraph.yaml and the schema files it names; each change is re-parsed and
 * recomposed. A broken edit is reported and changes nothing: the last good supergraph stays.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { composeSupergraph } from './compose.js';
import { parseSupergraphConfig, type SupergraphConfig } from './supergraphConfig.js';

/** Editors save in several steps (truncate, write, rename); one reload follows the last of them. */
export const DEFAULT_DEBOUNCE_MS = 100;

export interface SupergraphWatchOptions {
  /** A new, valid, composed supergraph. When it throws (or rejects), the change is reported to onError and retried on the next edit. */
  onUpdate(config: SupergraphConfig, supergraphSdl: string): void | Promise<void>;
  /** A reload failed (unreadable file, invalid config, composition errors) or a watch broke. */
  onError(error: unknown): void;
  /** A reload found the supergraph already in use (for example, a broken edit was reverted). */
  onUnchanged?(): void;
  readonly debounceMs?: number;
  /** The supergraph already in use: it is not reported again, only changes from it are. */
  readonly initial?: { readonly config: SupergraphConfig; readonly supergraphSdl: string };
}

export interface SupergraphWatcher {
  close(): void;
}

function signatureOf(config: SupergraphConfig, supergraphSdl: string): string {
  return `${JSON.stringify(config)}\n${supergraphSdl}`;
}

/**
 * Watches the directories of the files `arm` is given (closing those no longer needed), and calls
 * `onChange` when one of those files changes.
 */
function directoryWatches(
  onChange: () => void,
  onError: (error: unknown) => void,
): { arm(files: readonly string[]): void; close(): void } {
  const watchers = new Map<string, FSWatcher>();
  /** Directory → names of the files in it that matter. */
  let watched = new Map<string, Set<string>>();

  function arm(files: readonly string[]): void {
    const next = new Map<string, Set<string>>();
    for (const f of files) {
      const names = next.get(dirname(f)) ?? new Set<string>();
      names.add(basename(f));
      next.set(dirname(f), names);
    }
    watched = next;
    for (const [dir, watcher] of watchers) {
      if (!next.has(dir)) {
        watcher.close();
        watchers.delete(dir);
      }
    }
    for (const dir of next.keys()) {
      if (watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, { persistent: true }, (_event, name) => {
          if (name === null || watched.get(dir)?.has(name.toString())) onChange();
        });
        watcher.on('error', (e) => {
          watcher.close();
          watchers.delete(dir);
          onError(e);
        });
        watchers.set(dir, watcher);
      } catch (e) {
        onError(e);
      }
    }
  }

  return {
    arm,
    close(): void {
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}

/**
 * Starts watching `file` and loads it once right away (nothing is reported when that matches
 * `initial`). Directories are watched rather than files, so the watch survives editors that
 * replace a file on save, and a file deleted and written again is seen.
 */
export function watchSupergraph(file: string, options: SupergraphWatchOptions): SupergraphWatcher {
  const yamlFile = resolve(file);
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  let lastSignature = options.initial ? signatureOf(options.initial.config, options.initial.supergraphSdl) : null;
  let lastFiles = options.initial ? filesOf(options.initial.config) : [yamlFile];
  let timer: NodeJS.Timeout | null = null;
  let queue: Promise<void> = Promise.resolve();
  let closed = false;
  const watches = directoryWatches(
    () => schedule(),
    (e) => options.onError(e),
  );
  const arm = (files: readonly string[]): void => watches.arm(files);

  function filesOf(config: SupergraphConfig): string[] {
    return [yamlFile, ...config.subgraphs.map((s) => s.schemaFile)];
  }

  function schedule(): void {
    if (closed) return;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      queue = queue.then(reload);
    }, debounceMs);
  }

  async function reload(): Promise<void> {
    if (closed) return;
    let config: SupergraphConfig;
    let supergraphSdl: string;
    try {
      config = parseSupergraphConfig(readFileSync(yamlFile, 'utf8'), yamlFile);
      supergraphSdl = composeSupergraph(config);
    } catch (e) {
      // Keep watching what the last good supergraph used: fixing any of those files recovers.
      arm(lastFiles);
      return options.onError(e);
    }
    arm(filesOf(config));
    const signature = signatureOf(config, supergraphSdl);
    if (signature === lastSignature) return options.onUnchanged?.();
    try {
      await options.onUpdate(config, supergraphSdl);
    } catch (e) {
      return options.onError(e);
    }
    lastSignature = signature;
    lastFiles = filesOf(config);
  }

  arm(lastFiles);
  schedule();
  return Object.freeze({
    close(): void {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      watches.close();
    },
  });
}
