/** The demo's Apollo Client: the consent kit's link in front, then the user's JWT, then HTTP to /graphql. */
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client';
import { SetContextLink } from '@apollo/client/link/context';
import { createConsentLink, type ConsentProgress, type ConsentPrompt } from 'credential-gateway/client';

export interface DemoClientOptions {
  /** The signed-in demo user's JWT, held in memory by the page only. */
  getToken(): string | null;
  prompt(request: ConsentPrompt): void;
  onProgress(progress: ConsentProgress): void;
}

export function createDemoClient(options: DemoClientOptions): ApolloClient {
  const bearer = new SetContextLink(({ headers }) => {
    const token = options.getToken();
    return { headers: { ...headers, ...(token !== null && { authorization: `Bearer ${token}` }) } };
  });
  // The page is served by the gateway: same origin, so no CORS and the done page may post to it.
  const consent = createConsentLink({
    gatewayOrigin: window.location.origin,
    getToken: options.getToken,
    prompt: options.prompt,
    onProgress: options.onProgress,
  });
  return new ApolloClient({
    cache: new InMemoryCache(),
    link: ApolloLink.from([consent, bearer, new HttpLink({ uri: '/graphql' })]),
  });
}
