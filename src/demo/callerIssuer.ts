/**
 * The demo's caller issuer: a real node:http server on 127.0.0.1 serving OIDC discovery and a
 * JWKS with one RS256 key, and `sign()` to mint the demo users' JWTs. (The tests' issuer, which
 * also mints hostile tokens, is test/support/jwtIssuer.ts.)
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { IssuerConfig } from '../config/schema.js';
import { sendJson } from '../server/httpUtil.js';

const CALLER_AUDIENCE = 'api://credential-gateway';

export interface CallerIssuer {
  /** `http://127.0.0.1:<port>`, also the `iss` of minted tokens. */
  readonly issuer: string;
  /** An `identity.issuers[]` entry for this issuer (found by discovery). */
  issuerConfig(): IssuerConfig;
  /** A JWT for `sub`, valid for `expiresInSeconds`. */
  sign(sub: string, expiresInSeconds: number): Promise<string>;
  close(): Promise<void>;
}

export async function startCallerIssuer(port: number): Promise<CallerIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const jwks = { keys: [{ ...publicJwk, kid, alg: 'RS256', use: 'sig' }] };
  let issuer = '';
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method === 'GET' && path === '/.well-known/openid-configuration') {
      return sendJson(
        res,
        {
          issuer,
          jwks_uri: `${issuer}/jwks`,
          id_token_signing_alg_values_supported: ['RS256'],
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
        },
        200,
      );
    }
    if (req.method === 'GET' && path === '/jwks') return sendJson(res, jwks, 200);
    sendJson(res, { error: 'not_found' }, 404);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.freeze({
    issuer,
    issuerConfig: (): IssuerConfig =>
      Object.freeze({
        issuer,
        audience: CALLER_AUDIENCE,
        jwksUri: null,
        algorithms: Object.freeze(['RS256', 'ES256']),
      }),
    sign: (sub: string, expiresInSeconds: number): Promise<string> => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: issuer, aud: CALLER_AUDIENCE, iat: now, exp: now + expiresInSeconds, sub })
        .setProtectedHeader({ typ: 'JWT', kid, alg: 'RS256' })
        .sign(privateKey);
    },
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}
