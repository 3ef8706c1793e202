/**
 * The public failures of the store, worded once. Messages name the resource and its ids (chosen by
 * admins, never secret) so that an admin can tell which of many objects a batch tripped over.
 */
import { GatewayError } from '../errors.js';

export function notFound(label: string): GatewayError {
  return new GatewayError('NOT_FOUND', `${label} not found`);
}

export function alreadyExists(label: string): GatewayError {
  return new GatewayError('ALREADY_EXISTS', `${label} already exists`);
}

export function versionConflict(label: string, expected: number, current: number): GatewayError {
  return new GatewayError('VERSION_CONFLICT', `${label}: version ${expected} expected, current is ${current}`, {
    details: { expectedVersion: expected, currentVersion: current },
  });
}

/** `owner` already has `limit` `things`, e.g. "provider 'p1' already has 10000 connections (limit)". */
export function limitExceeded(owner: string, limit: number, things: string): GatewayError {
  return new GatewayError('LIMIT_EXCEEDED', `${owner} already has ${limit} ${things} (limit)`, { details: { limit } });
}

/**
 * A store call on the token path that failed for a reason of the database (down, reset, busy, a
 * lock not obtained in time): a stable code the caller may retry on. The cause is only logged.
 */
export function storeUnavailable(cause: unknown): GatewayError {
  return new GatewayError('STORE_UNAVAILABLE', 'the credential store is unavailable; retry shortly', { cause });
}

/** `promise`, with a failure that is not already a GatewayError (NOT_FOUND, ...) turned into STORE_UNAVAILABLE. */
export function orStoreUnavailable<T>(promise: Promise<T>): Promise<T> {
  return promise.catch((e: unknown) => {
    throw e instanceof GatewayError ? e : storeUnavailable(e);
  });
}
