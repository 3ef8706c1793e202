/**
 * Names the operation on the span of the request Apollo Server is serving (the federated graph's
 * `graphql.operation`, the management API's HTTP span): name, type and the SHA-256 of its text,
 * never the text or its variables (they may hold anything, secrets included).
 */
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { activeSpan, ATTR } from './spans.js';

export function operationSpanPlugin<T extends BaseContext>(): ApolloServerPlugin<T> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, operationName, queryHash }) {
          const span = activeSpan();
          if (!span?.isRecording()) return;
          span.setAttributes({
            ...(operation && { [ATTR.operationType]: operation.operation }),
            [ATTR.operationHash]: queryHash,
            ...(operationName && { [ATTR.operationName]: operationName }),
          });
        },
      };
    },
  };
}
