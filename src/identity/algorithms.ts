/**
 * Which JWS algorithms a verifier of caller JWTs refuses. A rule of identity/, kept in a file of
 * its own with no imports so that config/ (below identity/) can check the configured algorithms
 * against the same rule (test/architecture.test.ts places this file in layer 0).
 */

/** `none` and the HMAC algorithms, in any case: a verifier of caller JWTs accepts neither. */
export function isForbiddenJwsAlgorithm(algorithm: string): boolean {
  return /^(none$|hs)/i.test(algorithm);
}
