/**
 * Hostile HTTP against the whole gateway (federation stage: real authorization servers, real
 * subgraphs, a real caller-JWT issuer): JWT attacks on /graphql, /tokens and /admin/graphql,
 * GraphQL document limits on both graphs, the body limit, batching, CSRF, the browser-facing
 * consent endpoints, and open redirects through createLoginLink. Every case ends as a clear 4xx
 * (or a redirect to an allowlisted origin) and stores nothing.
 */
import { request } from 'node:http';
import { getIntrospectionQuery } from 'graphql';
import { generateKeyPair, exportJWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_TOKEN_BYTES } from '../src/identity/jwt.js';
import { MAX_GRAPHQL_BODY_BYTES } from '../src/server/apolloHttp.js';
import {
  MAX_ALIASES_PER_OPERATION,
  MAX_DOCUMENT_BYTES,
  MAX_DOCUMENT_TOKENS,
  MAX_OPERATIONS_PER_DOCUMENT,
  MAX_QUERY_DEPTH,
  MAX_ROOT_FIELDS_PER_OPERATION,
  MAX_VARIABLE_DEPTH,
  MAX_VARIABLE_VALUES,
} from '../src/graphql/limits.js';
import { ADMIN_KEY } from './support/app.js';
import { startStage, type Stage } from './support/federation.js';
import { startJwtIssuer, type JwtIssuer } from './support/jwtIssuer.js';

const APP_ORIGIN = 'https://app.example.com';
const DEV_ORIGIN = 'http://localhost:5173';
const ADMIN_ROLE = { roles: ['credential-admin'] };
const TOKEN_INFO = '{ githubTokenInfo { subject } }';
const LOGIN_LINK = `mutation($p: ID!, $c: ID!, $r: String!) { createLoginLink(providerId: $p, connectionId: $c, postLoginRedirectUrl: $r) { url expiresAt } }`;
const EVERYTHING = `{ credentialProviders(first: 500) { items { id version connections(first: 500) { items { id status version accessPolicies { id } } } } } }`;

interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: any;
}

async function send(url: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(url, { redirect: 'manual', ...init });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: kept as text for the assertion message.
  }
  return { status: res.status, headers: res.headers, body };
}

/** A raw request: no URL normalization, any header, chunked bodies. */
function raw(
  url: string,
  options: { method?: string; path: string; headers?: Record<string, string>; chunks?: readonly string[] },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      { host: u.hostname, port: u.port, path: options.path, method: options.method ?? 'GET', headers: options.headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
    const chunks = options.chunks ?? [];
    let i = 0;
    const write = (): void => {
      while (i < chunks.length) if (!req.write(chunks[i++])) return void req.once('drain', write);
      req.end();
    };
    write();
  });
}

const codeOf = (r: Reply): string | undefined => r.body?.errors?.[0]?.extensions?.code ?? r.body?.error;

describe('hostile HTTP against the gateway', () => {
  let s: Stage;
  let url: string;
  let stranger: JwtIssuer;
  /** The gateway's JSON log lines. */
  const logLines: string[] = [];

  const gql = (path: '/graphql' | '/admin/graphql', body: unknown, headers: Record<string, string> = {}) =>
    send(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const admin = (query: string, variables: Record<string, unknown> = {}) =>
    gql('/admin/graphql', { query, variables }, { 'x-api-key': ADMIN_KEY });

  /** Providers, connections, versions and policies: what "nothing stored" is checked against. */
  async function snapshot(): Promise<unknown> {
    const r = await admin(EVERYTHING);
    expect(r.body.errors).toBeUndefined();
    return r.body.data;
  }

  beforeAll(async () => {
    s = await startStage({ config: { consent: { allowedRedirectOrigins: [APP_ORIGIN, DEV_ORIGIN] } }, logLines });
    url = s.t.url;
    stranger = await startJwtIssuer({ audience: s.idp.audience });
    for (const p of ['github-01', 'graph-01']) {
      const r = await admin(
        `mutation($p: ID!) { createConnection(providerId: $p, input: { id: "victim" }) { status } }`,
        { p },
      );
      expect(r.body.data.createConnection.status).toBe('NOT_CONNECTED');
    }
  }, 90_000);

  afterAll(async () => {
    await stranger?.close();
    await s?.close();
  });

  describe('JWT attacks through HTTP', () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    type Attack = readonly [name: string, authorization: () => Promise<string>];
    let attacks: readonly Attack[];
    let before: unknown;

    beforeAll(async () => {
      const idp = s.idp;
      const foreign = await generateKeyPair('RS256', { extractable: true });
      const foreignJwk = { ...(await exportJWK(foreign.publicKey)), kid: 'attacker', alg: 'RS256' };
      const sign = (claims: JWTPayload = {}, options = {}) =>
        idp.sign({ sub: 'mallory', ...ADMIN_ROLE, ...claims }, options);
      const bearer = async (token: string | Promise<string>) => `Bearer ${await token}`;
      const valid = await sign();
      const [h, p, sig] = valid.split('.') as [string, string, string];
      const otherSig = (await sign({ sub: 'someone-else' })).split('.')[2]!;
      attacks = [
        ['alg none', () => bearer(sign({}, { alg: 'none' }))],
        [
          'alg none with the original signature kept',
          () => bearer(`${b64({ ...JSON.parse(Buffer.from(h, 'base64url').toString()), alg: 'none' })}.${p}.${sig}`),
        ],
        ['alg NONE in capitals', () => bearer(`${b64({ alg: 'NONE', typ: 'JWT' })}.${p}.`)],
        [
          'HS256 signed with the RSA public key (PEM)',
          () => bearer(sign({}, { alg: 'HS256', key: new TextEncoder().encode(idp.publicKeyPem) })),
        ],
        [
          'HS256 signed with the RSA public key (JWK)',
          () => bearer(sign({}, { alg: 'HS256', key: new TextEncoder().encode(JSON.stringify(idp.publicJwk)) })),
        ],
        ['ES256 header over the RSA key id', () => bearer(sign({}, { alg: 'ES256', kid: idp.rsaKid }))],
        ['unknown kid', () => bearer(sign({}, { kid: 'no-such-key' }))],
        ['kid with path traversal and SQL', () => bearer(sign({}, { kid: "../../../../dev/null' OR '1'='1" }))],
        ['foreign key under the real kid', () => bearer(sign({}, { key: foreign.privateKey, kid: idp.rsaKid }))],
        [
          'foreign key embedded as a jwk header',
          () => bearer(sign({}, { key: foreign.privateKey, kid: 'attacker', header: { jwk: foreignJwk } })),
        ],
        [
          'foreign key behind a jku header',
          () =>
            bearer(sign({}, { key: foreign.privateKey, kid: 'attacker', header: { jku: `${stranger.issuer}/jwks` } })),
        ],
        [
          'payload altered after signing',
          () => bearer(`${h}.${b64({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'admin' })}.${sig}`),
        ],
        ['signature of another token', () => bearer(`${h}.${p}.${otherSig}`)],
        ['signature stripped', () => bearer(`${h}.${p}.`)],
        ['untrusted issuer with its own valid key', () => bearer(stranger.sign({ sub: 'mallory', ...ADMIN_ROLE }))],
        ['trusted key, another issuer claimed', () => bearer(sign({}, { issuer: stranger.issuer }))],
        ['issuer with a trailing slash', () => bearer(sign({}, { issuer: `${idp.issuer}/` }))],
        ['no iss', () => bearer(sign({}, { issuer: null }))],
        ['wrong aud', () => bearer(sign({}, { audience: 'api://another' }))],
        ['no aud', () => bearer(sign({}, { audience: null }))],
        ['expired beyond the clock tolerance', () => bearer(sign({}, { expiresIn: -120 }))],
        [
          'not valid before a time beyond the clock tolerance',
          () => bearer(sign({}, { notBefore: 120, expiresIn: 600 })),
        ],
        ['no exp', () => bearer(sign({}, { expiresIn: null }))],
        ['no sub', () => bearer(idp.sign({ ...ADMIN_ROLE }))],
        ['empty sub', () => bearer(sign({ sub: '' }))],
        ['non-string sub', () => bearer(sign({ sub: 42 } as never))],
        [`larger than ${MAX_TOKEN_BYTES} bytes`, () => bearer(sign({ pad: 'x'.repeat(MAX_TOKEN_BYTES) }))],
        ['garbage token', async () => 'Bearer not.a.jwt'],
        ['one segment', async () => 'Bearer abc'],
        ['four segments', async () => `Bearer ${valid}.extra`],
        ['JSON instead of base64url', async () => `Bearer ${JSON.stringify({ alg: 'none' })}`],
        ['empty bearer', async () => 'Bearer '],
        ['two tokens', async () => `Bearer ${valid} ${valid}`],
        ['Basic scheme', async () => `Basic ${Buffer.from('admin:admin').toString('base64')}`],
        ['token without a scheme', async () => valid],
        ['8 KiB of header junk', async () => `Bearer ${'A'.repeat(9000)}`],
      ];
      before = await snapshot();
    });

    it('refuses every attack at /graphql with 401 UNAUTHENTICATED before any subgraph is called', async () => {
      const seenBefore = s.github.seen.length;
      const outcomes: Record<string, string> = {};
      for (const [name, authorization] of attacks) {
        const r = await gql('/graphql', { query: TOKEN_INFO }, { authorization: await authorization() });
        outcomes[name] = `${r.status} ${codeOf(r)} ${r.body.data === undefined ? 'no data' : 'DATA'}`;
      }
      expect(outcomes).toEqual(Object.fromEntries(attacks.map(([name]) => [name, '401 UNAUTHENTICATED no data'])));
      expect(s.github.seen.length).toBe(seenBefore);
    });

    it('refuses every attack at /tokens/{provider}/{connection} with 401 UNAUTHENTICATED', async () => {
      const outcomes: Record<string, string> = {};
      for (const [name, authorization] of attacks) {
        const r = await send(`${url}/tokens/github-01/victim`, { headers: { authorization: await authorization() } });
        outcomes[name] = `${r.status} ${codeOf(r)} ${'access_token' in (r.body ?? {}) ? 'TOKEN' : 'no token'}`;
      }
      expect(outcomes).toEqual(Object.fromEntries(attacks.map(([name]) => [name, '401 UNAUTHENTICATED no token'])));
    });

    it('refuses every attack at /admin/graphql with 401 UNAUTHENTICATED, and the mutation stores nothing', async () => {
      const outcomes: Record<string, string> = {};
      for (const [name, authorization] of attacks) {
        const r = await gql(
          '/admin/graphql',
          {
            query: `mutation { createCredentialProvider(input: { id: "pwned", identityProvider: "github", grantType: AUTHORIZATION_CODE, clientId: "x", clientSecret: "y" }) { id } }`,
          },
          { authorization: await authorization() },
        );
        outcomes[name] = `${r.status} ${codeOf(r)}`;
      }
      expect(outcomes).toEqual(Object.fromEntries(attacks.map(([name]) => [name, '401 UNAUTHENTICATED'])));
    });

    it('answers a valid JWT without the admin role with 403 FORBIDDEN, whatever the role claim looks like', async () => {
      const variants: Record<string, JWTPayload> = {
        'no roles claim': {},
        'another role': { roles: ['viewer'] },
        'the role in other letter case': { roles: ['Credential-Admin'] },
        'a longer role name': { roles: 'credential-admin-x' },
        'the role under another claim': { role: 'credential-admin' },
        'the role nested in a list': { roles: [['credential-admin']] },
        'the role as an object key': { roles: { 'credential-admin': true } },
        'the role with spaces': { roles: [' credential-admin '] },
      };
      const outcomes: Record<string, string> = {};
      for (const [name, claims] of Object.entries(variants)) {
        const token = await s.idp.sign({ sub: 'mallory', ...claims });
        const r = await gql(
          '/admin/graphql',
          { query: `mutation { deleteCredentialProvider(id: "github-01") }` },
          { authorization: `Bearer ${token}` },
        );
        outcomes[name] = `${r.status} ${codeOf(r)}`;
      }
      expect(outcomes).toEqual(Object.fromEntries(Object.keys(variants).map((name) => [name, '403 FORBIDDEN'])));
    });

    it('stored nothing: no provider, connection, policy or version changed', async () => {
      expect(await snapshot()).toEqual(before);
    });

    it('control: the same tokens without the attack are accepted on all three endpoints (a token without kid is no attack)', async () => {
      const adminJwt = await s.idp.sign({ sub: 'ops', ...ADMIN_ROLE }, { kid: null });
      const r1 = await gql(
        '/admin/graphql',
        { query: '{ credentialProviders { items { id } } }' },
        { authorization: `Bearer ${adminJwt}` },
      );
      expect(r1.status).toBe(200);
      expect(r1.body.data.credentialProviders.items.map((p: any) => p.id)).toEqual(['github-01', 'graph-01']);
      const r2 = await send(`${url}/tokens/github-01/victim`, { headers: { authorization: `Bearer ${adminJwt}` } });
      expect(r2.status).toBe(403);
      expect(r2.body.error).toBe('ACCESS_DENIED');
      const r3 = await gql('/graphql', { query: TOKEN_INFO }, { authorization: `Bearer ${adminJwt}` });
      expect(r3.status).toBe(200);
      expect(r3.body.errors[0].extensions.code).toBe('CONNECTION_NOT_CONNECTED');
    });
  });

  describe('ids at the edge: checked against the id rule before any lookup, counter or log line', () => {
    const LONG_ID = 'x'.repeat(15_000);

    it.each([
      ['connection', `/tokens/github-01/${LONG_ID}`, 'connectionId'],
      ['provider', `/tokens/${LONG_ID}/victim`, 'providerId'],
    ])(
      'refuses a 15 KB %s id at /tokens with 400 BAD_USER_INPUT, with no audit or other log line',
      async (_what, path, field) => {
        const jwt = await s.jwtFor('mallory');
        const linesBefore = logLines.length;
        const r = await send(`${url}${path}`, { headers: { authorization: `Bearer ${jwt}` } });
        expect(r.status).toBe(400);
        expect(r.body).toEqual({
          error: 'BAD_USER_INPUT',
          field,
          message: `${field} must be 1-256 characters without * # & + : < > ? / or whitespace`,
        });
        // Not even the request log: the id reached nothing that writes one.
        expect(logLines.slice(linesBefore).filter((l) => l.includes('xxxxxxxx') || l.includes('"audit":true'))).toEqual(
          [],
        );
      },
    );

    it('a well-formed id still reaches the access check (and its audit line): the control', async () => {
      const jwt = await s.jwtFor('mallory');
      const linesBefore = logLines.length;
      const r = await send(`${url}/tokens/github-01/victim`, { headers: { authorization: `Bearer ${jwt}` } });
      expect(r.status).toBe(403);
      expect(
        logLines.slice(linesBefore).some((l) => l.includes('"audit":true') && l.includes('"connection":"victim"')),
      ).toBe(true);
    });

    it('refuses a caller whose sub holds an unpaired surrogate with ACCESS_DENIED naming the rule, and stores nothing', async () => {
      const before = await snapshot();
      const seenBefore = s.github.seen.length;
      const r = await gql(
        '/graphql',
        { query: TOKEN_INFO },
        { authorization: `Bearer ${await s.jwtFor('ali\ud800ce')}` },
      );
      expect(r.status).toBe(200);
      expect(r.body.data).toEqual({ githubTokenInfo: null });
      expect(r.body.errors[0].extensions.code).toBe('ACCESS_DENIED');
      expect(r.body.errors[0].message).toBe(
        "the connection id rendered from the caller's claims must be well-formed Unicode (it holds an unpaired surrogate)",
      );
      expect(r.body.errors[0].extensions.loginUrl).toBeUndefined();
      expect(s.github.seen.length).toBe(seenBefore);
      expect(await snapshot()).toEqual(before);
    });
  });

  describe('GraphQL limits on both graphs', () => {
    /** A valid query `levels` field levels deep on each graph (introspection's ofType, GitHub's owner/repositories). */
    const deepQuery = {
      '/admin/graphql': (levels: number) =>
        `{ __schema { queryType { ${'ofType { '.repeat(levels - 3)}name${' }'.repeat(levels - 3)} } } }`,
      '/graphql': (levels: number) => {
        // viewer > repositories > owner > repositories > ... > name
        const inner = Array.from({ length: levels - 2 }, (_, i) => (i % 2 === 0 ? 'repositories {' : 'owner {')).join(
          ' ',
        );
        return `{ viewer { ${inner} id ${'}'.repeat(levels - 2)} } }`;
      },
    } as const;
    const graphs = ['/admin/graphql', '/graphql'] as const;
    /** With the admin key on the management graph; `extra` goes into the body (operationName). */
    const post = (graph: (typeof graphs)[number], query: string, extra: Record<string, unknown> = {}) =>
      gql(graph, { query, ...extra }, graph === '/admin/graphql' ? { 'x-api-key': ADMIN_KEY } : {});

    function expectLimit(r: Reply, message: RegExp): void {
      expect(r.status).toBe(400);
      expect(r.body.data).toBeUndefined();
      expect(r.body.errors.map((e: any) => e.extensions.code)).toContain('GRAPHQL_VALIDATION_FAILED');
      expect(
        r.body.errors.some((e: any) => message.test(e.message)),
        JSON.stringify(r.body.errors),
      ).toBe(true);
    }

    it.each(graphs)('%s: refuses more than MAX_QUERY_DEPTH field levels, accepts exactly that many', async (graph) => {
      const ok = await post(graph, deepQuery[graph](MAX_QUERY_DEPTH));
      expect(ok.status).toBe(200);
      expect(ok.body.errors?.filter((e: any) => e.extensions.code === 'GRAPHQL_VALIDATION_FAILED') ?? []).toEqual([]);
      expectLimit(
        await post(graph, deepQuery[graph](MAX_QUERY_DEPTH + 1)),
        new RegExp(`more than ${MAX_QUERY_DEPTH} field levels deep \\(MAX_QUERY_DEPTH\\)`),
      );
    });

    it.each(graphs)('%s: counts depth through fragments', async (graph) => {
      const q = `query Deep { __schema { ...T } } fragment T on __Schema { queryType { ${'ofType { '.repeat(MAX_QUERY_DEPTH)}name${' }'.repeat(MAX_QUERY_DEPTH)} } }`;
      expectLimit(await post(graph, q), /operation Deep is more than 20 field levels deep/);
    });

    it.each(graphs)('%s: refuses more than MAX_ALIASES_PER_OPERATION aliases, fragments expanded', async (graph) => {
      const aliases = (n: number) => Array.from({ length: n }, (_, i) => `a${i}: name`).join(' ');
      expect((await post(graph, `{ __schema { queryType { ${aliases(MAX_ALIASES_PER_OPERATION)} } } }`)).status).toBe(
        200,
      );
      expectLimit(
        await post(graph, `{ __schema { queryType { ${aliases(MAX_ALIASES_PER_OPERATION + 1)} } } }`),
        /more than 30 aliases/,
      );
      const half = Math.ceil((MAX_ALIASES_PER_OPERATION + 1) / 2);
      expectLimit(
        await post(
          graph,
          `{ __schema { queryType { ...A } mutationType { ...A } } } fragment A on __Type { ${aliases(half)} }`,
        ),
        /more than 30 aliases, fragments expanded/,
      );
    });

    it.each(graphs)(
      '%s: refuses more than MAX_ROOT_FIELDS_PER_OPERATION root fields, through fragments too',
      async (graph) => {
        const roots = (n: number) => '__typename '.repeat(n);
        expect((await post(graph, `{ ${roots(MAX_ROOT_FIELDS_PER_OPERATION)} }`)).status).toBe(200);
        expectLimit(
          await post(graph, `{ ${roots(MAX_ROOT_FIELDS_PER_OPERATION + 1)} }`),
          /more than 20 root fields \(MAX_ROOT_FIELDS_PER_OPERATION\)/,
        );
        expectLimit(
          await post(graph, `{ ...R ...R } fragment R on Query { ${roots(11)} }`),
          /more than 20 root fields/,
        );
      },
    );

    it.each(graphs)('%s: refuses more than MAX_OPERATIONS_PER_DOCUMENT operations in one document', async (graph) => {
      const ops = (n: number) => Array.from({ length: n }, (_, i) => `query Q${i} { __typename }`).join('\n');
      expect((await post(graph, ops(MAX_OPERATIONS_PER_DOCUMENT), { operationName: 'Q0' })).status).toBe(200);
      expectLimit(
        await post(graph, ops(MAX_OPERATIONS_PER_DOCUMENT + 1), { operationName: 'Q0' }),
        /more than 20 operations \(MAX_OPERATIONS_PER_DOCUMENT\)/,
      );
    });

    it.each(graphs)('%s: refuses a document larger than MAX_DOCUMENT_BYTES (padding in a comment)', async (graph) => {
      expectLimit(
        await post(graph, `{ __typename }\n#${'x'.repeat(MAX_DOCUMENT_BYTES)}`),
        /larger than 65536 bytes \(MAX_DOCUMENT_BYTES\)/,
      );
      // Bytes, not characters: 30,000 three-byte characters are 90,000 bytes.
      expectLimit(await post(graph, `{ __typename }\n#${'€'.repeat(30_000)}`), /MAX_DOCUMENT_BYTES/);
    });

    it.each(graphs)('%s: refuses more than MAX_DOCUMENT_TOKENS tokens while parsing', async (graph) => {
      const r = await post(graph, `{ ${'__typename '.repeat(MAX_DOCUMENT_TOKENS)} }`);
      expect(r.status).toBe(400);
      expect(r.body.errors[0].extensions.code).toBe('GRAPHQL_PARSE_FAILED');
      expect(r.body.errors[0].message).toMatch(/more th.. 10000 tokens/);
    });

    it.each(graphs)(
      '%s: answers 400, not 500, to a chain of 5,000 fragments (graphql-js overflowed its stack validating it)',
      async (graph) => {
        const chain = Array.from({ length: 5000 }, (_, i) => `fragment F${i} on Query { ...F${i + 1} }`).join(' ');
        const r = await post(graph, `query { ...F0 } ${chain} fragment F5000 on Query { __typename }`);
        expect(r.status).toBe(400);
        expect(r.body.errors[0].extensions.code).toBe('GRAPHQL_PARSE_FAILED');
      },
    );

    it.each(graphs)('%s: answers 400, not 500, to selections nested 5,000 deep', async (graph) => {
      const r = await post(graph, `${'{a'.repeat(5000)}${'}'.repeat(5000)}`);
      expect(r.status).toBe(400);
      expect(r.body.errors[0].extensions.code).toBe('GRAPHQL_PARSE_FAILED');
    });

    it.each(graphs)(
      "%s: answers list values nested 4,900 deep (within the token limit) with 400 and a message of its own, not the parser's stack overflow",
      async (graph) => {
        const r = await post(graph, `{ __typename(a: ${'['.repeat(4900)}${']'.repeat(4900)}) }`);
        expect(r.status).toBe(400);
        expect(r.body.errors).toEqual([
          {
            message: 'Syntax Error: the document nests too deeply to be parsed.',
            extensions: { code: 'GRAPHQL_PARSE_FAILED' },
          },
        ]);
      },
    );

    it.each(graphs)(
      '%s: answers any document nested as deep as the token limit allows with 400 and no runtime message',
      async (graph) => {
        // Whether these overflow the parser's stack depends on how its code was compiled: either way, no internal message.
        for (const query of [
          `{ __typename(a: ${'{a: '.repeat(2400)}1${'}'.repeat(2400)}) }`,
          `${'{a'.repeat(3300)}${'}'.repeat(3300)}`,
        ]) {
          const r = await post(graph, query);
          expect(r.status).toBe(400);
          for (const e of r.body.errors) {
            expect(['GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED']).toContain(e.extensions.code);
            expect(e.message).not.toMatch(/call stack|RangeError|Maximum/);
          }
        }
      },
    );

    it.each(graphs)(
      "%s: lets the full introspection query (Sandbox's, every option on) through every limit",
      async (graph) => {
        // The federation query planner has no __Type.isOneOf yet (see the next test).
        const query = getIntrospectionQuery({
          descriptions: true,
          specifiedByUrl: true,
          directiveIsRepeatable: true,
          schemaDescription: true,
          inputValueDeprecation: true,
          oneOf: graph === '/admin/graphql',
        });
        // No credentials: introspection alone needs none, on either graph.
        const r = await gql(graph, { query });
        expect(r.status).toBe(200);
        expect(r.body.errors).toBeUndefined();
        expect(r.body.data.__schema.queryType.name).toBe('Query');
      },
    );

    it('answers 400, not 500, when the federation query planner refuses a document graphql-js accepted (isOneOf)', async () => {
      const r = await gql('/graphql', { query: getIntrospectionQuery({ oneOf: true }) });
      expect(r.status).toBe(400);
      expect(r.body.errors).toEqual([
        { message: 'Cannot query field "isOneOf" on type "__Type".', extensions: { code: 'INVALID_GRAPHQL' } },
      ]);
    });

    it.each(graphs)('%s: applies the limits to GET requests too', async (graph) => {
      const q = encodeURIComponent(`{ ${'__typename '.repeat(MAX_ROOT_FIELDS_PER_OPERATION + 1)} }`);
      const r = await send(`${url}${graph}?query=${q}`, {
        headers: { 'apollo-require-preflight': 'true', 'x-api-key': ADMIN_KEY },
      });
      expectLimit(r, /MAX_ROOT_FIELDS_PER_OPERATION/);
    });

    it('refuses an over-limit document before authentication on /admin/graphql (limits cost nothing to check)', async () => {
      const r = await gql('/admin/graphql', {
        query: `{ ${'__typename '.repeat(MAX_ROOT_FIELDS_PER_OPERATION + 1)} }`,
      });
      expectLimit(r, /MAX_ROOT_FIELDS_PER_OPERATION/);
    });

    it.each(graphs)(`%s: refuses a body over MAX_GRAPHQL_BODY_BYTES with 400, declared or chunked`, async (graph) => {
      const big = JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(MAX_GRAPHQL_BODY_BYTES) } });
      const declared = await send(`${url}${graph}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': ADMIN_KEY },
        body: big,
      });
      expect(declared.status).toBe(400);
      expect(declared.body).toEqual({
        error: 'BAD_USER_INPUT',
        message: `request body exceeds ${MAX_GRAPHQL_BODY_BYTES} bytes`,
      });
      expect(declared.headers.get('connection')).toBe('close');
      const chunk = 'x'.repeat(64 * 1024);
      const chunked = await raw(url, {
        method: 'POST',
        path: graph,
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', 'x-api-key': ADMIN_KEY },
        chunks: [
          '{"query":"{ __typename }","variables":{"pad":"',
          ...Array.from({ length: Math.ceil(MAX_GRAPHQL_BODY_BYTES / chunk.length) + 1 }, () => chunk),
          '"}}',
        ],
      });
      expect(chunked.status).toBe(400);
      expect(JSON.parse(chunked.body).error).toBe('BAD_USER_INPUT');
    });

    it.each(graphs)(
      '%s: refuses a body nesting JSON deeper than any variable may, before parsing it, naming MAX_VARIABLE_DEPTH',
      async (graph) => {
        // 100,000 levels (JSON.stringify would overflow its stack on them): sent as text.
        const text = `{"query":"{ __typename }","variables":{"v":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`;
        const res = await send(`${url}${graph}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': ADMIN_KEY },
          body: text,
        });
        expect(res.status).toBe(400);
        expect(res.body).toEqual({
          error: 'BAD_USER_INPUT',
          message: `request body nests JSON more than ${MAX_VARIABLE_DEPTH + 2} levels deep (MAX_VARIABLE_DEPTH)`,
        });
        // The rest of the body is not read (that would cost what parsing it would): the connection ends.
        expect(res.headers.get('connection')).toBe('close');
      },
    );

    it.each(graphs)(
      '%s: refuses a body holding more JSON values than the variables may, before parsing it',
      async (graph) => {
        const keys = Object.fromEntries(Array.from({ length: MAX_VARIABLE_VALUES + 100 }, (_, i) => [`k${i}`, i]));
        const r = await post(graph, '{ __typename }', { variables: { junk: keys } });
        expect(r.status).toBe(400);
        expect(r.body).toEqual({
          error: 'BAD_USER_INPUT',
          message: `request body holds more than ${MAX_VARIABLE_VALUES + 64} JSON values (MAX_VARIABLE_VALUES)`,
        });
      },
    );

    it.each(graphs)(
      '%s: refuses a declared variable nested deeper than MAX_VARIABLE_DEPTH, naming it (GET: no body to measure)',
      async (graph) => {
        // Its declared type does not matter: the limits are checked before values are coerced.
        const q = encodeURIComponent('query($v: String!) { __type(name: $v) { name } }');
        const v = encodeURIComponent(
          JSON.stringify({
            v: JSON.parse(`${'['.repeat(MAX_VARIABLE_DEPTH + 1)}${']'.repeat(MAX_VARIABLE_DEPTH + 1)}`),
          }),
        );
        const r = await send(`${url}${graph}?query=${q}&variables=${v}`, {
          headers: { 'apollo-require-preflight': 'true', 'x-api-key': ADMIN_KEY },
        });
        expect(r.status).toBe(400);
        expect(r.body.errors[0]).toMatchObject({
          message: '$v nests lists and input objects more than 32 levels deep (MAX_VARIABLE_DEPTH)',
          extensions: { code: 'BAD_USER_INPUT' },
        });
      },
    );

    it.each(graphs)(
      '%s: ignores variables the operation does not declare (a lone surrogate in one refuses nothing)',
      async (graph) => {
        const r = await post(graph, '{ __typename }', { variables: { junk: ['x\ud800', { 'k\u0000': 1 }] } });
        expect(r.status).toBe(200);
        expect(r.body).toEqual({ data: { __typename: 'Query' } });
      },
    );

    it.each(graphs)('%s: logs a client that disconnects mid-body at warn, not error', async (graph) => {
      const linesBefore = logLines.length;
      const u = new URL(url);
      await new Promise<void>((resolve) => {
        const req = request({
          host: u.hostname,
          port: u.port,
          path: graph,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': '1000' },
        });
        req.on('error', () => resolve());
        req.write('{"query":"{ __typ', () => setTimeout(() => req.destroy(), 50));
      });
      let lines: any[] = [];
      for (let i = 0; i < 100 && lines.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        lines = logLines
          .slice(linesBefore)
          .map((l) => JSON.parse(l))
          .filter((l) => l.level >= 40);
      }
      expect(lines.map((l) => [l.level, l.msg])).toEqual([[40, 'client disconnected before its request was read']]);
    });

    it.each(graphs)('%s: refuses batched requests (a JSON array) with 400 and runs none of them', async (graph) => {
      const before = await snapshot();
      const batch = [{ query: '{ __typename }' }, { query: 'mutation { deleteCredentialProvider(id: "github-01") }' }];
      const r = await send(`${url}${graph}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': ADMIN_KEY },
        body: JSON.stringify(batch),
      });
      expect(r.status).toBe(400);
      expect(r.body.errors[0]).toMatchObject({
        message: 'Operation batching disabled.',
        extensions: { code: 'BAD_REQUEST' },
      });
      expect(await snapshot()).toEqual(before);
    });

    it.each(graphs)('%s: answers malformed bodies with 400', async (graph) => {
      for (const body of [
        '{',
        '[',
        'null',
        '"query"',
        '{"query": 42}',
        '{"query": "{ __typename }", "variables": "x"}',
        '{"query": "{"}',
      ]) {
        const r = await send(`${url}${graph}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': ADMIN_KEY },
          body,
        });
        expect(r.status, body).toBe(400);
      }
    });
  });

  describe('CSRF: simple cross-site requests are refused before anything runs', () => {
    const graphs = ['/graphql', '/admin/graphql'] as const;
    const MUTATION = `mutation { createCredentialProvider(input: { id: "csrf", identityProvider: "github", grantType: AUTHORIZATION_CODE, clientId: "x", clientSecret: "y" }) { id } }`;

    it.each(graphs)('%s: a GET with a query and no preflight header is 400', async (graph) => {
      const r = await send(`${url}${graph}?query=${encodeURIComponent('{ __typename }')}`);
      expect(r.status).toBe(400);
      expect(r.body.errors[0].message).toMatch(/Cross-Site Request Forgery/);
      expect(r.body.data).toBeUndefined();
      const allowed = await send(`${url}${graph}?query=${encodeURIComponent('{ __typename }')}`, {
        headers: { 'apollo-require-preflight': 'true' },
      });
      expect(allowed.status).toBe(200);
    });

    it.each(graphs)(
      '%s: a POST as text/plain, form or multipart is 400 and stores nothing, even carrying the admin key',
      async (graph) => {
        const before = await snapshot();
        for (const type of [
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
          'text/plain; charset=utf-8',
        ]) {
          const r = await send(`${url}${graph}`, {
            method: 'POST',
            headers: { 'content-type': type, 'x-api-key': ADMIN_KEY },
            body: JSON.stringify({ query: MUTATION }),
          });
          expect(r.status, type).toBe(400);
          expect(r.body.errors[0].message).toMatch(/Cross-Site Request Forgery/);
        }
        const noType = await raw(url, {
          method: 'POST',
          path: graph,
          headers: { 'x-api-key': ADMIN_KEY },
          chunks: [JSON.stringify({ query: MUTATION })],
        });
        expect(noType.status).toBe(400);
        expect(await snapshot()).toEqual(before);
      },
    );

    it('the login link and callback accept GET only', async () => {
      for (const path of ['/oauth/callback?state=x', '/oauth/login/x']) {
        for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
          const r = await send(`${url}${path}`, { method });
          expect(r.status, `${method} ${path}`).toBe(405);
          expect(r.headers.get('allow')).toBe('GET');
        }
      }
    });

    /** A login link for `connection`, opened: the authorization request's state, as a browser would carry it back. */
    async function openedLink(
      connection: string,
      redirect = `${APP_ORIGIN}/done`,
    ): Promise<{ link: string; state: string }> {
      const created = await admin(LOGIN_LINK, { p: 'github-01', c: connection, r: redirect });
      expect(created.body.errors).toBeUndefined();
      const link = created.body.data.createLoginLink.url as string;
      const opened = await send(link);
      expect(opened.status).toBe(302);
      const location = new URL(opened.headers.get('location')!);
      expect(location.origin).toBe(new URL(s.authGithub.issuer).origin);
      return { link, state: location.searchParams.get('state')! };
    }

    it('a login link is single use: a second open (a replayed or shared link) is 404 and starts nothing', async () => {
      const { link } = await openedLink('victim');
      const again = await send(link);
      expect(again.status).toBe(404);
      expect(again.body.error).toBe('NOT_FOUND');
    });

    it('a callback changes only the consent its own state is bound to: injected ids and redirect parameters are ignored', async () => {
      await admin(`mutation { createConnection(providerId: "github-01", input: { id: "bystander" }) { id } }`);
      const before = await snapshot();
      const { state } = await openedLink('victim');
      const injected = new URLSearchParams({
        state,
        error: 'access_denied',
        providerId: 'graph-01',
        connectionId: 'bystander',
        postLoginRedirectUrl: 'https://evil.example.com/',
        redirect_uri: 'https://evil.example.com/',
      });
      const r = await send(`${url}/oauth/callback?${injected}`);
      expect(r.status).toBe(302);
      const location = new URL(r.headers.get('location')!);
      expect(location.origin).toBe(APP_ORIGIN);
      expect(Object.fromEntries(location.searchParams)).toMatchObject({
        providerId: 'github-01',
        connectionId: 'victim',
        error: 'ACCESS_DENIED',
      });
      expect(await snapshot()).toEqual(before);
      // The state was consumed: a replay is refused without a redirect.
      const replay = await send(`${url}/oauth/callback?${injected}`);
      expect(replay.status).toBe(400);
      expect(replay.body.error).toBe('BAD_USER_INPUT');
    });

    it('a forged authorization code with a live state leaves the connection as it was', async () => {
      const before = await snapshot();
      const { state } = await openedLink('victim');
      const r = await send(
        `${url}/oauth/callback?state=${encodeURIComponent(state)}&code=forged-code&iss=${encodeURIComponent(s.authGithub.issuer)}`,
      );
      expect(r.status).toBe(302);
      const location = new URL(r.headers.get('location')!);
      expect(location.origin).toBe(APP_ORIGIN);
      expect(location.searchParams.get('error')).toBeTruthy();
      expect(location.searchParams.get('status')).toBeNull();
      expect(await snapshot()).toEqual(before);
    });

    it('a callback without a known state is 400 with no redirect at all', async () => {
      for (const query of [
        '',
        'state=',
        'code=x',
        'state=forged&code=x',
        `state=${'A'.repeat(43)}&error=access_denied`,
      ]) {
        const r = await send(`${url}/oauth/callback?${query}`);
        expect(r.status, query).toBe(400);
        expect(r.headers.get('location')).toBeNull();
      }
    });
  });

  describe('no open redirect through createLoginLink', () => {
    const OUTSIDE = [
      'https://evil.example.com/',
      'https://app.example.com.evil.com/',
      'https://app.example.com@evil.com/',
      'https://app.example.com:secret@evil.com/',
      'https://user@app.example.com/',
      '//evil.com/x',
      '//app.example.com/x',
      '/relative/path',
      'app.example.com/done',
      'javascript:alert(document.domain)',
      'JaVaScRiPt:alert(1)',
      ' javascript:alert(1)',
      'java\tscript:alert(1)',
      'data:text/html,<script>alert(1)</script>',
      'DATA:text/html;base64,PHNjcmlwdD4=',
      'vbscript:msgbox(1)',
      'file:///etc/passwd',
      'ftp://app.example.com/',
      'ws://app.example.com/',
      'blob:https://app.example.com/0d7f3b6e',
      'HTTPS://EVIL.COM/',
      'https://xn--pp-ola.example.com/',
      'https://аpp.example.com/',
      'https://app.exаmple.com/',
      'https://app.example.com:8443/',
      'http://app.example.com/',
      'https://app.example.com:0/',
      'https://app.example.com./',
      'https://app.example.com../',
      'https://app.example.com%2eevil.com/',
      'https:evil.com',
      'https:/\\evil.com',
      'https://evil.com\\@app.example.com',
      'https://evil.com#@app.example.com',
      'https://evil.com?@app.example.com',
      'https://evil.com/https://app.example.com/',
      'http://localhost:5174/',
      'http://localhost:5173.evil.com/',
      'http://127.0.0.1:5173/',
      'http://[::1]:5173/',
      'https://127.0.0.1/',
      'http://0x7f.1/',
      `https://app.example.com/${'x'.repeat(2100)}`,
      '',
    ];
    const INSIDE = [
      ['https://app.example.com', APP_ORIGIN],
      ['https://app.example.com/done?x=1#frag', APP_ORIGIN],
      ['HTTPS://APP.EXAMPLE.COM/done', APP_ORIGIN],
      ['https://app.example.com:443/done', APP_ORIGIN],
      ['http://localhost:5173/callback', DEV_ORIGIN],
      // An empty userinfo is dropped when the URL is normalized; the normalized URL is what is kept.
      ['https://:@app.example.com/', APP_ORIGIN],
    ] as const;

    it(`refuses ${OUTSIDE.length} variants of an outside post-login URL with BAD_USER_INPUT, storing no link`, async () => {
      const outcomes: Record<string, string> = {};
      for (const redirect of OUTSIDE) {
        const r = await admin(LOGIN_LINK, { p: 'github-01', c: 'victim', r: redirect });
        outcomes[redirect] = `${codeOf(r)} ${r.body.errors?.[0]?.extensions?.field ?? r.body.errors?.[0]?.message}`;
      }
      expect(outcomes).toEqual(Object.fromEntries(OUTSIDE.map((o) => [o, 'BAD_USER_INPUT postLoginRedirectUrl'])));
    });

    it.each(INSIDE)('accepts %s and the browser ends on %s', async (redirect, origin) => {
      const created = await admin(LOGIN_LINK, { p: 'github-01', c: 'victim', r: redirect });
      expect(created.body.errors).toBeUndefined();
      const opened = await send(created.body.data.createLoginLink.url);
      const state = new URL(opened.headers.get('location')!).searchParams.get('state')!;
      const back = await send(`${url}/oauth/callback?state=${encodeURIComponent(state)}&error=access_denied`);
      expect(back.status).toBe(302);
      expect(new URL(back.headers.get('location')!).origin).toBe(origin);
    });

    it("accepts the gateway's own origin (runtime login links come back to its done page)", async () => {
      const r = await admin(LOGIN_LINK, { p: 'github-01', c: 'victim', r: `${url}/oauth/done` });
      expect(r.body.errors).toBeUndefined();
    });
  });
});
