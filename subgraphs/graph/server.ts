/**
 * A Microsoft-Graph-like SaaS subgraph: profile and mailbox of the token's subject. It extends
 * the shared `User` entity, so the gateway asks it for `_entities` the GitHub subgraph returned.
 *
 *   ISSUER=http://127.0.0.1:9000 AUDIENCE=api://graph npx tsx subgraphs/graph/server.ts
 */
import { GraphQLError, type GraphQLSchema } from 'graphql';
import { ownUser, tokenInfoOf } from '../shared/auth.js';
import { pick } from '../shared/fake.js';
import {
  claimsOf,
  runIfMain,
  serveSubgraph,
  subgraphSchema,
  type RunningSubgraph,
  type SubgraphContext,
  type SubgraphOptions,
} from '../shared/serve.js';

export const GRAPH_DEFAULT_PORT = 4102;
const MAILBOX_SIZE = 3;
const MAX_PAGE_SIZE = 50;
const SUBJECTS = ['Quarterly review', 'Lunch on Friday?', 'Your build passed', 'Welcome aboard', 'Re: notes'] as const;
const SENDERS = ['bob@example.com', 'carol@example.com', 'dave@example.com'] as const;
const JOB_TITLES = ['Engineer', 'Designer', 'Product manager', null] as const;

interface UserRef {
  readonly id: string;
}

interface Profile {
  readonly displayName: string;
  readonly mail: string;
  readonly jobTitle: string | null;
}

interface Message {
  readonly id: string;
  readonly subject: string;
  readonly from: string;
  readonly receivedAt: string;
}

function profile(id: string): Profile {
  const displayName = id.charAt(0).toUpperCase() + id.slice(1);
  return Object.freeze({ displayName, mail: `${id}@example.com`, jobTitle: pick(id, JOB_TITLES) });
}

function mailbox(id: string, first: number): Message[] {
  if (!Number.isInteger(first) || first < 0 || first > MAX_PAGE_SIZE) {
    throw new GraphQLError(`first must be between 0 and ${MAX_PAGE_SIZE}`, { extensions: { code: 'BAD_USER_INPUT' } });
  }
  return Array.from({ length: Math.min(first, MAILBOX_SIZE) }, (_, i) => {
    const messageId = `${id}-m${i + 1}`;
    return Object.freeze({
      id: messageId,
      subject: pick(messageId, SUBJECTS),
      from: pick(messageId, SENDERS),
      receivedAt: new Date(Date.UTC(2024, 0, MAILBOX_SIZE - i, 9)).toISOString(),
    });
  });
}

const resolvers = {
  Query: {
    me: (_: unknown, __: unknown, context: SubgraphContext): UserRef => ({ id: claimsOf(context).sub }),
    graphTokenInfo: (_: unknown, __: unknown, context: SubgraphContext) => tokenInfoOf(claimsOf(context)),
  },
  User: {
    // A mailbox is private: a reference to another user's is refused, whatever id the query named.
    __resolveReference: async (ref: UserRef, context: SubgraphContext): Promise<UserRef> => ({
      id: ownUser(ref, claimsOf(context)).id,
    }),
    profile: (user: UserRef): Profile => profile(user.id),
    mail: (user: UserRef, args: { first: number }): Message[] => mailbox(user.id, args.first),
  },
};

export function graphSchema(): GraphQLSchema {
  return subgraphSchema(new URL('./schema.graphql', import.meta.url), resolvers);
}

export function startGraphSubgraph(options: SubgraphOptions): Promise<RunningSubgraph> {
  return serveSubgraph(graphSchema(), options);
}

await runIfMain(import.meta.url, 'graph', startGraphSubgraph, GRAPH_DEFAULT_PORT);
