/**
 * The local JWT issuer of the tests: a real node:http server on 127.0.0.1 serving OIDC discovery
 * and a JWKS, plus `sign()` to mint caller tokens, malformed and hostile ones included (`alg: none`,
 * HS256 over the public key, foreign keys), and endpoints that hang or fail. Test rig, not product:
 * the demo's own issuer is src/demo/callerIssuer.ts.
 *
 *   const idp = await startJwtIssuer();
 *   const token = await idp.sign({ sub: 'alice', oid: 'alice-oid', groups: ['g1'] });
 *   // config: { issuer: idp.issuer, audience: idp.audience, jwksUri: null, algorithms: [...] }
 *   await idp.close();
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  base64url,
  calculateJwkThumbprint,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import type { IssuerConfig } from '../../src/config/schema.js';
import { sendJson } from '../../src/server/httpUtil.js';

export const DEFAULT_AUDIENCE = 'api://credential-gateway';
export { DEFAULT_AUDIENCE as DEFAULT_TEST_AUDIENCE };
const DEFAULT_EXPIRES_IN_SECONDS = 300;

export interface JwtIssuerOptions {
  /** `aud` of minted tokens unless `sign` says otherwise. Default DEFAULT_AUDIENCE. */
  readonly audience?: string;
  /** TCP port on 127.0.0.1. Default: any free port. */
  readonly port?: number;
  /** Also publish an ES256 key. Default true. */
  readonly ecKey?: boolean;
  /** The JWKS endpoint accepts requests and never answers (timeout tests). */
  readonly hangJwks?: boolean;
  /** The discovery endpoint accepts requests and never answers (timeout tests). */
  readonly hangDiscovery?: boolean;
  /** The first N discovery requests get HTTP 503 (retry tests). */
  readonly failDiscoveryTimes?: number;
  /** `issuer` written into the discovery document (mismatch tests). Default: the real one. */
  readonly discoveryIssuer?: string;
}

export interface SignOptions {
  /** Default RS256. `none` builds an unsecured token; HS* needs `key`. */
  readonly alg?: string;
  /** Default: the kid of the issuer's key for `alg`. null leaves `kid` out. */
  readonly kid?: string | null;
  /** Seconds from now (negative: already expired). null leaves `exp` out. Default 300. */
  readonly expiresIn?: number | null;
  /** Seconds from now for `nbf`. Default: no `nbf`. */
  readonly notBefore?: number;
  /** Default: the issuer's audience. null leaves `aud` out. */
  readonly audience?: string | readonly string[] | null;
  /** Default: this issuer's URL. null leaves `iss` out. */
  readonly issuer?: string | null;
  /** Extra protected header parameters. */
  readonly header?: Readonly<Record<string, unknown>>;
  /** Sign with this key instead of the issuer's own (foreign-key and HS256 attacks). */
  readonly key?: CryptoKey | Uint8Array;
}

export interface JwtIssuer {
  /** `http://127.0.0.1:<port>`, also the `iss` of minted tokens. */
  readonly issuer: string;
  readonly jwksUri: string;
  readonly audience: string;
  readonly rsaKid: string;
  readonly ecKid: string | null;
  /** The first RSA public key as SPKI PEM (not changed by rotateRsaKey), for the HS256-signed-with-the-public-key attack. */
  readonly publicKeyPem: string;
  /** The RSA public key as published in the JWKS. */
  readonly publicJwk: JWK;
  readonly jwksFetches: number;
  readonly discoveryFetches: number;
  /** An `identity.issuers[]` entry for this issuer (discovery by default, `jwksUri: null`). */
  issuerConfig(overrides?: Partial<IssuerConfig>): IssuerConfig;
  sign(claims: JWTPayload, options?: SignOptions): Promise<string>;
  /** Replaces the RSA key: the old one leaves the JWKS, later RS256 tokens use the new one. Returns its kid. */
  rotateRsaKey(): Promise<string>;
  close(): Promise<void>;
}

async function publicJwkOf(key: CryptoKey, alg: string): Promise<JWK> {
  const jwk = await exportJWK(key);
  return Object.freeze({ ...jwk, kid: await calculateJwkThumbprint(jwk), alg, use: 'sig' });
}

function unsecuredToken(header: Record<string, unknown>, payload: JWTPayload): string {
  const part = (v: unknown): string => base64url.encode(JSON.stringify(v));
  return `${part({ ...header, alg: 'none' })}.${part(payload)}.`;
}

export async function startJwtIssuer(options: JwtIssuerOptions = {}): Promise<JwtIssuer> {
  const audience = options.audience ?? DEFAULT_AUDIENCE;
  let rsa = await generateKeyPair('RS256', { extractable: true });
  const ec = options.ecKey === false ? null : await generateKeyPair('ES256', { extractable: true });
  let rsaJwk = await publicJwkOf(rsa.publicKey, 'RS256');
  const ecJwk = ec ? await publicJwkOf(ec.publicKey, 'ES256') : null;
  const publicKeyPem = await exportSPKI(rsa.publicKey);
  const jwks = { keys: ecJwk ? [rsaJwk, ecJwk] : [rsaJwk] };
  const rotateRsaKey = async (): Promise<string> => {
    rsa = await generateKeyPair('RS256', { extractable: true });
    rsaJwk = await publicJwkOf(rsa.publicKey, 'RS256');
    jwks.keys = ecJwk ? [rsaJwk, ecJwk] : [rsaJwk];
    return rsaJwk.kid!;
  };

  let jwksFetches = 0;
  let discoveryFetches = 0;
  let discoveryFailuresLeft = options.failDiscoveryTimes ?? 0;
  let issuer = '';

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method === 'GET' && path === '/.well-known/openid-configuration') {
      discoveryFetches++;
      if (options.hangDiscovery) return; // never answered; close() destroys the socket
      if (discoveryFailuresLeft > 0) {
        discoveryFailuresLeft--;
        return sendJson(res, { error: 'temporarily_unavailable' }, 503);
      }
      return sendJson(
        res,
        {
          issuer: options.discoveryIssuer ?? issuer,
          jwks_uri: `${issuer}/jwks`,
          id_token_signing_alg_values_supported: ecJwk ? ['RS256', 'ES256'] : ['RS256'],
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
        },
        200,
      );
    }
    if (req.method === 'GET' && path === '/jwks') {
      jwksFetches++;
      if (options.hangJwks) return; // never answered; close() destroys the socket
      return sendJson(res, jwks, 200);
    }
    sendJson(res, { error: 'not_found' }, 404);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const kidFor = (alg: string): string | undefined => (alg === 'ES256' ? ecJwk?.kid : rsaJwk.kid);
  const keyFor = (alg: string): CryptoKey => {
    if (alg === 'RS256') return rsa.privateKey;
    if (alg === 'ES256' && ec) return ec.privateKey;
    throw new Error(`startJwtIssuer has no ${alg} key; pass sign(..., { key })`);
  };

  return Object.freeze({
    issuer,
    jwksUri: `${issuer}/jwks`,
    audience,
    get rsaKid() {
      return rsaJwk.kid!;
    },
    ecKid: ecJwk?.kid ?? null,
    publicKeyPem,
    get publicJwk() {
      return rsaJwk;
    },
    get jwksFetches() {
      return jwksFetches;
    },
    get discoveryFetches() {
      return discoveryFetches;
    },
    issuerConfig(overrides: Partial<IssuerConfig> = {}): IssuerConfig {
      return Object.freeze({
        issuer,
        audience,
        jwksUri: null,
        algorithms: Object.freeze(['RS256', 'ES256']),
        ...overrides,
      });
    },
    async sign(claims: JWTPayload, signOptions: SignOptions = {}): Promise<string> {
      const alg = signOptions.alg ?? 'RS256';
      const now = Math.floor(Date.now() / 1000);
      const registered: JWTPayload = { iat: now };
      const iss = signOptions.issuer === undefined ? issuer : signOptions.issuer;
      if (iss !== null) registered.iss = iss;
      const aud = signOptions.audience === undefined ? audience : signOptions.audience;
      if (aud !== null) registered.aud = typeof aud === 'string' ? aud : [...aud];
      const expiresIn = signOptions.expiresIn === undefined ? DEFAULT_EXPIRES_IN_SECONDS : signOptions.expiresIn;
      if (expiresIn !== null) registered.exp = now + expiresIn;
      if (signOptions.notBefore !== undefined) registered.nbf = now + signOptions.notBefore;
      const payload = { ...registered, ...claims };

      const kid = signOptions.kid === undefined ? kidFor(alg) : signOptions.kid;
      const header: Record<string, unknown> = { typ: 'JWT', ...(kid == null ? {} : { kid }), ...signOptions.header };
      if (alg === 'none') return unsecuredToken(header, payload);
      return new SignJWT(payload).setProtectedHeader({ ...header, alg }).sign(signOptions.key ?? keyFor(alg));
    },
    rotateRsaKey,
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}
