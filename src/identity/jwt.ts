/**
 * Verifies callers' bearer JWTs against the configured trusted issuers (docs/design.md "The runtime step"
 * step 1). Every failure is UNAUTHENTICATED with a fixed public message; jose's error (or the
 * discovery failure) stays in `cause` for the logs. The token itself never appears in an error.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { createRemoteJWKSet, decodeJwt, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { ConfigError, issuerNameOf, type IssuerConfig } from '../config/schema.js';
import { isForbiddenJwsAlgorithm } from './algorithms.js';
import { GatewayError } from '../errors.js';
import { callerFromClaims, type Caller } from './caller.js';
import { webUrl } from '../values.js';

/** Larger tokens are refused before any parsing, so a hostile header costs almost nothing. */
export const MAX_TOKEN_BYTES = 8 * 1024;
const DEFAULT_TIMEOUT_MS = 10_000;
/** An unknown `kid` may refetch the JWKS (key rotation) at most this often per issuer. */
const JWKS_COOLDOWN_MS = 30_000;
/** A JWKS older than this is fetched again before it is used: how long a removed key can linger. */
export const JWKS_REFRESH_MS = 10 * 60_000;
const DISCOVERY_PATH = '/.well-known/openid-configuration';
/** Symmetric algorithms would let anyone holding the public key forge tokens; `none` needs no key. */
/** Bearer credentials are b64token (RFC 6750 §2.1); the scheme is case-insensitive (RFC 7235). */
const BEARER_HEADER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
/** Registered claims jose names in its errors; anything else gets a generic message. */
const NAMED_CLAIMS = new Set(['iss', 'aud', 'sub', 'exp', 'nbf', 'iat']);

export interface JwtVerifierOptions {
  readonly issuers: readonly IssuerConfig[];
  readonly clockToleranceSeconds: number;
  /** Claim holding roles (`admin.roleClaim`). */
  readonly roleClaim: string;
  /** Bound on each discovery and JWKS request (`oauth.timeoutMs`). */
  readonly timeoutMs?: number;
  /** Allow `http:` discovery and JWKS URLs (`oauth.allowInsecureHttp`; local development only). */
  readonly allowInsecureHttp?: boolean;
}

/** Marks failures to obtain an issuer's keys, as opposed to a token that fails a check. */
class KeySourceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeySourceError';
  }
}

function unauthenticated(publicMessage: string, cause?: unknown): GatewayError {
  return new GatewayError('UNAUTHENTICATED', publicMessage, cause === undefined ? {} : { cause });
}

function publicMessageOf(e: unknown): string {
  if (e instanceof KeySourceError) return 'token issuer keys are unavailable';
  if (e instanceof errors.JWTExpired) return 'token has expired';
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'nbf' && e.reason === 'check_failed') return 'token is not valid yet';
    if (!NAMED_CLAIMS.has(e.claim)) return 'token claims are invalid';
    return e.reason === 'missing' ? `token ${e.claim} claim is missing` : `token ${e.claim} claim is invalid`;
  }
  if (e instanceof errors.JOSEAlgNotAllowed) return 'token algorithm is not allowed';
  if (e instanceof errors.JWKSNoMatchingKey) return 'token signing key is not known';
  if (e instanceof errors.JWKSMultipleMatchingKeys) return 'token signing key is ambiguous';
  if (e instanceof errors.JWSSignatureVerificationFailed) return 'token signature is invalid';
  return 'token is invalid';
}

/** One trusted issuer: its verification options and, once known, its key set. */
class TrustedIssuer {
  readonly #config: IssuerConfig;
  readonly #timeoutMs: number;
  readonly #allowInsecureHttp: boolean;
  #keys: Promise<JWTVerifyGetKey> | null = null;

  constructor(config: IssuerConfig, timeoutMs: number, allowInsecureHttp: boolean) {
    this.#config = config;
    this.#timeoutMs = timeoutMs;
    this.#allowInsecureHttp = allowInsecureHttp;
    if (config.jwksUri !== null) {
      // Checked by the constructor of JwtVerifier, so the URL is valid here.
      this.#keys = Promise.resolve(this.#remoteKeys(new URL(config.jwksUri)));
    }
  }

  get config(): IssuerConfig {
    return this.#config;
  }

  /** The key resolver; discovery runs once, and again on a later call if it failed. */
  keys(): Promise<JWTVerifyGetKey> {
    if (this.#keys) return this.#keys;
    const pending = this.#discover().then((url) => this.#remoteKeys(url));
    this.#keys = pending;
    pending.catch(() => {
      if (this.#keys === pending) this.#keys = null;
    });
    return pending;
  }

  #remoteKeys(url: URL): JWTVerifyGetKey {
    const remote = createRemoteJWKSet(url, {
      timeoutDuration: this.#timeoutMs,
      cooldownDuration: JWKS_COOLDOWN_MS,
      cacheMaxAge: JWKS_REFRESH_MS,
    });
    return async (header, token) => {
      try {
        return await remote(header, token);
      } catch (e) {
        // A key the set does not hold is the token's fault; anything else is the key source's.
        if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) throw e;
        throw new KeySourceError(`JWKS of ${this.#config.issuer} unavailable`, { cause: e });
      }
    };
  }

  async #discover(): Promise<URL> {
    const issuer = this.#config.issuer;
    const url = issuer.replace(/\/+$/, '') + DISCOVERY_PATH;
    let body: unknown;
    try {
      const response = await fetch(url, {
        redirect: 'manual',
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
      body = await response.json();
    } catch (e) {
      throw new KeySourceError(`OIDC discovery of ${issuer} failed`, { cause: e });
    }
    const doc = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    // OpenID Connect Discovery §4.3: the document must name exactly the issuer it was fetched for.
    if (doc['issuer'] !== issuer) throw new KeySourceError(`OIDC discovery of ${issuer} returned another issuer`);
    const jwksUri = typeof doc['jwks_uri'] === 'string' ? webUrl(doc['jwks_uri'], this.#allowInsecureHttp) : null;
    if (!jwksUri) throw new KeySourceError(`OIDC discovery of ${issuer} returned no usable jwks_uri`);
    return jwksUri;
  }
}

function trustedIssuers(options: JwtVerifierOptions, timeoutMs: number): Map<string, TrustedIssuer> {
  const allowInsecureHttp = options.allowInsecureHttp ?? false;
  const problems: string[] = [];
  const seen = new Set<string>();
  const names = new Set<string>();
  options.issuers.forEach((config, i) => {
    const at = `identity.issuers[${i}]`;
    if (seen.has(config.issuer)) problems.push(`${at}.issuer ${config.issuer} is listed twice`);
    // `{issuer}` must tell the issuers apart.
    else if (names.has(issuerNameOf(config)))
      problems.push(`${at}.name ${issuerNameOf(config)} is the name of another issuer`);
    seen.add(config.issuer);
    names.add(issuerNameOf(config));
    if (config.algorithms.length === 0 || config.algorithms.some(isForbiddenJwsAlgorithm))
      problems.push(`${at}.algorithms must be a non-empty list of asymmetric JWS algorithms`);
    const keySource = config.jwksUri ?? config.issuer;
    if (!webUrl(keySource, allowInsecureHttp))
      problems.push(
        `${at}.${config.jwksUri === null ? 'issuer' : 'jwksUri'} must be an https URL` +
          (allowInsecureHttp ? '' : ' (http needs oauth.allowInsecureHttp)'),
      );
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return new Map(
    options.issuers.map((config) => [config.issuer, new TrustedIssuer(config, timeoutMs, allowInsecureHttp)]),
  );
}

/** Verified tokens remembered, so a caller sending the same JWT again costs no signature check. */
const VERIFIED_CACHE_ENTRIES = 10_000;
/** Upper bound on remembering one verification, whatever the token's own expiry. */
const VERIFIED_CACHE_MAX_MS = 5 * 60_000;

/** Resolved key objects are compared by identity: jose hands out the same object until the JWKS is fetched again. */
type VerificationKey = Awaited<ReturnType<JWTVerifyGetKey>>;

/** One remembered verification and the key that proved it. */
interface Verified {
  readonly caller: Caller;
  readonly issuer: TrustedIssuer;
  /** The arguments jose resolved the key with, to ask the key set again later. */
  readonly keyQuery: Parameters<JWTVerifyGetKey>;
  readonly key: VerificationKey;
}

/**
 * Whether the key set still resolves this header to the very key that verified the token. Asking the
 * key set also fetches it again once older than JWKS_REFRESH_MS, so a remembered verification dies
 * with its key at the latest one refresh interval after the issuer removed it.
 */
async function stillSigned(entry: Verified): Promise<boolean> {
  try {
    const keys = await entry.issuer.keys();
    return (await keys(...entry.keyQuery)) === entry.key;
  } catch {
    return false; // the full verification below says why
  }
}

export class JwtVerifier {
  readonly #issuers: Map<string, TrustedIssuer>;
  /** SHA-256 of a token → its caller, until the token expires (signature checks cost ~100 µs each). */
  readonly #verified = new LRUCache<string, Verified>({ max: VERIFIED_CACHE_ENTRIES, ttlAutopurge: false });
  readonly #clockToleranceSeconds: number;
  readonly #roleClaim: string;

  /** Throws ConfigError for an issuer that could never be verified safely. */
  constructor(options: JwtVerifierOptions) {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const problems: string[] = [];
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) problems.push('oauth.timeoutMs must be a positive integer');
    if (!Number.isFinite(options.clockToleranceSeconds) || options.clockToleranceSeconds < 0)
      problems.push('identity.clockToleranceSeconds must be a non-negative number');
    if (typeof options.roleClaim !== 'string' || options.roleClaim.length === 0)
      problems.push('admin.roleClaim must be a non-empty string');
    if (problems.length > 0) throw new ConfigError(problems);
    this.#issuers = trustedIssuers(options, timeoutMs);
    this.#clockToleranceSeconds = options.clockToleranceSeconds;
    this.#roleClaim = options.roleClaim;
  }

  /**
   * The caller behind an `Authorization` header value. No header means an anonymous request
   * (null); anything else must be a valid `Bearer` token, or this throws UNAUTHENTICATED.
   */
  async verifyBearer(authorizationHeader: string | undefined): Promise<Caller | null> {
    if (authorizationHeader === undefined || authorizationHeader === '') return null;
    const match = BEARER_HEADER.exec(authorizationHeader);
    if (!match) throw unauthenticated('authorization header must be "Bearer <token>"');
    return this.verifyToken(match[1]!);
  }

  /** The caller a compact JWT proves; throws UNAUTHENTICATED when any check fails. */
  async verifyToken(token: string): Promise<Caller> {
    if (typeof token !== 'string' || token.length === 0) throw unauthenticated('token is missing');
    if (Buffer.byteLength(token, 'utf8') > MAX_TOKEN_BYTES) throw unauthenticated('token is too large');
    const digest = createHash('sha256').update(token).digest('base64url');
    const known = this.#verified.get(digest);
    if (known && (await stillSigned(known))) return known.caller;
    this.#verified.delete(digest);
    const verified = await this.#verify(token);
    // Remembered until it expires (without the clock tolerance's grace) and never beyond the cap.
    const ttl = Math.min(Number(verified.caller.claims['exp']) * 1000 - Date.now(), VERIFIED_CACHE_MAX_MS);
    if (ttl > 0) this.#verified.set(digest, verified, { ttl });
    return verified.caller;
  }

  async #verify(token: string): Promise<Verified> {
    let unverifiedIssuer: unknown;
    try {
      unverifiedIssuer = decodeJwt(token).iss;
    } catch (e) {
      throw unauthenticated('token is malformed', e);
    }
    // Only picks which configuration to verify against; jwtVerify checks `iss` again below.
    const trusted = typeof unverifiedIssuer === 'string' ? this.#issuers.get(unverifiedIssuer) : undefined;
    if (!trusted) throw unauthenticated('token issuer is not trusted');

    let payload: JWTPayload;
    let keyQuery: Parameters<JWTVerifyGetKey> | undefined;
    let key: VerificationKey | undefined;
    try {
      const keys = await trusted.keys();
      const recordingKeys: JWTVerifyGetKey = async (...query) => {
        keyQuery = query;
        key = await keys(...query);
        return key;
      };
      ({ payload } = await jwtVerify(token, recordingKeys, {
        issuer: trusted.config.issuer,
        audience: trusted.config.audience,
        algorithms: [...trusted.config.algorithms],
        clockTolerance: this.#clockToleranceSeconds,
        // A token without `exp` would be a bearer credential for ever.
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (e) {
      throw unauthenticated(publicMessageOf(e), e);
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0)
      throw unauthenticated('token sub claim is invalid');
    return {
      caller: callerFromClaims(payload, this.#roleClaim, issuerNameOf(trusted.config)),
      issuer: trusted,
      keyQuery: keyQuery!,
      key: key!,
    };
  }
}
