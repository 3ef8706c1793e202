/**
 * The bearer secrets of a consent: login-link tokens, `state` values and consent ids. Each is 256
 * random bits, travels only in a URL or request body, and rests in the store as a hash alone.
 */
import { createHash, randomBytes } from 'node:crypto';

const RANDOM_BYTES = 32;

/** What a secret is for; part of its hash, so that one can never pass for another. */
export type SecretPurpose = 'link' | 'state' | 'consent';

/** base64url of RANDOM_BYTES: 43 characters. */
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export const newSecret = (): string => randomBytes(RANDOM_BYTES).toString('base64url');

export const hashOf = (purpose: SecretPurpose, value: string): string =>
  createHash('sha256').update(`${purpose}:${value}`).digest('base64url');

/** Shaped like a secret this module made: anything else is unknown without a store look-up. */
export const isSecretShaped = (value: unknown): value is string =>
  typeof value === 'string' && SECRET_PATTERN.test(value);
