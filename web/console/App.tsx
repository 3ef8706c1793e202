/** The console's shell: sign-in, then a navigation bar and the page the URL fragment names. */
import { useMemo, useState } from 'react';
import { ApolloProvider } from '@apollo/client/react';
import { createClient } from './client';
import { ConnectionPage } from './ConnectionPage';
import { KeysPage } from './KeysPage';
import { ProviderForm } from './ProviderForm';
import { ProviderPage } from './ProviderPage';
import { ProvidersPage } from './ProvidersPage';
import { hrefOf, useRoute, type Route } from './route';
import { clearCredential, loadCredential, saveCredential, type Credential } from './session';
import { SignIn } from './SignIn';
import { WebhooksPage } from './WebhooksPage';

export function App() {
  const [credential, setCredential] = useState<Credential | null>(loadCredential);
  const [notice, setNotice] = useState<string | null>(null);
  const client = useMemo(
    () =>
      credential
        ? createClient(credential, () => {
            clearCredential();
            setNotice(
              'The gateway no longer accepts your credential (a revoked key or an expired JWT): sign in again.',
            );
            setCredential(null);
          })
        : null,
    [credential],
  );

  const signIn = (c: Credential) => {
    saveCredential(c);
    setNotice(null);
    setCredential(c);
  };
  const signOut = () => {
    clearCredential();
    void client?.clearStore();
    setNotice('You are signed out.');
    setCredential(null);
  };

  if (credential === null || client === null) return <SignIn onSignedIn={signIn} notice={notice} />;
  return (
    <ApolloProvider client={client}>
      <Shell credential={credential} onSignOut={signOut} />
    </ApolloProvider>
  );
}

function Shell({ credential, onSignOut }: { readonly credential: Credential; readonly onSignOut: () => void }) {
  const route = useRoute();
  const section = route.page === 'keys' || route.page === 'webhooks' ? route.page : 'providers';
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">Credential gateway console</span>
        <nav aria-label="Sections">
          <a href={hrefOf({ page: 'providers' })} aria-current={section === 'providers' ? 'page' : undefined}>
            Providers
          </a>
          <a href={hrefOf({ page: 'keys' })} aria-current={section === 'keys' ? 'page' : undefined}>
            Encryption keys
          </a>
          <a href={hrefOf({ page: 'webhooks' })} aria-current={section === 'webhooks' ? 'page' : undefined}>
            Webhooks
          </a>
        </nav>
        <span className="who muted">
          Signed in with {credential.kind === 'apiKey' ? 'an admin API key' : 'an admin JWT'}
        </span>
        <button type="button" className="secondary" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <main id="main">
        <Page route={route} />
      </main>
    </>
  );
}

function Page({ route }: { readonly route: Route }) {
  switch (route.page) {
    case 'providers':
      return <ProvidersPage />;
    case 'new-provider':
      return <ProviderForm mode={{ kind: 'create' }} />;
    case 'edit-provider':
      return <ProviderForm key={route.id} mode={{ kind: 'edit', id: route.id }} />;
    case 'provider':
      return <ProviderPage key={route.id} id={route.id} />;
    case 'connection':
      return (
        <ConnectionPage
          key={`${route.providerId}/${route.connectionId}`}
          providerId={route.providerId}
          connectionId={route.connectionId}
        />
      );
    case 'keys':
      return <KeysPage />;
    case 'webhooks':
      return <WebhooksPage />;
  }
}
