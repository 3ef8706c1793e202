import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/schema.js';
import { GatewayError } from '../src/errors.js';
import { AdminAuthenticator, generateApiKey, hashApiKey } from '../src/identity/adminAuth.js';
import { JwtVerifier } from '../src/identity/jwt.js';
import { startJwtIssuer, type JwtIssuer } from './support/jwtIssuer.js';

const ADMIN_ROLE = 'credential-admin';
const KEY_A = generateApiKey();
const KEY_B = generateApiKey();

async function rejection(p: Promise<unknown>): Promise<GatewayError> {
  const outcome = await p.then(
    () => ({ ok: true as const }),
    (e: unknown) => ({ ok: false as const, e }),
  );
  if (outcome.ok) throw new Error('expected a rejection');
  expect(outcome.e).toBeInstanceOf(GatewayError);
  return outcome.e as GatewayError;
}

describe('AdminAuthenticator', () => {
  let idp: JwtIssuer;
  let verifier: JwtVerifier;
  let auth: AdminAuthenticator;

  beforeAll(async () => {
    idp = await startJwtIssuer({ ecKey: false });
    verifier = new JwtVerifier({
      issuers: [idp.issuerConfig()],
      clockToleranceSeconds: 30,
      roleClaim: 'roles',
      allowInsecureHttp: true,
    });
    auth = new AdminAuthenticator({ apiKeyHashes: [hashApiKey(KEY_A), hashApiKey(KEY_B)], verifier, role: ADMIN_ROLE });
  });
  afterAll(() => idp.close());

  it('accepts each configured API key', async () => {
    expect(await auth.authenticate({ 'x-api-key': KEY_A })).toEqual({ kind: 'apiKey' });
    expect(await auth.authenticate({ 'x-api-key': KEY_B })).toEqual({ kind: 'apiKey' });
  });

  it('rejects a wrong, truncated or empty API key with UNAUTHENTICATED', async () => {
    for (const key of [generateApiKey(), KEY_A.slice(0, -1), `${KEY_A} `, '']) {
      const e = await rejection(auth.authenticate({ 'x-api-key': key }));
      expect(e.code).toBe('UNAUTHENTICATED');
      expect(e.message).toBe('invalid admin API key');
      expect(e.message).not.toContain(key || '\u0000');
    }
  });

  it('rejects an x-api-key header sent twice', async () => {
    const e = await rejection(auth.authenticate({ 'x-api-key': [KEY_A, KEY_A] }));
    expect(e.code).toBe('UNAUTHENTICATED');
  });

  it('lets a wrong API key fail even next to a valid admin JWT', async () => {
    const token = await idp.sign({ sub: 'alice', roles: [ADMIN_ROLE] });
    const e = await rejection(auth.authenticate({ 'x-api-key': 'cgk_wrong', authorization: `Bearer ${token}` }));
    expect(e.code).toBe('UNAUTHENTICATED');
  });

  it('accepts a JWT whose role claim is the admin role as a string', async () => {
    const token = await idp.sign({ sub: 'alice', roles: ADMIN_ROLE });
    const principal = await auth.authenticate({ authorization: `Bearer ${token}` });
    expect(principal.kind).toBe('jwt');
    expect(principal.kind === 'jwt' && principal.caller.sub).toBe('alice');
    expect(Object.isFrozen(principal)).toBe(true);
  });

  it('accepts a JWT whose role claim is an array containing the admin role', async () => {
    const token = await idp.sign({ sub: 'alice', roles: ['viewer', ADMIN_ROLE] });
    const principal = await auth.authenticate({ authorization: `Bearer ${token}` });
    expect(principal).toMatchObject({ kind: 'jwt', caller: { sub: 'alice', roles: ['viewer', ADMIN_ROLE] } });
  });

  it('answers FORBIDDEN for a valid JWT without the admin role', async () => {
    for (const roles of [undefined, ['viewer'], 'viewer', 'Credential-Admin', `${ADMIN_ROLE} viewer`]) {
      const token = await idp.sign({ sub: 'bob', ...(roles === undefined ? {} : { roles }) });
      const e = await rejection(auth.authenticate({ authorization: `Bearer ${token}` }));
      expect(e.code).toBe('FORBIDDEN');
      expect(e.message).toBe('admin role required');
    }
  });

  it('does not take the admin role from a claim other than the configured one', async () => {
    const token = await idp.sign({ sub: 'bob', groups: [ADMIN_ROLE], role: ADMIN_ROLE, scp: ADMIN_ROLE });
    expect((await rejection(auth.authenticate({ authorization: `Bearer ${token}` }))).code).toBe('FORBIDDEN');
  });

  it('answers UNAUTHENTICATED for an invalid JWT, even one carrying the admin role', async () => {
    const expired = await idp.sign({ sub: 'alice', roles: [ADMIN_ROLE] }, { expiresIn: -3600 });
    expect((await rejection(auth.authenticate({ authorization: `Bearer ${expired}` }))).code).toBe('UNAUTHENTICATED');
    const unsigned = await idp.sign({ sub: 'alice', roles: [ADMIN_ROLE] }, { alg: 'none' });
    expect((await rejection(auth.authenticate({ authorization: `Bearer ${unsigned}` }))).code).toBe('UNAUTHENTICATED');
    expect(
      (await rejection(auth.authenticate({ authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` })))
        .code,
    ).toBe('UNAUTHENTICATED');
  });

  it('answers UNAUTHENTICATED when no credentials are sent', async () => {
    for (const headers of [{}, { authorization: '' }, { authorization: undefined, 'x-api-key': undefined }]) {
      const e = await rejection(auth.authenticate(headers));
      expect(e.code).toBe('UNAUTHENTICATED');
    }
  });

  it('accepts no API key at all when none is configured', async () => {
    const jwtOnly = new AdminAuthenticator({ apiKeyHashes: [], verifier, role: ADMIN_ROLE });
    expect((await rejection(jwtOnly.authenticate({ 'x-api-key': KEY_A }))).code).toBe('UNAUTHENTICATED');
  });

  it('keeps its own copy of the key hashes', async () => {
    const hash = hashApiKey(KEY_A);
    const own = new AdminAuthenticator({ apiKeyHashes: [hash], verifier, role: ADMIN_ROLE });
    hashApiKey(KEY_B).copy(hash);
    expect(await own.authenticate({ 'x-api-key': KEY_A })).toEqual({ kind: 'apiKey' });
    expect((await rejection(own.authenticate({ 'x-api-key': KEY_B }))).code).toBe('UNAUTHENTICATED');
  });
});

describe('AdminAuthenticator misuse', () => {
  const verifier = new JwtVerifier({ issuers: [], clockToleranceSeconds: 30, roleClaim: 'roles' });

  it('refuses plain keys or digests of the wrong length in place of SHA-256 hashes', () => {
    expect(() => new AdminAuthenticator({ apiKeyHashes: [Buffer.from(KEY_A)], verifier, role: ADMIN_ROLE })).toThrow(
      ConfigError,
    );
    expect(() => new AdminAuthenticator({ apiKeyHashes: [Buffer.alloc(16)], verifier, role: ADMIN_ROLE })).toThrow(
      ConfigError,
    );
  });

  it('refuses an empty admin role', () => {
    expect(() => new AdminAuthenticator({ apiKeyHashes: [], verifier, role: '' })).toThrow(ConfigError);
  });
});

describe('API keys', () => {
  it('generates cgk_-prefixed keys of 32 random bytes, never the same twice', () => {
    const keys = new Set(Array.from({ length: 100 }, () => generateApiKey()));
    expect(keys.size).toBe(100);
    for (const key of keys) {
      expect(key).toMatch(/^cgk_[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(key.slice(4), 'base64url')).toHaveLength(32);
    }
  });

  it('hashes a key to its SHA-256 digest', () => {
    expect(hashApiKey('abc').toString('hex')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hashApiKey(KEY_A).equals(hashApiKey(KEY_A))).toBe(true);
    expect(hashApiKey(KEY_A).equals(hashApiKey(KEY_B))).toBe(false);
  });
});
