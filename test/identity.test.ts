import { generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, issuerNameOf, type IssuerConfig } from '../src/config/schema.js';
import { GatewayError } from '../src/errors.js';
import { callerFromClaims } from '../src/identity/caller.js';
import { JWKS_REFRESH_MS, JwtVerifier, MAX_TOKEN_BYTES, type JwtVerifierOptions } from '../src/identity/jwt.js';
import { startJwtIssuer, type JwtIssuer, type JwtIssuerOptions } from './support/jwtIssuer.js';

const TOLERANCE_SECONDS = 30;

function verifierFor(issuers: readonly IssuerConfig[], overrides: Partial<JwtVerifierOptions> = {}): JwtVerifier {
  return new JwtVerifier({
    issuers,
    clockToleranceSeconds: TOLERANCE_SECONDS,
    roleClaim: 'roles',
    timeoutMs: 2_000,
    allowInsecureHttp: true,
    ...overrides,
  });
}

/** Awaits a rejection and returns it as a GatewayError (failing the test otherwise). */
async function rejection(p: Promise<unknown>): Promise<GatewayError> {
  const outcome = await p.then(
    (v) => ({ ok: true as const, v }),
    (e: unknown) => ({ ok: false as const, e }),
  );
  if (outcome.ok) throw new Error(`expected a rejection, got ${JSON.stringify(outcome.v)}`);
  expect(outcome.e).toBeInstanceOf(GatewayError);
  return outcome.e as GatewayError;
}

/** Runs `run` against a fresh local issuer and always closes it. */
async function withIssuer(options: JwtIssuerOptions, run: (idp: JwtIssuer) => Promise<void>): Promise<void> {
  const idp = await startJwtIssuer(options);
  try {
    await run(idp);
  } finally {
    await idp.close();
  }
}

async function expectUnauthenticated(p: Promise<unknown>, message?: string): Promise<GatewayError> {
  const e = await rejection(p);
  expect(e.code).toBe('UNAUTHENTICATED');
  if (message !== undefined) expect(e.message).toBe(message);
  return e;
}

describe('JwtVerifier with one trusted issuer (OIDC discovery)', () => {
  let idp: JwtIssuer;
  let verifier: JwtVerifier;

  beforeAll(async () => {
    idp = await startJwtIssuer();
    verifier = verifierFor([idp.issuerConfig()]);
  });
  afterAll(() => idp.close());

  it('maps every claim of a valid token onto a frozen Caller', async () => {
    const token = await idp.sign({
      sub: 'alice',
      oid: 'alice-oid',
      tid: 'tenant-1',
      groups: ['g-readers', 'g-writers'],
      azp: 'frontend-app',
      roles: ['credential-admin', 'viewer'],
      name: 'Alice',
    });
    const caller = await verifier.verifyBearer(`Bearer ${token}`);
    expect(caller).toEqual({
      issuer: idp.issuer,
      issuerName: issuerNameOf({ issuer: idp.issuer }),
      sub: 'alice',
      oid: 'alice-oid',
      tenantId: 'tenant-1',
      groups: ['g-readers', 'g-writers'],
      appId: 'frontend-app',
      roles: ['credential-admin', 'viewer'],
      claims: expect.objectContaining({ sub: 'alice', name: 'Alice', aud: idp.audience, iss: idp.issuer }),
    });
    expect(Object.isFrozen(caller)).toBe(true);
    expect(Object.isFrozen(caller!.groups)).toBe(true);
    expect(Object.isFrozen(caller!.roles)).toBe(true);
    expect(Object.isFrozen(caller!.claims)).toBe(true);
    expect(Object.isFrozen(caller!.claims['groups'])).toBe(true);
  });

  it('leaves optional fields empty when their claims are absent', async () => {
    const caller = await verifier.verifyToken(await idp.sign({ sub: 'bob' }));
    expect(caller).toMatchObject({ sub: 'bob', oid: null, tenantId: null, groups: [], appId: null, roles: [] });
  });

  it('reads a role claim holding a single string', async () => {
    const caller = await verifier.verifyToken(await idp.sign({ sub: 'alice', roles: 'credential-admin' }));
    expect(caller.roles).toEqual(['credential-admin']);
  });

  it('takes appId from client_id, then appid, when azp is absent', async () => {
    expect(
      (await verifier.verifyToken(await idp.sign({ sub: 'svc', client_id: 'daemon-1', appid: 'legacy' }))).appId,
    ).toBe('daemon-1');
    expect((await verifier.verifyToken(await idp.sign({ sub: 'svc', appid: 'entra-v1-app' }))).appId).toBe(
      'entra-v1-app',
    );
    expect(
      (await verifier.verifyToken(await idp.sign({ sub: 'svc', azp: 'a', client_id: 'b', appid: 'c' }))).appId,
    ).toBe('a');
  });

  it('reads roles from the configured role claim, even a namespaced one', async () => {
    const custom = verifierFor([idp.issuerConfig()], { roleClaim: 'https://example.com/roles' });
    const caller = await custom.verifyToken(
      await idp.sign({ sub: 'alice', roles: ['ignored'], 'https://example.com/roles': ['ops'] }),
    );
    expect(caller.roles).toEqual(['ops']);
  });

  it('accepts an ES256 token when ES256 is allowed', async () => {
    const caller = await verifier.verifyToken(await idp.sign({ sub: 'alice' }, { alg: 'ES256' }));
    expect(caller.sub).toBe('alice');
  });

  it('accepts an audience list that contains the configured audience', async () => {
    const caller = await verifier.verifyToken(
      await idp.sign({ sub: 'alice' }, { audience: ['other-api', idp.audience] }),
    );
    expect(caller.sub).toBe('alice');
  });

  it('accepts the scheme in any letter case', async () => {
    const caller = await verifier.verifyBearer(`bearer ${await idp.sign({ sub: 'alice' })}`);
    expect(caller?.sub).toBe('alice');
  });

  it('treats a missing or empty Authorization header as an anonymous caller', async () => {
    expect(await verifier.verifyBearer(undefined)).toBeNull();
    expect(await verifier.verifyBearer('')).toBeNull();
  });

  it('accepts a large token just under the size limit', async () => {
    const token = await idp.sign({ sub: 'alice', pad: 'x'.repeat(5_500) });
    expect(token.length).toBeGreaterThan(7 * 1024);
    expect(token.length).toBeLessThanOrEqual(MAX_TOKEN_BYTES);
    expect((await verifier.verifyToken(token)).sub).toBe('alice');
  });

  describe('rejects with UNAUTHENTICATED', () => {
    it('alg none', async () => {
      const token = await idp.sign({ sub: 'alice' }, { alg: 'none' });
      await expectUnauthenticated(verifier.verifyBearer(`Bearer ${token}`), 'token algorithm is not allowed');
    });

    it('HS256 signed with the RSA public key as the secret (PEM and JWK forms)', async () => {
      const pem = await idp.sign({ sub: 'alice' }, { alg: 'HS256', key: new TextEncoder().encode(idp.publicKeyPem) });
      await expectUnauthenticated(verifier.verifyBearer(`Bearer ${pem}`), 'token algorithm is not allowed');
      const jwk = await idp.sign(
        { sub: 'alice' },
        { alg: 'HS256', key: new TextEncoder().encode(JSON.stringify(idp.publicJwk)) },
      );
      await expectUnauthenticated(verifier.verifyBearer(`Bearer ${jwk}`), 'token algorithm is not allowed');
    });

    it('an unknown kid', async () => {
      const token = await idp.sign({ sub: 'alice' }, { kid: 'no-such-key' });
      await expectUnauthenticated(verifier.verifyBearer(`Bearer ${token}`), 'token signing key is not known');
    });

    it('a token signed by another key under the real kid', async () => {
      const foreign = await generateKeyPair('RS256');
      const token = await idp.sign({ sub: 'alice' }, { key: foreign.privateKey, kid: idp.rsaKid });
      await expectUnauthenticated(verifier.verifyBearer(`Bearer ${token}`), 'token signature is invalid');
    });

    it('a token whose payload was altered after signing', async () => {
      const [h, , s] = (await idp.sign({ sub: 'bob' })).split('.');
      const forged = Buffer.from(
        JSON.stringify({ iss: idp.issuer, aud: idp.audience, sub: 'alice', exp: 4_000_000_000 }),
      ).toString('base64url');
      await expectUnauthenticated(verifier.verifyToken(`${h}.${forged}.${s}`), 'token signature is invalid');
    });

    it('an issuer that is not configured, or no issuer at all', async () => {
      await withIssuer({ ecKey: false }, async (other) => {
        await expectUnauthenticated(
          verifier.verifyToken(await other.sign({ sub: 'alice' })),
          'token issuer is not trusted',
        );
        expect(other.discoveryFetches + other.jwksFetches).toBe(0);
      });
      await expectUnauthenticated(
        verifier.verifyToken(await idp.sign({ sub: 'alice' }, { issuer: null })),
        'token issuer is not trusted',
      );
      await expectUnauthenticated(
        verifier.verifyToken(await idp.sign({ sub: 'alice', iss: 42 } as never)),
        'token issuer is not trusted',
      );
      await expectUnauthenticated(
        verifier.verifyToken(await idp.sign({ sub: 'alice' }, { issuer: `${idp.issuer}/` })),
        'token issuer is not trusted',
      );
    });

    it('a wrong or missing audience', async () => {
      await expectUnauthenticated(
        verifier.verifyToken(await idp.sign({ sub: 'alice' }, { audience: 'api://another' })),
        'token aud claim is invalid',
      );
      await expectUnauthenticated(
        verifier.verifyToken(await idp.sign({ sub: 'alice' }, { audience: null })),
        'token aud claim is missing',
      );
    });

    it('a token expired beyond the clock tolerance', async () => {
      const token = await idp.sign({ sub: 'alice' }, { expiresIn: -(TOLERANCE_SECONDS + 30) });
      await expectUnauthenticated(verifier.verifyBearer(`Bearer ${token}`), 'token has expired');
    });

    it('a token not valid until beyond the clock tolerance', async () => {
      const token = await idp.sign({ sub: 'alice' }, { notBefore: TOLERANCE_SECONDS + 30, expiresIn: 600 });
      await expectUnauthenticated(verifier.verifyBearer(`Bearer ${token}`), 'token is not valid yet');
    });

    it('a token without exp', async () => {
      await expectUnauthenticated(
        verifier.verifyToken(await idp.sign({ sub: 'alice' }, { expiresIn: null })),
        'token exp claim is missing',
      );
    });

    it('a missing, empty or non-string sub', async () => {
      await expectUnauthenticated(verifier.verifyToken(await idp.sign({})), 'token sub claim is missing');
      await expectUnauthenticated(verifier.verifyToken(await idp.sign({ sub: '' })), 'token sub claim is invalid');
      await expectUnauthenticated(
        verifier.verifyToken(await idp.sign({ sub: 42 } as never)),
        'token sub claim is invalid',
      );
    });

    it('an ES256 token when the issuer allows RS256 only', async () => {
      const rsaOnly = verifierFor([idp.issuerConfig({ algorithms: ['RS256'] })]);
      await expectUnauthenticated(
        rsaOnly.verifyToken(await idp.sign({ sub: 'alice' }, { alg: 'ES256' })),
        'token algorithm is not allowed',
      );
    });

    it('a token larger than 8 KiB, before fetching any key', async () => {
      await withIssuer({ ecKey: false }, async (big) => {
        const bigVerifier = verifierFor([big.issuerConfig()]);
        const token = await big.sign({ sub: 'alice', pad: 'x'.repeat(MAX_TOKEN_BYTES) });
        expect(token.length).toBeGreaterThan(MAX_TOKEN_BYTES);
        await expectUnauthenticated(bigVerifier.verifyBearer(`Bearer ${token}`), 'token is too large');
        expect(big.discoveryFetches + big.jwksFetches).toBe(0);
      });
    });

    it.each([
      ['a single word', 'garbage'],
      ['three empty parts', '..'],
      ['three junk parts', 'a.b.c'],
      ['two parts', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9'],
      [
        'a header that is not JSON',
        `${Buffer.from('nope').toString('base64url')}.${Buffer.from('{}').toString('base64url')}.sig`,
      ],
      ['a payload that is a JSON array', `eyJhbGciOiJSUzI1NiJ9.${Buffer.from('[1]').toString('base64url')}.sig`],
      ['five parts (a JWE shape)', 'a.b.c.d.e'],
    ])('a garbage token: %s', async (_, token) => {
      const e = await expectUnauthenticated(verifier.verifyBearer(`Bearer ${token}`));
      expect(e.message).toMatch(/^token /);
    });

    it.each([
      ['Basic credentials', 'Basic YWxpY2U6c2VjcmV0'],
      ['the scheme alone', 'Bearer'],
      ['the scheme and a space', 'Bearer '],
      ['two tokens', 'Bearer abc def'],
      ['no scheme', 'eyJhbGciOiJSUzI1NiJ9.e30.sig'],
      ['a token with forbidden characters', 'Bearer abc,def'],
    ])('an Authorization header with %s', async (_, header) => {
      await expectUnauthenticated(verifier.verifyBearer(header), 'authorization header must be "Bearer <token>"');
    });

    it('never puts the token into the public message', async () => {
      const token = await idp.sign({ sub: 'alice' }, { audience: 'api://another' });
      const e = await expectUnauthenticated(verifier.verifyBearer(`Bearer ${token}`));
      expect(e.message).not.toContain(token);
      expect(e.message).not.toContain(token.split('.')[2]);
      expect(e.cause).toBeDefined();
    });
  });
});

describe('JwtVerifier clock tolerance', () => {
  let idp: JwtIssuer;
  beforeAll(async () => {
    idp = await startJwtIssuer({ ecKey: false });
  });
  afterAll(() => idp.close());

  it('accepts a token expired 10 s ago with a 30 s tolerance', async () => {
    const caller = await verifierFor([idp.issuerConfig()]).verifyToken(
      await idp.sign({ sub: 'alice' }, { expiresIn: -10 }),
    );
    expect(caller.sub).toBe('alice');
  });

  it('accepts a token valid from 10 s in the future with a 30 s tolerance', async () => {
    const caller = await verifierFor([idp.issuerConfig()]).verifyToken(
      await idp.sign({ sub: 'alice' }, { notBefore: 10 }),
    );
    expect(caller.sub).toBe('alice');
  });

  it('rejects the same token expired 10 s ago when there is no tolerance', async () => {
    const strict = verifierFor([idp.issuerConfig()], { clockToleranceSeconds: 0 });
    await expectUnauthenticated(
      strict.verifyToken(await idp.sign({ sub: 'alice' }, { expiresIn: -10 })),
      'token has expired',
    );
  });
});

describe('JwtVerifier key retrieval', () => {
  it('fetches discovery and the JWKS once across many verifications', async () => {
    await withIssuer({}, async (idp) => {
      const verifier = verifierFor([idp.issuerConfig()]);
      const tokens = await Promise.all(
        Array.from({ length: 20 }, (_, i) => idp.sign({ sub: `user-${i}` }, { alg: i % 2 ? 'ES256' : 'RS256' })),
      );
      const callers = await Promise.all(tokens.map((t) => verifier.verifyBearer(`Bearer ${t}`)));
      expect(callers.map((c) => c?.sub)).toEqual(tokens.map((_, i) => `user-${i}`));
      for (const t of tokens.slice(0, 5)) await verifier.verifyToken(t);
      // Unknown kids inside the cooldown window must not trigger refetches either.
      for (let i = 0; i < 5; i++)
        await expectUnauthenticated(verifier.verifyToken(await idp.sign({ sub: 'x' }, { kid: `rotated-${i}` })));
      expect(idp.discoveryFetches).toBe(1);
      expect(idp.jwksFetches).toBe(1);
    });
  });

  it('stops accepting a cached token once its signing key has left the JWKS for longer than the refresh interval', async () => {
    await withIssuer({ ecKey: false }, async (idp) => {
      const verifier = verifierFor([idp.issuerConfig()]);
      const oldKeyToken = await idp.sign({ sub: 'alice' }, { expiresIn: 3600 });
      expect((await verifier.verifyToken(oldKeyToken)).sub).toBe('alice');
      await idp.rotateRsaKey();
      // Only Date is faked: jose ages its JWKS by Date, the HTTP servers keep their real timers.
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
      try {
        vi.setSystemTime(Date.now() + JWKS_REFRESH_MS + 1_000);
        await expectUnauthenticated(verifier.verifyToken(oldKeyToken), 'token signing key is not known');
        expect(idp.jwksFetches).toBe(2);
        const newKeyToken = await idp.sign({ sub: 'alice' }, { expiresIn: 3600 });
        expect((await verifier.verifyToken(newKeyToken)).sub).toBe('alice');
      } finally {
        vi.useRealTimers();
      }
    });
  });

  it.each([
    ['uses the configured jwksUri without discovery', true, 0],
    ['finds the JWKS through discovery when jwksUri is absent', false, 1],
  ])('%s', async (_, configureJwksUri, expectedDiscoveryFetches) => {
    await withIssuer({ ecKey: false }, async (idp) => {
      const verifier = verifierFor([idp.issuerConfig({ jwksUri: configureJwksUri ? idp.jwksUri : null })]);
      expect((await verifier.verifyToken(await idp.sign({ sub: 'alice' }))).sub).toBe('alice');
      expect(idp.discoveryFetches).toBe(expectedDiscoveryFetches);
      expect(idp.jwksFetches).toBe(1);
    });
  });

  it('retries a failed discovery on a later call, then keeps the result', async () => {
    await withIssuer({ ecKey: false, failDiscoveryTimes: 1 }, async (idp) => {
      const verifier = verifierFor([idp.issuerConfig()]);
      const token = await idp.sign({ sub: 'alice' });
      await expectUnauthenticated(verifier.verifyToken(token), 'token issuer keys are unavailable');
      expect((await verifier.verifyToken(token)).sub).toBe('alice');
      expect((await verifier.verifyToken(token)).sub).toBe('alice');
      expect(idp.discoveryFetches).toBe(2);
      expect(idp.jwksFetches).toBe(1);
    });
  });

  it('refuses a discovery document that names another issuer', async () => {
    await withIssuer({ ecKey: false, discoveryIssuer: 'https://evil.example' }, async (idp) => {
      const verifier = verifierFor([idp.issuerConfig()]);
      await expectUnauthenticated(
        verifier.verifyToken(await idp.sign({ sub: 'alice' })),
        'token issuer keys are unavailable',
      );
      expect(idp.jwksFetches).toBe(0);
    });
  });

  it('fails in bounded time when the JWKS endpoint hangs', async () => {
    await withIssuer({ ecKey: false, hangJwks: true }, async (idp) => {
      const verifier = verifierFor([idp.issuerConfig({ jwksUri: idp.jwksUri })], { timeoutMs: 300 });
      const started = performance.now();
      await expectUnauthenticated(
        verifier.verifyToken(await idp.sign({ sub: 'alice' })),
        'token issuer keys are unavailable',
      );
      const elapsedMs = performance.now() - started;
      expect(elapsedMs).toBeGreaterThanOrEqual(250);
      expect(elapsedMs).toBeLessThan(2_000);
      expect(idp.jwksFetches).toBe(1);
    });
  });

  it('fails in bounded time when discovery hangs', async () => {
    await withIssuer({ ecKey: false, hangDiscovery: true }, async (idp) => {
      const verifier = verifierFor([idp.issuerConfig()], { timeoutMs: 300 });
      const started = performance.now();
      await expectUnauthenticated(
        verifier.verifyToken(await idp.sign({ sub: 'alice' })),
        'token issuer keys are unavailable',
      );
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(idp.discoveryFetches).toBe(1);
      expect(idp.jwksFetches).toBe(0);
    });
  });

  it('answers UNAUTHENTICATED when the issuer is unreachable', async () => {
    const idp = await startJwtIssuer({ ecKey: false });
    const verifier = verifierFor([idp.issuerConfig()]);
    const token = await idp.sign({ sub: 'alice' });
    await idp.close();
    await expectUnauthenticated(verifier.verifyToken(token), 'token issuer keys are unavailable');
  });
});

describe('JwtVerifier with two trusted issuers', () => {
  let a: JwtIssuer;
  let b: JwtIssuer;
  let verifier: JwtVerifier;

  beforeAll(async () => {
    [a, b] = await Promise.all([
      startJwtIssuer({ ecKey: false }),
      startJwtIssuer({ ecKey: false, audience: 'api://b' }),
    ]);
    verifier = verifierFor([a.issuerConfig(), b.issuerConfig({ jwksUri: b.jwksUri })]);
  });
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  it('verifies each token against its own issuer', async () => {
    expect(await verifier.verifyToken(await a.sign({ sub: 'alice' }))).toMatchObject({
      issuer: a.issuer,
      sub: 'alice',
    });
    expect(await verifier.verifyToken(await b.sign({ sub: 'bob' }))).toMatchObject({ issuer: b.issuer, sub: 'bob' });
  });

  it("rejects a token claiming B's issuer but signed with A's key", async () => {
    await expectUnauthenticated(
      verifier.verifyToken(await a.sign({ sub: 'alice' }, { issuer: b.issuer, audience: 'api://b' })),
      'token signing key is not known',
    );
    await expectUnauthenticated(
      verifier.verifyToken(await a.sign({ sub: 'alice' }, { issuer: b.issuer, audience: 'api://b', kid: b.rsaKid })),
      'token signature is invalid',
    );
  });

  it("rejects A's audience on a token from B", async () => {
    await expectUnauthenticated(
      verifier.verifyToken(await b.sign({ sub: 'bob' }, { audience: a.audience })),
      'token aud claim is invalid',
    );
  });
});

describe('JwtVerifier misuse', () => {
  const base: IssuerConfig = {
    issuer: 'https://login.example.com',
    audience: 'api://x',
    jwksUri: null,
    algorithms: ['RS256'],
  };

  it.each([['none'], ['HS256'], ['hs512']])('refuses the %s algorithm in an issuer configuration', (alg) => {
    expect(() => verifierFor([{ ...base, algorithms: ['RS256', alg] }])).toThrow(ConfigError);
  });

  it('refuses an empty algorithm list', () => {
    expect(() => verifierFor([{ ...base, algorithms: [] }])).toThrow(ConfigError);
  });

  it('refuses http issuer and JWKS URLs unless insecure http is allowed', () => {
    const httpIssuer = { ...base, issuer: 'http://127.0.0.1:1' };
    expect(() => verifierFor([httpIssuer], { allowInsecureHttp: false })).toThrow(
      /identity\.issuers\[0\]\.issuer must be an https URL/,
    );
    expect(() => verifierFor([{ ...base, jwksUri: 'http://127.0.0.1:1/jwks' }], { allowInsecureHttp: false })).toThrow(
      /jwksUri must be an https URL/,
    );
    expect(() => verifierFor([httpIssuer], { allowInsecureHttp: true })).not.toThrow();
    expect(() => verifierFor([base], { allowInsecureHttp: false })).not.toThrow();
  });

  it('refuses a jwksUri that is not a URL with a ConfigError', () => {
    expect(() => verifierFor([{ ...base, jwksUri: 'not a url' }])).toThrow(
      /identity\.issuers\[0\]\.jwksUri must be an https URL/,
    );
  });

  it('refuses an issuer that is not a URL when there is no jwksUri to use', () => {
    expect(() => verifierFor([{ ...base, issuer: 'api://not-discoverable' }])).toThrow(ConfigError);
    expect(() =>
      verifierFor([{ ...base, issuer: 'api://not-discoverable', jwksUri: 'https://keys.example.com/jwks' }]),
    ).not.toThrow();
  });

  it('refuses the same issuer listed twice', () => {
    expect(() => verifierFor([base, { ...base, audience: 'api://y' }])).toThrow(/listed twice/);
  });

  it('refuses a negative clock tolerance, a bad timeout and an empty role claim', () => {
    expect(() => verifierFor([base], { clockToleranceSeconds: -1 })).toThrow(ConfigError);
    expect(() => verifierFor([base], { timeoutMs: 0 })).toThrow(ConfigError);
    expect(() => verifierFor([base], { roleClaim: '' })).toThrow(ConfigError);
  });

  it('treats every token as untrusted when no issuer is configured', async () => {
    await withIssuer({ ecKey: false }, async (idp) => {
      await expectUnauthenticated(
        verifierFor([]).verifyBearer(`Bearer ${await idp.sign({ sub: 'alice' })}`),
        'token issuer is not trusted',
      );
    });
  });

  it('rejects an empty token passed to verifyToken', async () => {
    await expectUnauthenticated(verifierFor([base]).verifyToken(''), 'token is missing');
  });
});

describe('callerFromClaims', () => {
  it('drops non-string entries from groups and roles and ignores claims of the wrong type', () => {
    const caller = callerFromClaims(
      { iss: 'i', sub: 's', groups: ['g', 7, ''], roles: 12, oid: 5, tid: '', azp: '', client_id: 'c' },
      'roles',
    );
    expect(caller).toMatchObject({ groups: ['g'], roles: [], oid: null, tenantId: null, appId: 'c' });
  });

  it('copies the claims so later changes to the input do not leak in', () => {
    const claims = { iss: 'i', sub: 's', groups: ['g'] };
    const caller = callerFromClaims(claims, 'roles');
    claims.groups.push('h');
    expect(caller.groups).toEqual(['g']);
    expect(caller.claims['groups']).toEqual(['g']);
  });
});
