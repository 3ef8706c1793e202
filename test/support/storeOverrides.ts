/** A real store with some of its methods replaced, for tests that fail a call or race a write. */
import type { Store } from '../../src/store/types.js';

/** The real store with some methods replaced, to fail a call or slip a concurrent write into an exact moment. */
export function withOverrides(store: Store, overrides: Partial<Store>): Store {
  return new Proxy(store, {
    get(target, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof Store];
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
