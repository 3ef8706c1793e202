/**
 * Admin authentication for the management API (docs/design.md): an admin API key in
 * `x-api-key`, or a trusted JWT carrying the admin role. Only SHA-256 digests of the keys are
 * held, and they are compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Caller } from './caller.js';
import type { JwtVerifier } from './jwt.js';

const API_KEY_PREFIX = 'cgk_';
const API_KEY_BYTES = 32;
const SHA256_BYTES = 32;

export type AdminPrincipal = { readonly kind: 'apiKey' } | { readonly kind: 'jwt'; readonly caller: Caller };

export interface AdminAuthenticatorOptions {
  /** `hashApiKey` of each accepted key (`admin.apiKeys`). */
  readonly apiKeyHashes: readonly Buffer[];
  /** Its role claim (`admin.roleClaim`) fills `Caller.roles`. */
  readonly verifier: JwtVerifier;
  /** `admin.role`. */
  readonly role: string;
}

/** The headers admin authentication reads; Node's `IncomingHttpHeaders` fits. */
export interface AdminHeaders {
  readonly 'x-api-key'?: string | readonly string[] | undefined;
  readonly authorization?: string | undefined;
}

export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** A new admin API key: 32 random bytes, base64url, with a prefix that secret scanners can match. */
export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(API_KEY_BYTES).toString('base64url');
}

const API_KEY_PRINCIPAL: AdminPrincipal = Object.freeze({ kind: 'apiKey' });

export class AdminAuthenticator {
  readonly #apiKeyHashes: readonly Buffer[];
  readonly #verifier: JwtVerifier;
  readonly #role: string;

  constructor(options: AdminAuthenticatorOptions) {
    const problems: string[] = [];
    if (options.apiKeyHashes.some((h) => !Buffer.isBuffer(h) || h.length !== SHA256_BYTES))
      problems.push('admin.apiKeys must be given as SHA-256 digests (hashApiKey)');
    if (typeof options.role !== 'string' || options.role.length === 0)
      problems.push('admin.role must be a non-empty string');
    if (problems.length > 0) throw new ConfigError(problems);
    // Copies, so a caller reusing its buffers cannot change who is admin.
    this.#apiKeyHashes = Object.freeze(options.apiKeyHashes.map((h) => Buffer.from(h)));
    this.#verifier = options.verifier;
    this.#role = options.role;
  }

  /**
   * Who is calling the management API. An `x-api-key` header, when sent, decides alone: a wrong
   * key fails even next to a valid JWT. Otherwise the bearer JWT must carry the admin role.
   */
  async authenticate(headers: AdminHeaders): Promise<AdminPrincipal> {
    const apiKey = headers['x-api-key'];
    if (apiKey !== undefined) {
      if (typeof apiKey !== 'string') throw new GatewayError('UNAUTHENTICATED', 'x-api-key must be sent once');
      if (!this.#matchesApiKey(apiKey)) throw new GatewayError('UNAUTHENTICATED', 'invalid admin API key');
      return API_KEY_PRINCIPAL;
    }
    const caller = await this.#verifier.verifyBearer(headers.authorization);
    if (caller === null)
      throw new GatewayError('UNAUTHENTICATED', 'admin credentials required (x-api-key or a bearer JWT)');
    if (!caller.roles.includes(this.#role)) throw new GatewayError('FORBIDDEN', 'admin role required');
    return Object.freeze({ kind: 'jwt', caller });
  }

  #matchesApiKey(apiKey: string): boolean {
    const digest = hashApiKey(apiKey);
    let matched = false;
    // Every digest is compared, so the time taken does not tell which (or whether one) matched.
    for (const expected of this.#apiKeyHashes) matched = timingSafeEqual(digest, expected) || matched;
    return matched;
  }
}
