/**
 * Per-request DataLoaders of the management API: a page of providers with their connections and
 * policies costs one store query per level, whatever the page size.
 */
import DataLoader from 'dataloader';
import type { AccessPolicyRecord, ConnectionRecord, Page, PageArgs, ProviderRecord } from '../domain/model.js';
import { type Store } from '../store/types.js';
import { connectionKeyOf, type ConnectionKey } from '../domain/ids.js';

export interface ConnectionsPageKey extends PageArgs {
  readonly providerId: string;
}

export interface AdminLoaders {
  readonly provider: DataLoader<string, ProviderRecord | null>;
  readonly connection: DataLoader<ConnectionKey, ConnectionRecord | null, string>;
  readonly connectionsOfProvider: DataLoader<ConnectionsPageKey, Page<ConnectionRecord>, string>;
  readonly accessPolicies: DataLoader<ConnectionKey, AccessPolicyRecord[], string>;
}


export function createAdminLoaders(store: Store): AdminLoaders {
  return {
    provider: new DataLoader((ids) => store.getProviders(ids)),
    connection: new DataLoader((keys) => store.getConnections(keys), { cacheKeyFn: connectionKeyOf }),
    connectionsOfProvider: new DataLoader(
      async (keys) => {
        // Keys asking for the same page shape share one query.
        const groups = new Map<string, { page: PageArgs; indexes: number[] }>();
        keys.forEach((k, i) => {
          const shape = `${k.first}|${k.after ?? ''}`;
          const group = groups.get(shape) ?? { page: { first: k.first, after: k.after }, indexes: [] };
          group.indexes.push(i);
          groups.set(shape, group);
        });
        const out = new Array<Page<ConnectionRecord>>(keys.length);
        await Promise.all(
          [...groups.values()].map(async ({ page, indexes }) => {
            const pages = await store.listConnectionsOfProviders(indexes.map((i) => keys[i]!.providerId), page);
            indexes.forEach((keyIndex, j) => (out[keyIndex] = pages[j]!));
          }),
        );
        return out;
      },
      { cacheKeyFn: (k) => `${k.providerId}|${k.first}|${k.after ?? ''}` },
    ),
    accessPolicies: new DataLoader((keys) => store.listAccessPolicies(keys), { cacheKeyFn: connectionKeyOf }),
  };
}
