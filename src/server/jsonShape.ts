/**
 * The shape of a JSON body, measured chunk by chunk as it arrives, without decoding or parsing it.
 * `JSON.parse` of a body nested ten thousand levels deep, or holding a hundred thousand members,
 * takes milliseconds of the one event loop (tens of them at a MiB): an anonymous client sending
 * such bodies in a loop would stall every other request. One pass over the bytes, skipping strings
 * with `indexOf`, refuses them at the first chunk that shows the problem, before the body is even
 * decoded. UTF-8 is safe to scan bytewise: no byte of a multi-byte character is ASCII.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;
const COMMA = 0x2c;
/** Bytes of a string scanned one by one before the scan jumps with `indexOf`. */
const SHORT_STRING_BYTES = 64;

/** Where the next `byte` is at or after `from`; the chunk's length when there is none. */
function indexOrEnd(chunk: Uint8Array, byte: number, from: number): number {
  const at = chunk.indexOf(byte, from);
  return at < 0 ? chunk.length : at;
}

export type JsonShapeProblem = 'too-deep' | 'too-many-values';

/**
 * Whether a JSON text nests lists and objects more than `maxDepth` levels deep or holds more than
 * `maxValues` values. Counted: one per list or object and one per comma, which for well-formed JSON
 * is at least its list items and object members. Malformed JSON is left for `JSON.parse` to refuse.
 */
export class JsonShapeMeter {
  readonly #maxDepth: number;
  readonly #maxValues: number;
  #depth = 0;
  #values = 0;
  #inString = false;
  /** The previous chunk ended on a backslash inside a string: this one starts with an escaped byte. */
  #escaped = false;

  constructor(maxDepth: number, maxValues: number) {
    this.#maxDepth = maxDepth;
    this.#maxValues = maxValues;
  }

  /** Reads the next chunk; the problem as soon as one shows (stop feeding it then). */
  feed(chunk: Uint8Array): JsonShapeProblem | null {
    // Locals in the loop, written back at the end: this runs over every byte a client sends.
    let depth = this.#depth;
    let values = this.#values;
    let i = this.#escaped ? 1 : 0;
    this.#escaped = false;
    if (this.#inString) i = this.#skipString(chunk, i);
    let problem: JsonShapeProblem | null = null;
    while (i < chunk.length) {
      const c = chunk[i++];
      if (c === QUOTE) {
        this.#inString = true;
        i = this.#skipString(chunk, i);
      } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
        if (++depth > this.#maxDepth) problem = 'too-deep';
        else if (++values > this.#maxValues) problem = 'too-many-values';
        if (problem !== null) break;
      } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) depth--;
      else if (c === COMMA && ++values > this.#maxValues) {
        problem = 'too-many-values';
        break;
      }
    }
    this.#depth = depth;
    this.#values = values;
    return problem;
  }

  /**
   * Past the string that continues at `i` (or to the chunk's end): where scanning resumes. Short
   * strings (keys, ids) byte by byte; then it jumps from backslash to backslash with `indexOf`,
   * each position looked up once, so a long string costs a few native calls, escapes or not.
   */
  #skipString(chunk: Uint8Array, i: number): number {
    const shortEnd = Math.min(chunk.length, i + SHORT_STRING_BYTES);
    for (; i < shortEnd; i++) {
      const c = chunk[i];
      if (c === QUOTE) {
        this.#inString = false;
        return i + 1;
      }
      if (c === BACKSLASH) i++;
    }
    let quote = -1;
    let backslash = -1;
    for (;;) {
      if (i >= chunk.length) {
        this.#escaped = i > chunk.length;
        return chunk.length;
      }
      if (quote < i) quote = indexOrEnd(chunk, QUOTE, i);
      if (backslash < i) backslash = indexOrEnd(chunk, BACKSLASH, i);
      if (backslash < quote) {
        i = backslash + 2;
        continue;
      }
      if (quote === chunk.length) return chunk.length;
      this.#inString = false;
      return quote + 1;
    }
  }
}
