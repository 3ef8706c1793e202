/**
 * The shape of a JSON text, measured without parsing it. `JSON.parse` of a body nested ten thousand
 * levels deep, or holding a hundred thousand members, takes milliseconds of the one event loop
 * (tens of them at a MiB): an anonymous client sending such bodies in a loop would stall every other
 * request. One pass over the text, skipping strings with `indexOf`, refuses them for a fraction of
 * that, before anything is built from them.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;
const COMMA = 0x2c;

export type JsonShapeProblem = 'too-deep' | 'too-many-values';

/** Where the string opened at `open` ends (its closing quote), or -1 when it never does. */
function stringEnd(text: string, open: number): number {
  let at = open;
  for (;;) {
    at = text.indexOf('"', at + 1);
    if (at < 0) return -1;
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
}

/**
 * Whether `text`, read as JSON, nests lists and objects more than `maxDepth` levels deep or holds
 * more than `maxValues` values. Counted: one per list or object and one per comma, which for
 * well-formed JSON is at least its list items and object members. Malformed JSON is left for
 * `JSON.parse` to refuse.
 */
export function jsonShapeProblem(text: string, maxDepth: number, maxValues: number): JsonShapeProblem | null {
  let depth = 0;
  let values = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i);
      if (i < 0) return null;
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > maxDepth) return 'too-deep';
      if (++values > maxValues) return 'too-many-values';
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--;
    } else if (c === COMMA && ++values > maxValues) {
      return 'too-many-values';
    }
  }
  return null;
}
