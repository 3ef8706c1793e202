/**
 * What each case is: its gateway, how it is configured, the requests the load generator sends
 * through it, and the set-up case c needs (providers, a user's consent) before it can serve.
 */
import { ADMIN_KEY } from '../test/support/app.js';
import { consentToAll, createOidcProviders } from '../test/support/backends.js';
import type { GatewayKind, GatewayStart, LoadStep } from './protocol.js';
import type { CaseId } from './report.js';
import { BENCH_USER, type BenchStage } from './stage.js';

export const LABELS: Readonly<Record<CaseId, string>> = Object.freeze({
  a: 'subgraphs called directly (own tokens)',
  b: '@apollo/gateway, default fetcher, no auth',
  "b'": '@apollo/gateway + our keep-alive fetcher',
  c: 'this gateway (JWT, 2 providers, cache on)',
  d: 'Hive Gateway, forwards the caller JWT',
  'd+': 'd with Hive defaults: shares identical calls',
});

export type GatewayCaseId = Exclude<CaseId, 'a'>;

export const GATEWAY_OF: Readonly<Record<GatewayCaseId, GatewayKind>> = Object.freeze({
  b: 'stock',
  "b'": 'stock-keepalive',
  c: 'ours',
  d: 'hive',
  'd+': 'hive-dedupe',
});

/** Access tokens of the bench user at each subgraph's own authorization server (case a). */
export interface DirectTokens {
  readonly github: string;
  readonly graph: string;
}

export interface QuerySpec {
  readonly id: 'one' | 'two';
  readonly title: string;
  readonly query: string;
  readonly expect: unknown;
  /** The same work without a gateway: the subgraph calls the gateway's query plan makes, in order. */
  direct(stage: BenchStage, tokens: DirectTokens): LoadStep[];
}

const JSON_HEADERS = Object.freeze({ 'content-type': 'application/json' });

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

export function post(
  url: string,
  query: string,
  headers: Record<string, string>,
  expect: unknown,
  variables?: Record<string, unknown>,
): LoadStep {
  return {
    url,
    headers: { ...JSON_HEADERS, ...headers },
    body: JSON.stringify(variables === undefined ? { query } : { query, variables }),
    expectData: JSON.stringify(expect),
  };
}

export const QUERIES: readonly QuerySpec[] = Object.freeze([
  {
    id: 'one',
    title: 'one subgraph',
    query: '{ viewer { login } }',
    expect: { viewer: { login: BENCH_USER } },
    direct: (s, t) => [
      post(s.tokens.github.url, '{ viewer { login } }', bearer(t.github), { viewer: { login: BENCH_USER } }),
    ],
  },
  {
    id: 'two',
    title: 'two subgraphs (entity fetch)',
    query: '{ viewer { login profile { displayName } } }',
    expect: { viewer: { login: BENCH_USER, profile: { displayName: 'Alice' } } },
    direct: (s, t) => [
      post(s.tokens.github.url, '{ viewer { __typename id login } }', bearer(t.github), {
        viewer: { __typename: 'User', id: BENCH_USER, login: BENCH_USER },
      }),
      post(
        s.tokens.graph.url,
        'query($representations: [_Any!]!) { _entities(representations: $representations) { ... on User { profile { displayName } } } }',
        bearer(t.graph),
        { _entities: [{ profile: { displayName: 'Alice' } }] },
        { representations: [{ __typename: 'User', id: BENCH_USER }] },
      ),
    ],
  },
]);

/** The request of a gateway case: stock Apollo sends no credentials, the others the caller's JWT. */
export function gatewayStep(id: GatewayCaseId, url: string, query: QuerySpec, callerJwt: string): LoadStep {
  return post(url, query.query, id === 'b' || id === "b'" ? {} : bearer(callerJwt), query.expect);
}

export function startSpec(kind: GatewayKind, stage: BenchStage): GatewayStart {
  switch (kind) {
    case 'stock':
    case 'stock-keepalive':
      return { kind, supergraphSdl: stage.anonymous.supergraphSdl };
    case 'hive':
    case 'hive-dedupe':
      return { kind, supergraphSdl: stage.callerJwt.supergraphSdl };
    case 'ours':
      return {
        kind,
        logFile: stage.dir.file('gateway.log'),
        config: {
          server: { host: '127.0.0.1', port: 0, exploration: false },
          supergraph: stage.tokens.supergraphFile,
          store: { url: `sqlite:${stage.dir.file('credentials.db')}` },
          keys: { keyringFile: stage.dir.file('keyring.json') },
          admin: { apiKeys: [ADMIN_KEY] },
          identity: { issuers: [stage.idp.issuerConfig()] },
          oauth: { allowInsecureHttp: true, allowPrivateNetworks: true },
          cache: { enabled: true },
        },
      };
  }
}

async function json(url: string, init: RequestInit): Promise<any> {
  const res = await fetch(url, init);
  const body = await res.json();
  if (!res.ok) throw new Error(`${url} answered HTTP ${res.status}: ${JSON.stringify(body)}`);
  return body;
}

/**
 * Our gateway as a user would set it up: two providers through the admin API, a first query by
 * the user that creates their connections, their consent at each authorization server (over HTTP,
 * no browser), then their access tokens from the token endpoint (case a's tokens).
 */
export async function setUpOurs(stage: BenchStage, base: string, callerJwt: string): Promise<DirectTokens> {
  await createOidcProviders(
    (query, variables) =>
      json(`${base}/admin/graphql`, {
        method: 'POST',
        headers: { ...JSON_HEADERS, 'x-api-key': ADMIN_KEY },
        body: JSON.stringify({ query, variables }),
      }),
    stage,
  );
  const first = (await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { ...JSON_HEADERS, ...bearer(callerJwt) },
    body: JSON.stringify({ query: '{ githubTokenInfo { subject } graphTokenInfo { subject } }' }),
  }).then((r) => r.json())) as { errors?: { extensions?: { loginUrl?: string } }[] };
  const consented = await consentToAll(first.errors, BENCH_USER, callerJwt);
  if (consented !== 2) throw new Error(`expected two login links, got ${JSON.stringify(first)}`);
  const token = async (provider: string): Promise<string> =>
    (await json(`${base}/tokens/${provider}/${BENCH_USER}`, { headers: bearer(callerJwt) })).access_token as string;
  return { github: await token('github-01'), graph: await token('graph-01') };
}
