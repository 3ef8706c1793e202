/**
 * The rules of a key-encryption key as written down: its id and its material in base64. Import-free
 * so that config/ checks `keys.key` with the same rules the keyrings parse it by
 * (test/architecture.test.ts places this file in layer 0).
 */

export const KEK_BYTES = 32;

/** Key ids sit in clear in sealed values and in `LIKE` prefixes: no dots, no wildcards. */
export const KEY_ID_PATTERN = /^[a-z0-9-]{1,64}$/;

const BASE64_PATTERN = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** Standard or URL-safe base64; either way it must decode to exactly one AES-256 key. */
export function decodeKey(text: string): Buffer | null {
  if (!BASE64_PATTERN.test(text)) return null;
  const bytes = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return bytes.length === KEK_BYTES ? bytes : null;
}

/** One `kid:base64key` entry of `keys.key`, or what is wrong with it (`id` only once it is valid). */
export type KeyEntry =
  | { readonly ok: true; readonly id: string; readonly material: Buffer }
  | { readonly ok: false; readonly problem: 'format' }
  | { readonly ok: false; readonly problem: 'id' }
  | { readonly ok: false; readonly problem: 'material'; readonly id: string };

export function parseKeyEntry(entry: string): KeyEntry {
  const colon = entry.indexOf(':');
  if (colon < 0) return { ok: false, problem: 'format' };
  const id = entry.slice(0, colon);
  if (!KEY_ID_PATTERN.test(id)) return { ok: false, problem: 'id' };
  const material = decodeKey(entry.slice(colon + 1));
  return material ? { ok: true, id, material } : { ok: false, problem: 'material', id };
}
