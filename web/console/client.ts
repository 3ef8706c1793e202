/**
 * The console's only way to the gateway: Apollo Client against the public `/admin/graphql`, with
 * the admin's credential on every request and no cookie.
 */
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { ErrorLink } from '@apollo/client/link/error';
import { hasCode } from './errors';
import { headersFor, type Credential } from './session';

export const ADMIN_GRAPHQL_PATH = '/admin/graphql';

/**
 * `onRefused` is told when the gateway stops accepting the credential (a revoked key, an expired
 * JWT): the console then signs out instead of showing the same error on every screen.
 */
export function createClient(credential: Credential, onRefused?: () => void): ApolloClient {
  const http = new HttpLink({ uri: ADMIN_GRAPHQL_PATH, headers: headersFor(credential), credentials: 'omit' });
  const refused = new ErrorLink(({ error }) => {
    if (onRefused && hasCode(error, 'UNAUTHENTICATED')) onRefused();
  });
  return new ApolloClient({
    link: ApolloLink.from([refused, http]),
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
