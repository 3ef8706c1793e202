/**
 * Proactive refresh: with short-lived tokens and steady traffic through the real gateway, tokens
 * are renewed in the background before they enter the refresh window, so no request waits on an
 * authorization server (every provider call the token source reports comes from the refresher).
 * On PostgreSQL with two replicas, a renewal by one is re-read, not repeated, by the other.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config/schema.js';
import { createLogger } from '../src/log.js';
import { startApp, type App } from '../src/server/wire.js';
import type { ConnectionKey } from '../src/domain/ids.js';
import {
  NO_TOKEN_EVENTS,
  type ProviderCallKind,
  type ProviderCallOrigin,
  type ProviderCallOutcome,
  type TokenEvents,
} from '../src/tokens/events.js';
import { ADMIN_KEY } from './support/app.js';
import { consentToAll, createOidcProviders, startBackends, type Backends } from './support/backends.js';
import { graphqlPoster } from './support/graphqlPool.js';
import { freshPgSchema, requirePgOrSkip, type PgSchema } from './support/pg.js';
import { pgSchemaUrl, sharedKeysKey } from './support/replicas.js';

const hasPg = await requirePgOrSkip('proactive refresh across replicas');

const TOKEN_INFO = `{ githubTokenInfo { subject } graphTokenInfo { subject } }`;
const ACCESS_TOKEN_TTL_SECONDS = 4;
const REFRESH_SKEW_SECONDS = 1;

interface ProviderCall {
  readonly key: string;
  readonly kind: ProviderCallKind;
  readonly outcome: ProviderCallOutcome;
  readonly origin: ProviderCallOrigin;
}

function recordingEvents(calls: ProviderCall[]): TokenEvents {
  return {
    ...NO_TOKEN_EVENTS,
    providerCall: (key: ConnectionKey, kind, outcome, _durationMs, origin) =>
      calls.push({ key: `${key.providerId}/${key.connectionId}`, kind, outcome, origin }),
  };
}

interface Gateway {
  readonly app: App;
  readonly calls: ProviderCall[];
  query(q: string, jwt: string): Promise<{ data?: any; errors?: any[] }>;
  admin(q: string, variables?: Record<string, unknown>): Promise<{ data?: any; errors?: any[] }>;
  close(): Promise<void>;
}

async function startGateway(
  b: Backends,
  store: { url: string; keysKey?: string },
  extra: Record<string, unknown> = {},
): Promise<Gateway> {
  const config = validateConfig({
    server: { host: '127.0.0.1', port: 0 },
    supergraph: b.supergraphFile,
    store: { url: store.url },
    keys: store.keysKey ? { key: store.keysKey } : { keyringFile: b.dir.file('keyring.json') },
    identity: { issuers: [b.idp.issuerConfig()] },
    admin: { apiKeys: [ADMIN_KEY] },
    oauth: { allowInsecureHttp: true, allowPrivateNetworks: true, timeoutMs: 5_000 },
    cache: { refreshSkewSeconds: REFRESH_SKEW_SECONDS },
    log: { level: 'warn' },
    ...extra,
  });
  const calls: ProviderCall[] = [];
  const app = await startApp(config, {
    logger: createLogger('warn', { write: () => {} }),
    tokenEvents: recordingEvents(calls),
  });
  const pool = new Pool(app.url, { connections: 8 });
  const post = graphqlPoster(pool);
  return {
    app,
    calls,
    query: (q, jwt) => post('/graphql', q, { authorization: `Bearer ${jwt}` }),
    admin: (q, variables) => post('/admin/graphql', q, { 'x-api-key': ADMIN_KEY }, variables),
    async close() {
      await pool.close();
      await app.close();
    },
  };
}

/** Providers for both subgraphs; alice's first query creates her connections; she consents to both. */
async function setUpAlice(g: Gateway, b: Backends): Promise<string> {
  await createOidcProviders(g.admin, b);
  const alice = await b.idp.sign({ sub: 'alice' }, { expiresIn: 3_600 });
  expect(await consentToAll((await g.query(TOKEN_INFO, alice)).errors, 'alice', alice)).toBe(2);
  return alice;
}

/** `workers` loops of back-to-back queries (spread over `gateways`) for `durationMs`; returns the failures. */
async function steadyTraffic(
  gateways: readonly Gateway[],
  jwt: string,
  durationMs: number,
  workers = 4,
): Promise<{ requests: number; failures: unknown[] }> {
  const until = Date.now() + durationMs;
  let requests = 0;
  const failures: unknown[] = [];
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = w; Date.now() < until; i += workers) {
        const body = await gateways[i % gateways.length]!.query(TOKEN_INFO, jwt);
        requests++;
        if (body.errors) failures.push(body.errors);
        await sleep(20);
      }
    }),
  );
  return { requests, failures };
}

describe('proactive refresh through the gateway', () => {
  let b: Backends;
  let g: Gateway;
  let alice: string;

  beforeAll(async () => {
    b = await startBackends({ accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS });
    g = await startGateway(b, { url: `sqlite:${b.dir.file('credentials.db')}` });
    alice = await setUpAlice(g, b);
  }, 60_000);

  afterAll(async () => {
    await g?.close();
    await b?.close();
  });

  it('renews tokens in use in the background: over 20 s of steady traffic with 4 s tokens, no request waits on the authorization server', async () => {
    b.authGithub.resetCounts();
    b.authGraph.resetCounts();
    g.calls.length = 0;
    const { requests, failures } = await steadyTraffic([g], alice, 20_000);
    expect(failures.slice(0, 3)).toEqual([]);
    expect(requests).toBeGreaterThan(50);
    // Refreshes did happen: each 4 s token was replaced several times...
    expect(b.authGithub.counts.refresh).toBeGreaterThanOrEqual(5);
    expect(b.authGraph.counts.refresh).toBeGreaterThanOrEqual(5);
    // ...every one by the refresher, none on a request's path.
    expect(g.calls.length).toBe(b.authGithub.counts.refresh + b.authGraph.counts.refresh);
    expect(g.calls.filter((c) => c.origin !== 'background' || c.outcome !== 'success')).toEqual([]);
  }, 60_000);

  it('leaves connections alone once they are idle for a few lifetimes', async () => {
    await sleep(3 * ACCESS_TOKEN_TTL_SECONDS * 1000);
    const before = b.authGithub.counts.refresh + b.authGraph.counts.refresh;
    await sleep(2 * ACCESS_TOKEN_TTL_SECONDS * 1000);
    expect(b.authGithub.counts.refresh + b.authGraph.counts.refresh).toBe(before);
    // A request after the idle spell renews on its own path: the token expired meanwhile.
    g.calls.length = 0;
    expect((await g.query(TOKEN_INFO, alice)).errors).toBeUndefined();
    expect(g.calls.map((c) => c.origin)).toEqual(['request', 'request']);
  }, 60_000);
});

describe('proactive refresh turned off', () => {
  it('leaves every renewal to requests (cache.proactiveRefresh: false)', async () => {
    const b = await startBackends({ accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS });
    const g = await startGateway(
      b,
      { url: `sqlite:${b.dir.file('credentials.db')}` },
      { cache: { refreshSkewSeconds: REFRESH_SKEW_SECONDS, proactiveRefresh: false } },
    );
    try {
      const alice = await setUpAlice(g, b);
      const { failures } = await steadyTraffic([g], alice, 7_000, 2);
      expect(failures).toEqual([]);
      expect(g.calls.length).toBeGreaterThanOrEqual(2);
      expect(g.calls.every((c) => c.origin === 'request')).toBe(true);
    } finally {
      await g.close();
      await b.close();
    }
  }, 60_000);
});

describe.skipIf(!hasPg)('proactive refresh with two replicas on PostgreSQL', () => {
  let b: Backends;
  let schema: PgSchema;
  let gateways: Gateway[] = [];
  const githubAlice: ConnectionKey = { providerId: 'github-01', connectionId: 'alice' };

  beforeAll(async () => {
    // Longer tokens here: the lock test below needs seconds of margin on a busy machine.
    b = await startBackends({ accessTokenTtlSeconds: 30 });
    schema = await freshPgSchema('cg_proactive');
    const store = { url: pgSchemaUrl(schema), keysKey: sharedKeysKey() };
    gateways = [await startGateway(b, store)];
    gateways.push(await startGateway(b, store));
    await setUpAlice(gateways[0]!, b);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    await schema?.drop();
    await b?.close();
  });

  it('renews once when both replicas renew at once: the one that waited for the lock re-reads the fresh token instead of calling the provider', async () => {
    const [a, c] = [gateways[0]!, gateways[1]!];
    const issued = await a.app.tokens.get(githubAlice);
    // Ask for more validity than the current token has left, less than a new one will have.
    const minValidityMs = 27_000;
    await sleep(Math.max(0, (issued.expiresAt ?? 0) - minValidityMs + 200 - Date.now()));
    b.authGithub.resetCounts();
    a.calls.length = 0;
    c.calls.length = 0;
    const background = { minValidityMs, origin: 'background' as const };
    const [fromA, fromC] = await Promise.all([
      a.app.tokens.get(githubAlice, background),
      c.app.tokens.get(githubAlice, background),
    ]);
    expect(b.authGithub.counts.refresh).toBe(1);
    expect(fromA.accessToken).toBe(fromC.accessToken);
    expect(fromA.accessToken).not.toBe(issued.accessToken);
    expect([...a.calls, ...c.calls].map((x) => x.origin)).toEqual(['background']);
  }, 60_000);

  it('keeps every token fresh for requests on both replicas, one renewal per token, not one per replica', async () => {
    // Short tokens from here on: refresh with a server whose tokens last 4 s.
    const short = await startBackends({ accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS });
    const schema2 = await freshPgSchema('cg_proactive_short');
    const store = { url: pgSchemaUrl(schema2), keysKey: sharedKeysKey() };
    const pair = [await startGateway(short, store)];
    try {
      pair.push(await startGateway(short, store));
      const jwt = await setUpAlice(pair[0]!, short);
      short.authGithub.resetCounts();
      short.authGraph.resetCounts();
      const durationMs = 12_000;
      const { failures } = await steadyTraffic(pair, jwt, durationMs);
      expect(failures.slice(0, 3)).toEqual([]);
      const calls = [...pair[0]!.calls, ...pair[1]!.calls];
      expect(calls.filter((c) => c.origin !== 'background' || c.outcome !== 'success')).toEqual([]);
      // One renewal per token lifetime (minus skew and lead) at most: duplicates would double it.
      const renewalsPerConnectionAtMost =
        Math.ceil(durationMs / ((ACCESS_TOKEN_TTL_SECONDS - REFRESH_SKEW_SECONDS - 1 - 0.4) * 1000)) + 1;
      console.info(
        `[proactive] two replicas, ${durationMs} ms: refreshes github ${short.authGithub.counts.refresh}, graph ${short.authGraph.counts.refresh} (at most ${renewalsPerConnectionAtMost} each)`,
      );
      for (const auth of [short.authGithub, short.authGraph]) {
        expect(auth.counts.refresh).toBeGreaterThanOrEqual(3);
        expect(auth.counts.refresh).toBeLessThanOrEqual(renewalsPerConnectionAtMost);
      }
    } finally {
      await Promise.all(pair.map((g) => g.close()));
      await schema2.drop();
      await short.close();
    }
  }, 90_000);
});
