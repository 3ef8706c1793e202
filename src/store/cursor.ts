/**
 * Page cursors: opaque to callers, the base64url of the last id of the previous page underneath
 * (keyset pagination by id, so inserts and deletes never shift a page).
 */
import { badInput } from '../errors.js';

export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

/** No id holds a control character; U+0000 would even fail the PostgreSQL query. */
const CONTROL_CHARACTER = /\p{Cc}/u;

/** BAD_USER_INPUT (field `after`) unless `cursor` is exactly what `encodeCursor` produces for an id. */
export function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (id === '' || encodeCursor(id) !== cursor || CONTROL_CHARACTER.test(id)) throw badInput('after', 'is not a cursor from a previous page');
  return id;
}
