/**
 * A GitHub-like SaaS subgraph: the token's subject is the viewer, who owns two repositories.
 *
 *   ISSUER=http://127.0.0.1:9000 AUDIENCE=api://github npx tsx subgraphs/github/server.ts
 */
import type { GraphQLSchema } from 'graphql';
import { ownUser, tokenInfoOf } from '../shared/auth.js';
import { stableNumber } from '../shared/fake.js';
import {
  claimsOf,
  runIfMain,
  serveSubgraph,
  subgraphSchema,
  type RunningSubgraph,
  type SubgraphContext,
  type SubgraphOptions,
} from '../shared/serve.js';

export const GITHUB_DEFAULT_PORT = 4101;
const REPOSITORY_NAMES = ['dotfiles', 'notes'] as const;
const MAX_STARS = 500;

interface UserRef {
  readonly id: string;
}

interface Repository {
  readonly id: string;
  readonly name: string;
  readonly owner: UserRef;
  readonly stars: number;
}

function repository(owner: string, name: string): Repository {
  const id = `${owner}/${name}`;
  return Object.freeze({ id, name, owner: Object.freeze({ id: owner }), stars: stableNumber(id, MAX_STARS) });
}

const resolvers = {
  Query: {
    viewer: (_: unknown, __: unknown, context: SubgraphContext): UserRef => ({ id: claimsOf(context).sub }),
    // Repositories are public, as on GitHub: anyone may look one up by owner.
    repository: (_: unknown, args: { owner: string; name: string }): Repository | null =>
      (REPOSITORY_NAMES as readonly string[]).includes(args.name) ? repository(args.owner, args.name) : null,
    githubTokenInfo: (_: unknown, __: unknown, context: SubgraphContext) => tokenInfoOf(claimsOf(context)),
  },
  User: {
    // A reference from another subgraph resolves only to the token's own user (see ownUser).
    __resolveReference: async (ref: UserRef, context: SubgraphContext): Promise<UserRef> => ({
      id: ownUser(ref, claimsOf(context)).id,
    }),
    login: (user: UserRef): string => user.id,
    repositories: (user: UserRef): Repository[] => REPOSITORY_NAMES.map((name) => repository(user.id, name)),
  },
};

export function githubSchema(): GraphQLSchema {
  return subgraphSchema(new URL('./schema.graphql', import.meta.url), resolvers);
}

export function startGithubSubgraph(options: SubgraphOptions): Promise<RunningSubgraph> {
  return serveSubgraph(githubSchema(), options);
}

await runIfMain(import.meta.url, 'github', startGithubSubgraph, GITHUB_DEFAULT_PORT);
