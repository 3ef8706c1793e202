/**
 * The rule of `store.url`: which store it names. Import-free so that config/ checks the URL by the
 * rule the store is opened by (test/architecture.test.ts places this file in layer 0).
 */

export const STORE_URL_RULE = 'store.url must start with sqlite: or postgres://';

export function storeDialectOf(url: string): 'sqlite' | 'postgres' | null {
  if (url.startsWith('sqlite:')) return 'sqlite';
  if (/^postgres(ql)?:\/\//.test(url)) return 'postgres';
  return null;
}
