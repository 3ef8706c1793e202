/**
 * supergraph.yaml as ApolloGateway's `supergraphSdl` manager: loaded and composed before the
 * gateway starts, then watched; each good edit is handed to the gateway with `update`, and the
 * bindings (`current()`) switch at the same moment as the supergraph they belong to.
 *
 *   const source = await createSupergraphSource(config.supergraph, logger);
 *   const gateway = new ApolloGateway({ supergraphSdl: source, buildService: ... });
 *   // per request: source.binding(subgraphName)
 */
import type { SupergraphManager, SupergraphSdlHook } from '@apollo/gateway';
import type { Logger } from '../log.js';
import { composeSupergraph } from './compose.js';
import { findSubgraph, loadSupergraphConfig, type SubgraphBinding, type SupergraphConfig } from './supergraphConfig.js';
import { watchSupergraph, type SupergraphWatcher } from './supergraphWatch.js';

export interface SupergraphSourceOptions {
  /** Default true: follow edits of the yaml and schema files. */
  readonly watch?: boolean;
  readonly debounceMs?: number;
  /** Default false: before switching, ask every subgraph of the new supergraph for `__typename` (no user token); a failure keeps the current one. */
  readonly healthCheck?: boolean;
}

export interface SupergraphStatus {
  /** ok: the files as last read are in use; stale: the latest reload failed and the last good supergraph is served. */
  readonly state: 'ok' | 'stale';
  /** Failed reloads since the last good (or unchanged) one. */
  readonly failedReloads: number;
}

export interface SupergraphSource extends SupergraphManager {
  /** The configuration of the supergraph in use. */
  current(): SupergraphConfig;
  /** The composed supergraph SDL in use. */
  currentSdl(): string;
  /** The current binding of a subgraph; null when it has none or there is no such subgraph. */
  binding(subgraph: string): SubgraphBinding | null;
  /** Whether the latest reload took (for readiness). */
  status(): SupergraphStatus;
}

/** Reads, validates and composes `file` (throws ConfigError when it cannot be used). */
export async function createSupergraphSource(
  file: string,
  logger: Pick<Logger, 'info' | 'error'>,
  options: SupergraphSourceOptions = {},
): Promise<SupergraphSource> {
  let config = await loadSupergraphConfig(file);
  let supergraphSdl = composeSupergraph(config);
  let watcher: SupergraphWatcher | null = null;
  let failedReloads = 0;

  const initialize: SupergraphSdlHook = async ({ update, healthCheck }) => {
    watcher?.close();
    watcher =
      options.watch === false
        ? null
        : watchSupergraph(config.file, {
            initial: { config, supergraphSdl },
            ...(options.debounceMs === undefined ? {} : { debounceMs: options.debounceMs }),
            async onUpdate(next, nextSdl) {
              if (options.healthCheck) await healthCheck(nextSdl);
              update(nextSdl);
              config = next;
              supergraphSdl = nextSdl;
              failedReloads = 0;
              logger.info({ file: next.file, subgraphs: next.subgraphs.map((s) => s.name) }, 'supergraph updated');
            },
            onError(err) {
              failedReloads += 1;
              logger.error({ err }, 'supergraph reload failed; the last good supergraph stays in use');
            },
            onUnchanged() {
              failedReloads = 0;
            },
          });
    return {
      supergraphSdl,
      cleanup: async () => {
        watcher?.close();
        watcher = null;
      },
    };
  };

  return Object.freeze({
    initialize,
    current: () => config,
    currentSdl: () => supergraphSdl,
    binding: (subgraph: string) => findSubgraph(config, subgraph)?.authorization ?? null,
    status: (): SupergraphStatus => Object.freeze({ state: failedReloads === 0 ? 'ok' : 'stale', failedReloads }),
  });
}
