/**
 * What stands behind the gateway in end-to-end tests and benches that start gateways themselves
 * (in-process with extra options, or as replica processes): two authorization servers, the two
 * sample subgraphs each trusting only its own, a caller-JWT issuer, and a supergraph.yaml pointing
 * at them. Plus the admin and consent steps every such run begins with.
 *
 *   const b = await startBackends({ accessTokenTtlSeconds: 4 });
 *   // gateway with supergraph: b.supergraphFile, identity.issuers: [b.idp.issuerConfig()]
 *   await createOidcProviders((q, v) => adminPost(q, v), b);
 *   await consentToAll(await firstQueryErrors(), 'alice', aliceJwt); // consents and confirms as alice
 *   await b.close();
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGithubSubgraph } from '../../subgraphs/github/server.js';
import { startGraphSubgraph } from '../../subgraphs/graph/server.js';
import type { RunningSubgraph } from '../../subgraphs/shared/serve.js';
import { consentOverHttp, oidcProviderInput, startAuthServer, type AuthServer } from './authServer.js';
import { confirmAsOwner } from './consent.js';
import { startJwtIssuer, type JwtIssuer } from './jwtIssuer.js';
import { tempDir, type TempDir } from './tmp.js';

const REPO = new URL('../../', import.meta.url).pathname;

export interface Backends {
  readonly authGithub: AuthServer;
  readonly authGraph: AuthServer;
  readonly idp: JwtIssuer;
  readonly github: RunningSubgraph;
  readonly graph: RunningSubgraph;
  /** A temp directory for the run (removed by `close`). */
  readonly dir: TempDir;
  readonly supergraphFile: string;
  close(): Promise<void>;
}

export interface BackendOptions {
  readonly accessTokenTtlSeconds: number;
  /** The graph authorization server's instead (one connection expires while the other stays valid). */
  readonly graphAccessTokenTtlSeconds?: number;
  /** How long the authorization servers' `slow` fault holds an answer back. */
  readonly slowFaultDelayMs?: number;
  /** Rewrites the repo's supergraph.yaml (already pointed at these subgraphs) before use. */
  readonly editSupergraph?: (yaml: string) => string;
}

export async function startBackends(options: BackendOptions): Promise<Backends> {
  const authOptions = {
    accessTokenTtlSeconds: options.accessTokenTtlSeconds,
    ...(options.slowFaultDelayMs !== undefined && { slowFaultDelayMs: options.slowFaultDelayMs }),
  };
  const graphOptions = {
    ...authOptions,
    accessTokenTtlSeconds: options.graphAccessTokenTtlSeconds ?? options.accessTokenTtlSeconds,
  };
  const [authGithub, authGraph, idp] = await Promise.all([
    startAuthServer(authOptions),
    startAuthServer(graphOptions),
    startJwtIssuer(),
  ]);
  const [github, graph] = await Promise.all([
    startGithubSubgraph({ issuer: authGithub.issuer, audience: authGithub.audience }),
    startGraphSubgraph({ issuer: authGraph.issuer, audience: authGraph.audience }),
  ]);
  const dir = await tempDir('cg-backends-');
  const supergraphFile = dir.file('supergraph.yaml');
  const yaml = readFileSync(join(REPO, 'supergraph.yaml'), 'utf8')
    .replace('http://127.0.0.1:4101/graphql', github.url)
    .replace('http://127.0.0.1:4102/graphql', graph.url)
    .replaceAll('./subgraphs/', `${join(REPO, 'subgraphs')}/`);
  writeFileSync(supergraphFile, options.editSupergraph ? options.editSupergraph(yaml) : yaml);
  return {
    authGithub,
    authGraph,
    idp,
    github,
    graph,
    dir,
    supergraphFile,
    async close() {
      await Promise.all([github.close(), graph.close()]);
      await Promise.all([authGithub.close(), authGraph.close(), idp.close()]);
      await dir.cleanup();
    },
  };
}

type Post = (query: string, variables?: Record<string, unknown>) => Promise<{ readonly errors?: readonly unknown[] }>;

/** `github-01` and `graph-01`, OpenID Connect providers of the two authorization servers, as the supergraph binds them. */
export async function createOidcProviders(admin: Post, b: Pick<Backends, 'authGithub' | 'authGraph'>): Promise<void> {
  for (const [id, auth] of [
    ['github-01', b.authGithub],
    ['graph-01', b.authGraph],
  ] as const) {
    const res = await admin(
      `mutation($input: CreateCredentialProviderInput!) { createCredentialProvider(input: $input) { id } }`,
      { input: oidcProviderInput(id, auth) },
    );
    if (res.errors) throw new Error(`creating ${id} failed: ${JSON.stringify(res.errors)}`);
  }
}

/**
 * Consents, as `login`, to every login link in a user's first query's errors (one per subgraph
 * whose connection was just created for them), and confirms each consent with the user's own
 * JWT at the gateway that gave the link; returns how many.
 */
export async function consentToAll(
  errors: readonly { readonly extensions?: { readonly loginUrl?: string } }[] | undefined,
  login: string,
  jwt: string,
): Promise<number> {
  let consented = 0;
  for (const e of errors ?? []) {
    const link = e.extensions?.loginUrl;
    if (link === undefined) throw new Error(`expected a login link, got ${JSON.stringify(e)}`);
    await confirmAsOwner(new URL(link).origin, await consentOverHttp(link, { login }), jwt);
    consented++;
  }
  return consented;
}
