/**
 * The backends every case shares, in the orchestrating process: the two authorization servers and
 * the caller-JWT issuer of test/support, and three pairs of the sample subgraphs (same code, same
 * schemas), one per way of authenticating the gateway's calls:
 *
 *   tokens     each trusts only its own authorization server (cases a and c)
 *   anonymous  `allowAnonymous`: no token needed, served as alice (cases b and b')
 *   callerJwt  both trust the caller-JWT issuer (case d, which forwards the caller's header)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { composeSupergraph } from '../src/gateway/compose.js';
import { loadSupergraphConfig } from '../src/gateway/supergraphConfig.js';
import { startGithubSubgraph } from '../subgraphs/github/server.js';
import { startGraphSubgraph } from '../subgraphs/graph/server.js';
import type { RunningSubgraph, SubgraphOptions } from '../subgraphs/shared/serve.js';
import { startAuthServer, type AuthServer } from '../test/support/authServer.js';
import { startJwtIssuer, type JwtIssuer } from '../test/support/jwtIssuer.js';
import { tempDir, type TempDir } from '../test/support/tmp.js';

const REPO = new URL('../', import.meta.url).pathname;
/** Long enough that no token expires, and no refresh happens, during a run. */
const ACCESS_TOKEN_TTL_SECONDS = 3_600;
export const BENCH_USER = 'alice';

export interface SubgraphPair {
  readonly github: RunningSubgraph;
  readonly graph: RunningSubgraph;
  /** supergraph.yaml of the repository, pointed at this pair. */
  readonly supergraphFile: string;
  /** Its composed SDL. */
  readonly supergraphSdl: string;
}

export interface BenchStage {
  readonly dir: TempDir;
  readonly authGithub: AuthServer;
  readonly authGraph: AuthServer;
  readonly idp: JwtIssuer;
  readonly tokens: SubgraphPair;
  readonly anonymous: SubgraphPair;
  readonly callerJwt: SubgraphPair;
  /** Forgets the Authorization headers the subgraphs recorded (they keep every one otherwise). */
  forgetSeen(): void;
  /** Requests all subgraphs received since the last `forgetSeen()`. */
  subgraphCalls(): number;
  close(): Promise<void>;
}

async function startPair(
  dir: TempDir,
  name: string,
  github: SubgraphOptions,
  graph: SubgraphOptions,
): Promise<SubgraphPair> {
  const [g, m] = await Promise.all([startGithubSubgraph(github), startGraphSubgraph(graph)]);
  const yaml = readFileSync(join(REPO, 'supergraph.yaml'), 'utf8')
    .replace('http://127.0.0.1:4101/graphql', g.url)
    .replace('http://127.0.0.1:4102/graphql', m.url)
    .replaceAll('./subgraphs/', `${join(REPO, 'subgraphs')}/`);
  const supergraphFile = dir.file(`supergraph-${name}.yaml`);
  writeFileSync(supergraphFile, yaml);
  const supergraphSdl = composeSupergraph(await loadSupergraphConfig(supergraphFile));
  return Object.freeze({ github: g, graph: m, supergraphFile, supergraphSdl });
}

export async function startBenchStage(): Promise<BenchStage> {
  const dir = await tempDir('cg-bench-');
  const [authGithub, authGraph, idp] = await Promise.all([
    startAuthServer({ accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS }),
    startAuthServer({ accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS }),
    startJwtIssuer(),
  ]);
  const tokens = await startPair(
    dir,
    'tokens',
    { issuer: authGithub.issuer, audience: authGithub.audience },
    { issuer: authGraph.issuer, audience: authGraph.audience },
  );
  const anonymousOptions = { issuer: idp.issuer, audience: idp.audience, allowAnonymous: { subject: BENCH_USER } };
  const anonymous = await startPair(dir, 'anonymous', anonymousOptions, anonymousOptions);
  const callerOptions = { issuer: idp.issuer, audience: idp.audience, jwksUri: idp.jwksUri };
  const callerJwt = await startPair(dir, 'caller-jwt', callerOptions, callerOptions);
  const pairs = [tokens, anonymous, callerJwt];
  return Object.freeze({
    dir,
    authGithub,
    authGraph,
    idp,
    tokens,
    anonymous,
    callerJwt,
    forgetSeen() {
      for (const p of pairs) {
        p.github.seen.length = 0;
        p.graph.seen.length = 0;
      }
    },
    subgraphCalls() {
      return pairs.reduce((n, p) => n + p.github.seen.length + p.graph.seen.length, 0);
    },
    async close() {
      await Promise.all(pairs.flatMap((p) => [p.github.close(), p.graph.close()]));
      await Promise.all([authGithub.close(), authGraph.close(), idp.close()]);
      await dir.cleanup();
    },
  });
}
