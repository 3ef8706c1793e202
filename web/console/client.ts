/**
 * The console's only way to the gateway: Apollo Client against the public `/admin/graphql`, with
 * the admin's credential on every request and no cookie.
 */
import { ApolloClient, HttpLink, InMemoryCache } from '@apollo/client';
import { headersFor, type Credential } from './session';

export const ADMIN_GRAPHQL_PATH = '/admin/graphql';

export function createClient(credential: Credential): ApolloClient {
  return new ApolloClient({
    link: new HttpLink({ uri: ADMIN_GRAPHQL_PATH, headers: headersFor(credential), credentials: 'omit' }),
    cache: new InMemoryCache({
      typePolicies: {
        // Connection ids are unique within their provider only.
        Connection: { keyFields: ['providerId', 'id'] },
        AccessPolicy: { keyFields: false },
        IdentityProvider: { keyFields: ['name'] },
        KeyRotation: { keyFields: [] },
      },
    }),
    defaultOptions: { watchQuery: { fetchPolicy: 'cache-and-network' } },
  });
}
