/** The management graph: SDL from schema/, resolvers, authentication enforced per operation. */
import { readFileSync } from 'node:fs';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import type { OperationDefinitionNode } from 'graphql';
import type { Logger } from '../log.js';
import { createErrorFormatter, toRequestError } from '../graphql/errors.js';
import { GRAPHQL_PARSE_OPTIONS, graphqlLimitRules, storableTextPlugin } from '../graphql/limits.js';
import { operationSpanPlugin } from '../tracing/apolloPlugin.js';
import type { AdminContext } from './context.js';
import { adminResolvers } from './resolvers.js';
import { explorationLandingPage } from '../graphql/landingPage.js';

const SCHEMA_FILE = new URL('../../schema/admin.graphql', import.meta.url);

export function adminTypeDefs(): string {
  return readFileSync(SCHEMA_FILE, 'utf8');
}

/** Introspection alone (what Sandbox sends to draw the schema) needs no credentials. */
function isIntrospectionOnly(operation: OperationDefinitionNode): boolean {
  return operation.selectionSet.selections.every(
    (s) =>
      s.kind === 'Field' && (s.name.value === '__schema' || s.name.value === '__type' || s.name.value === '__typename'),
  );
}

const requireAdmin: ApolloServerPlugin<AdminContext> = {
  async requestDidStart() {
    return {
      async didResolveOperation({ operation, contextValue }) {
        if (contextValue.principal === null && !(operation && isIntrospectionOnly(operation))) {
          throw toRequestError(contextValue.authError!);
        }
      },
    };
  },
};

export interface AdminApolloOptions {
  readonly exploration: boolean;
  readonly logger: Logger;
}

export function createAdminApollo(options: AdminApolloOptions): ApolloServer<AdminContext> {
  return new ApolloServer<AdminContext>({
    typeDefs: adminTypeDefs(),
    resolvers: adminResolvers,
    introspection: options.exploration,
    // Without exploration, errors do not spell the schema out either ("Did you mean ...?").
    hideSchemaDetailsFromClientErrors: !options.exploration,
    csrfPrevention: true,
    // The app stops its servers itself, HTTP first (src/server/wire.ts). Apollo's own signal handler
    // would stop this one concurrently, and a second stop() during a stop never settles (5.5.1).
    stopOnTerminationSignals: false,
    parseOptions: GRAPHQL_PARSE_OPTIONS,
    validationRules: graphqlLimitRules(),
    includeStacktraceInErrorResponses: false,
    formatError: createErrorFormatter(options.logger),
    plugins: [
      requireAdmin,
      storableTextPlugin<AdminContext>(),
      operationSpanPlugin<AdminContext>(),
      options.exploration
        ? explorationLandingPage({ authHeader: 'x-api-key: <admin API key>' })
        : ApolloServerPluginLandingPageDisabled(),
    ],
  });
}
