/**
 * The whole federation stage for end-to-end tests: two authorization servers (one per SaaS), the
 * two sample subgraphs each trusting only its own, a caller-JWT issuer, and the gateway in front.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGithubSubgraph } from '../../subgraphs/github/server.js';
import { startGraphSubgraph } from '../../subgraphs/graph/server.js';
import type { RunningSubgraph } from '../../subgraphs/shared/serve.js';
import { startTestApp, type TestApp } from './app.js';
import { startAuthServer, type AuthServer } from './authServer.js';
import { createOidcProviders } from './backends.js';
import { startJwtIssuer, type JwtIssuer } from './jwtIssuer.js';
import { tempDir } from './tmp.js';

const REPO = new URL('../../', import.meta.url).pathname;

export interface Stage {
  readonly t: TestApp;
  readonly authGithub: AuthServer;
  readonly authGraph: AuthServer;
  readonly idp: JwtIssuer;
  readonly github: RunningSubgraph;
  readonly graph: RunningSubgraph;
  readonly supergraphFile: string;
  /** A caller JWT for `sub`. */
  jwtFor(sub: string, claims?: Record<string, unknown>): Promise<string>;
  /** POST /graphql with an optional caller JWT. */
  query<T = any>(query: string, jwt?: string | null, variables?: Record<string, unknown>): Promise<{ status: number; body: { data?: T; errors?: any[] } }>;
  close(): Promise<void>;
}

export interface StageOptions {
  readonly accessTokenTtlSeconds?: number;
  /** How long the authorization servers' `slow` fault holds an answer back. */
  readonly slowFaultDelayMs?: number;
  /** Rewrites the repo's supergraph.yaml (already pointed at the test subgraphs) before use. */
  readonly editSupergraph?: (yaml: string) => string;
  readonly config?: Record<string, unknown>;
  readonly storeUrl?: string;
  /** Receives the gateway's JSON log lines. */
  readonly logLines?: string[];
}

export async function startStage(options: StageOptions = {}): Promise<Stage> {
  const ttl = options.accessTokenTtlSeconds ?? 60;
  const [authGithub, authGraph, idp] = await Promise.all([
    startAuthServer({ accessTokenTtlSeconds: ttl, ...(options.slowFaultDelayMs !== undefined && { slowFaultDelayMs: options.slowFaultDelayMs }) }),
    startAuthServer({ accessTokenTtlSeconds: ttl, ...(options.slowFaultDelayMs !== undefined && { slowFaultDelayMs: options.slowFaultDelayMs }) }),
    startJwtIssuer(),
  ]);
  const [github, graph] = await Promise.all([
    startGithubSubgraph({ issuer: authGithub.issuer, audience: authGithub.audience }),
    startGraphSubgraph({ issuer: authGraph.issuer, audience: authGraph.audience }),
  ]);
  const dir = await tempDir('cg-stage-');
  let yaml = readFileSync(join(REPO, 'supergraph.yaml'), 'utf8')
    .replace('http://127.0.0.1:4101/graphql', github.url)
    .replace('http://127.0.0.1:4102/graphql', graph.url)
    .replaceAll('./subgraphs/', join(REPO, 'subgraphs') + '/');
  if (options.editSupergraph) yaml = options.editSupergraph(yaml);
  const supergraphFile = dir.file('supergraph.yaml');
  writeFileSync(supergraphFile, yaml);
  const t = await startTestApp(
    {
      supergraph: supergraphFile,
      identity: { issuers: [idp.issuerConfig()] },
      ...options.config,
    },
    { ...(options.storeUrl && { storeUrl: options.storeUrl }), ...(options.logLines && { logLines: options.logLines }) },
  );
  await createOidcProviders(async (query, variables) => (await t.admin(query, variables)).body, { authGithub, authGraph });
  return {
    t,
    authGithub,
    authGraph,
    idp,
    github,
    graph,
    supergraphFile,
    jwtFor: (sub, claims = {}) => idp.sign({ sub, ...claims }),
    async query(query, jwt, variables = {}) {
      const res = await fetch(`${t.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(jwt ? { authorization: `Bearer ${jwt}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      return { status: res.status, body: (await res.json()) as any };
    },
    async close() {
      await t.close();
      await Promise.all([github.close(), graph.close()]);
      await Promise.all([authGithub.close(), authGraph.close(), idp.close()]);
      await dir.cleanup();
    },
  };
}
