/**
 * Many replicas, one PostgreSQL: three real gateway processes share one schema and one key, in
 * front of the sample subgraphs and two real authorization servers. Exactly one refresh per
 * connection across all of them; a rotated token, a removed access policy, a deleted connection
 * stop being served by every replica within a second. Mandatory when CI=true.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consentToAll, createOidcProviders, startBackends, type Backends } from './support/backends.js';
import { freshPgSchema, requirePgOrSkip, type PgSchema } from './support/pg.js';
import { pgSchemaUrl, sharedKeysKey, startReplica, type Replica } from './support/replicas.js';

const hasPg = await requirePgOrSkip('the multi-replica tests');
/**
 * A new token must stay fresh (TTL - skew) for the whole burst, which takes seconds through three
 * busy processes on two cores; and a cached token must outlive the one-second propagation bound.
 */
const ACCESS_TOKEN_TTL_SECONDS = 30;
const REFRESH_SKEW_SECONDS = 1;
const PROPAGATION_BOUND_MS = 1_000;
const BURST_REQUESTS = 1_000;
const TOKEN_INFO = `{ githubTokenInfo { subject } graphTokenInfo { subject } }`;
const GITHUB_ONLY = `{ githubTokenInfo { subject } }`;

interface GraphQLBody {
  data?: any;
  errors?: { message: string; extensions?: { code?: string; serviceName?: string; loginUrl?: string } }[];
}

function codesByService(body: GraphQLBody): Record<string, string | undefined> {
  return Object.fromEntries((body.errors ?? []).map((e) => [e.extensions?.serviceName, e.extensions?.code]));
}

describe.skipIf(!hasPg)('three gateway replicas on one PostgreSQL', () => {
  let schema: PgSchema;
  let b: Backends;
  let replicas: Replica[] = [];
  let pools: Pool[] = [];
  let alice: string;
  let consentedAt = 0;

  async function query(i: number, q: string, jwt: string = alice): Promise<GraphQLBody> {
    const res = await pools[i]!.request({
      path: '/graphql',
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
      body: JSON.stringify({ query: q }),
    });
    return (await res.body.json()) as GraphQLBody;
  }

  /** The Authorization header the github subgraph saw for one query through replica `i` (run alone). */
  async function githubHeaderVia(i: number): Promise<string | null> {
    const before = b.github.seen.length;
    const body = await query(i, GITHUB_ONLY);
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    expect(b.github.seen.length).toBe(before + 1);
    return b.github.seen[before]!.authorization;
  }

  /** Polls `check` until it holds; returns how long that took, failing past `boundMs` (plus a margin for the polls themselves). */
  async function within(boundMs: number, check: () => Promise<boolean>): Promise<number> {
    const started = Date.now();
    for (;;) {
      if (await check()) return Date.now() - started;
      if (Date.now() - started > boundMs) throw new Error(`not within ${boundMs} ms`);
      await sleep(20);
    }
  }

  beforeAll(async () => {
    schema = await freshPgSchema('cg_replicas');
    b = await startBackends({ accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS });
    const env = {
      CG_STORE_URL: pgSchemaUrl(schema),
      CG_KEYS_KEY: sharedKeysKey(),
      CG_SUPERGRAPH: b.supergraphFile,
      CG_IDENTITY_ISSUERS: JSON.stringify([b.idp.issuerConfig()]),
      CG_CACHE_REFRESH_SKEW_SECONDS: String(REFRESH_SKEW_SECONDS),
      // Here tokens must expire untouched; proactive refresh has its own test.
      CG_CACHE_PROACTIVE_REFRESH: 'false',
      // Plenty for the burst, so that a refresh storm could show instead of being rate limited away.
      CG_LIMITS_TOKEN_ACQUISITIONS_PER_MINUTE: '100000',
    };
    // The first one creates the tables; the other two start together.
    replicas = [await startReplica(env)];
    replicas.push(...(await Promise.all([startReplica(env), startReplica(env)])));
    pools = replicas.map((r) => new Pool(r.url, { connections: 64, pipelining: 1 }));

    await createOidcProviders(async (q, v) => (await replicas[0]!.admin(q, v)).body, b);
    alice = await b.idp.sign({ sub: 'alice' }, { expiresIn: 3_600 });
    // Alice's first query creates her connections and hands out login links; she consents to both.
    expect(await consentToAll((await query(0, TOKEN_INFO)).errors, 'alice', alice)).toBe(2);
    consentedAt = Date.now();
    // Every replica warm (caller JWKS fetched, query plan cached), so that in the burst below all
    // three reach the expired token at once instead of one after the other.
    for (const i of [0, 1, 2]) expect((await query(i, TOKEN_INFO)).errors).toBeUndefined();
  }, 240_000);

  afterAll(async () => {
    await Promise.all(pools.map((p) => p.close()));
    await Promise.all(replicas.map((r) => r.stop()));
    await b?.close();
    await schema?.drop();
  }, 60_000);

  it(`refreshes an expired token exactly once per connection under ${BURST_REQUESTS} concurrent queries spread over the replicas`, async () => {
    // Let the consented tokens expire untouched.
    await sleep(Math.max(0, consentedAt + ACCESS_TOKEN_TTL_SECONDS * 1000 + 300 - Date.now()));
    b.authGithub.resetCounts();
    b.authGraph.resetCounts();
    const seenBefore = { github: b.github.seen.length, graph: b.graph.seen.length };
    const started = Date.now();
    const bodies = await Promise.all(
      Array.from({ length: BURST_REQUESTS }, (_, i) => query(i % replicas.length, TOKEN_INFO)),
    );
    const elapsedMs = Date.now() - started;
    const failures = bodies.filter((b) => b.errors !== undefined);
    expect(failures.slice(0, 3), `${failures.length} failed; first: ${JSON.stringify(failures[0]?.errors)}`).toEqual(
      [],
    );
    for (const b of bodies)
      expect(b.data).toEqual({ githubTokenInfo: { subject: 'alice' }, graphTokenInfo: { subject: 'alice' } });
    expect(b.authGithub.counts.refresh).toBe(1);
    expect(b.authGraph.counts.refresh).toBe(1);
    // Every replica served its share with the one new token of each connection.
    for (const [subgraph, from] of [
      [b.github, seenBefore.github],
      [b.graph, seenBefore.graph],
    ] as const) {
      const headers = subgraph.seen.slice(from).map((s) => s.authorization);
      expect(headers).toHaveLength(BURST_REQUESTS);
      expect(new Set(headers).size).toBe(1);
    }
    console.info(`[replicas] ${BURST_REQUESTS} queries through ${replicas.length} replicas in ${elapsedMs} ms`);
  }, 120_000);

  it('serves a token rotated by one replica from every other replica within a second', async () => {
    const rotate = async (): Promise<void> => {
      const res = await replicas[0]!.admin(
        `mutation { testConnection(providerId: "github-01", connectionId: "alice") { ok status } }`,
      );
      expect(res.body.data?.testConnection).toEqual({ ok: true, status: 'CONNECTED' });
    };
    await rotate();
    // Every replica caches the current token (for TTL - skew, far beyond the bound below).
    const before = await githubHeaderVia(0);
    const cachedAt = Date.now();
    for (const i of [1, 2]) expect(await githubHeaderVia(i)).toBe(before);
    for (const i of [1, 2]) expect(await githubHeaderVia(i)).toBe(before);

    await rotate();
    const rotatedAt = Date.now();
    const after = await githubHeaderVia(0);
    expect(after).not.toBe(before);
    for (const i of [1, 2]) {
      const ms = await within(PROPAGATION_BOUND_MS, async () => (await githubHeaderVia(i)) === after);
      expect(ms).toBeLessThan(PROPAGATION_BOUND_MS);
    }
    // Meaningful only while the old token would still have been served from the caches.
    expect(Date.now() - rotatedAt).toBeLessThan(PROPAGATION_BOUND_MS + 500);
    expect(Date.now() - cachedAt).toBeLessThan((ACCESS_TOKEN_TTL_SECONDS - REFRESH_SKEW_SECONDS) * 1000);
  }, 60_000);

  it('refuses a caller on every replica within a second once one replica removed their access policy, and admits them again after it is restored', async () => {
    for (const i of [0, 1, 2]) expect((await query(i, GITHUB_ONLY)).errors).toBeUndefined();
    const removed = await replicas[0]!.admin(
      `mutation { deleteAccessPolicy(providerId: "github-01", connectionId: "alice", id: "owner") }`,
    );
    expect(removed.body.data?.deleteAccessPolicy).toBe(true);
    for (const i of [1, 2]) {
      const ms = await within(
        PROPAGATION_BOUND_MS,
        async () => codesByService(await query(i, GITHUB_ONLY))['github'] === 'ACCESS_DENIED',
      );
      expect(ms).toBeLessThan(PROPAGATION_BOUND_MS);
    }
    // The graph connection has its own policies: still served.
    expect((await query(1, `{ graphTokenInfo { subject } }`)).errors).toBeUndefined();

    const restored = await replicas[1]!.admin(
      `mutation { createAccessPolicy(providerId: "github-01", connectionId: "alice", input: { id: "owner", kind: USER, objectId: "alice" }) { id } }`,
    );
    expect(restored.body.errors).toBeUndefined();
    for (const i of [0, 2]) {
      const ms = await within(PROPAGATION_BOUND_MS, async () => (await query(i, GITHUB_ONLY)).errors === undefined);
      expect(ms).toBeLessThan(PROPAGATION_BOUND_MS);
    }
  }, 60_000);

  it('stops serving a connection deleted through one replica on every other replica within a second', async () => {
    const tokenVia = (i: number) =>
      fetch(`${replicas[i]!.url}/tokens/graph-01/alice`, { headers: { authorization: `Bearer ${alice}` } });
    for (const i of [0, 1, 2]) {
      expect((await tokenVia(i)).status).toBe(200);
      expect((await query(i, `{ graphTokenInfo { subject } }`)).errors).toBeUndefined();
    }
    const deleted = await replicas[2]!.admin(`mutation { deleteConnection(providerId: "graph-01", id: "alice") }`);
    expect(deleted.body.data?.deleteConnection).toBe(true);
    // The token endpoint names a fixed connection: gone is CONNECTION_NOT_FOUND.
    for (const i of [0, 1]) {
      const ms = await within(PROPAGATION_BOUND_MS, async () => {
        const res = await tokenVia(i);
        return res.status === 404 && ((await res.json()) as { error: string }).error === 'CONNECTION_NOT_FOUND';
      });
      expect(ms).toBeLessThan(PROPAGATION_BOUND_MS);
    }
    // The federated graph's binding is user-delegated: the next use creates a new connection that needs consent.
    for (const i of [0, 1])
      expect(codesByService(await query(i, `{ graphTokenInfo { subject } }`))['graph']).toBe(
        'CONNECTION_NOT_CONNECTED',
      );
  }, 60_000);

  it("stops serving a provider's tokens on every replica within a second once one replica moved its endpoints", async () => {
    for (const i of [0, 1, 2]) expect(await githubHeaderVia(i)).not.toBeNull();
    const moved = await replicas[1]!.admin(
      `mutation { updateCredentialProvider(id: "github-01", input: { parameters: [{ name: "issuer", value: "http://127.0.0.1:9" }], clientSecret: "for-the-new-issuer" }) { version } }`,
    );
    expect(moved.body.errors).toBeUndefined();
    for (const i of [0, 2]) {
      const ms = await within(
        PROPAGATION_BOUND_MS,
        async () => codesByService(await query(i, GITHUB_ONLY))['github'] === 'CONNECTION_NOT_CONNECTED',
      );
      expect(ms).toBeLessThan(PROPAGATION_BOUND_MS);
    }
    // From then on no replica sends the subgraph a token of the old endpoints.
    const settled = b.github.seen.length;
    for (const i of [0, 1, 2])
      expect(codesByService(await query(i, GITHUB_ONLY))['github']).toBe('CONNECTION_NOT_CONNECTED');
    expect(b.github.seen.length).toBe(settled);
  }, 60_000);
});
