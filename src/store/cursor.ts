/**
 * Page cursors: opaque to callers, the base64url of the last id of the previous page underneath
 * (keyset pagination by id, so inserts and deletes never shift a page).
 */
import { badInput } from '../errors.js';
import { hasControlCharacter } from '../values.js';

export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

/** BAD_USER_INPUT (field `after`) unless `cursor` is exactly what `encodeCursor` produces for an id. */
export function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (id === '' || encodeCursor(id) !== cursor || hasControlCharacter(id))
    throw badInput('after', 'is not a cursor from a previous page');
  return id;
}
