/**
 * Per-request DataLoaders of the management API: a page of providers with their connections and
 * policies costs one store query per level, whatever the page size.
 */
import DataLoader from 'dataloader';
import type {
  AccessPolicyRecord,
  ConnectionRecord,
  ConnectionStatus,
  Page,
  PageArgs,
  ProviderRecord,
} from '../domain/model.js';
import type { ConnectionCounts, Store } from '../store/types.js';
import { connectionKeyOf, type ConnectionKey } from '../domain/ids.js';

export interface ConnectionsPageKey extends PageArgs {
  readonly providerId: string;
  readonly status: ConnectionStatus | null;
}

export interface AdminLoaders {
  readonly provider: DataLoader<string, ProviderRecord | null>;
  readonly connection: DataLoader<ConnectionKey, ConnectionRecord | null, string>;
  readonly connectionsOfProvider: DataLoader<ConnectionsPageKey, Page<ConnectionRecord>, string>;
  readonly accessPolicies: DataLoader<ConnectionKey, AccessPolicyRecord[], string>;
  readonly connectionCounts: DataLoader<string, ConnectionCounts>;
}

export function createAdminLoaders(store: Store): AdminLoaders {
  return {
    provider: new DataLoader((ids) => store.getProviders(ids)),
    connection: new DataLoader((keys) => store.getConnections(keys), { cacheKeyFn: connectionKeyOf }),
    connectionsOfProvider: new DataLoader(
      async (keys) => {
        // Keys asking for the same page shape share one query.
        const groups = new Map<string, { page: PageArgs; status: ConnectionStatus | null; indexes: number[] }>();
        keys.forEach((k, i) => {
          const shape = `${k.first}|${k.after ?? ''}|${k.status ?? ''}`;
          const group = groups.get(shape) ?? {
            page: { first: k.first, after: k.after },
            status: k.status,
            indexes: [],
          };
          group.indexes.push(i);
          groups.set(shape, group);
        });
        const out = new Array<Page<ConnectionRecord>>(keys.length);
        await Promise.all(
          [...groups.values()].map(async ({ page, status, indexes }) => {
            const pages = await store.listConnectionsOfProviders(
              indexes.map((i) => keys[i]!.providerId),
              page,
              status,
            );
            indexes.forEach((keyIndex, j) => {
              out[keyIndex] = pages[j]!;
            });
          }),
        );
        return out;
      },
      { cacheKeyFn: (k) => `${k.providerId}|${k.first}|${k.after ?? ''}|${k.status ?? ''}` },
    ),
    accessPolicies: new DataLoader((keys) => store.listAccessPolicies(keys), { cacheKeyFn: connectionKeyOf }),
    connectionCounts: new DataLoader((ids) => store.countConnectionsByStatus(ids)),
  };
}
