/**
 * The ids of docs/design.md: the rule every id follows, the key of a connection, and the labels errors
 * name resources by. One home, so the edge, the registry and the store agree.
 */
import { badInput } from '../errors.js';

export const MAX_ID_LENGTH = 256;

export interface ConnectionKey {
  readonly providerId: string;
  readonly connectionId: string;
}

/** One string per connection (ids cannot contain `/`): the key of every per-connection map and cache. */
export const connectionKeyOf = (key: ConnectionKey): string => `${key.providerId}/${key.connectionId}`;

export const providerLabel = (id: string): string => `credential provider '${id}'`;

export const connectionLabel = (key: ConnectionKey): string =>
  `connection '${key.connectionId}' of provider '${key.providerId}'`;

export const policyLabel = (key: ConnectionKey, id: string): string =>
  `access policy '${id}' of ${connectionLabel(key)}`;

const ID_FORBIDDEN = /[*#&+:<>?/\s\p{Cc}]/u;
/** An unpaired surrogate (with the `u` flag a pair is one code point): UTF-8 cannot carry it, so no store keeps it as given. */
const UNPAIRED_SURROGATE = /\p{Cs}/u;

export const absent = (value: unknown): value is null | undefined => value === null || value === undefined;

export function characters(value: string): number {
  return [...value].length;
}

export function requireString(value: unknown, field: string): string {
  if (absent(value)) throw badInput(field, 'is required');
  if (typeof value !== 'string') throw badInput(field, 'must be a string');
  return value;
}

/**
 * docs/design.md ID rule, shared by providers, connections and access policies, and checked at the edge
 * on every id a URL brings or a template renders from claims, before any lookup, counter or log line.
 */
export function validateId(value: unknown, field: string): string {
  const id = requireString(value, field);
  // A code point is at most two UTF-16 units: a longer string is refused without counting.
  const length = id.length > 2 * MAX_ID_LENGTH ? Infinity : characters(id);
  if (length < 1 || length > MAX_ID_LENGTH || ID_FORBIDDEN.test(id)) {
    throw badInput(field, `must be 1-${MAX_ID_LENGTH} characters without * # & + : < > ? / or whitespace`);
  }
  // They would vanish from the /tokens/{providerId}/{connectionId} path once a client normalizes it.
  if (id === '.' || id === '..') throw badInput(field, 'must not be . or ..');
  // Stored, it would come back as U+FFFD: a record nobody could address again.
  if (UNPAIRED_SURROGATE.test(id))
    throw badInput(field, 'must be well-formed Unicode (it holds an unpaired surrogate)');
  return id;
}
