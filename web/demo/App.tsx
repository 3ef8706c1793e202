/**
 * The demo app: sign in as a demo user, run one federated query, consent in a popup when a
 * subgraph asks for it (the consent kit's Apollo Link does the popup, the confirmation and the
 * retry), and see each subgraph's data beside the token that reached it.
 */
import { useMemo, useRef, useState } from 'react';
import { ApolloProvider, useLazyQuery } from '@apollo/client/react';
import type { ConsentPrompt } from 'credential-gateway/client';
import { createDemoClient } from './client';
import { ConsentPanel, type LoggedProgress, ProgressLog } from './Consent';
import { DEMO_QUERY } from './query';
import { Results } from './Results';
import { DEMO_USERS, isFresh, signIn, type DemoSession, type DemoUser } from './session';

export function App() {
  const session = useRef<DemoSession | null>(null);
  const [prompt, setPrompt] = useState<ConsentPrompt | null>(null);
  const [progress, setProgress] = useState<readonly LoggedProgress[]>([]);
  const client = useMemo(() => {
    let seq = 0;
    return createDemoClient({
      getToken: () => session.current?.jwt ?? null,
      prompt: (request) => setPrompt(request),
      onProgress: (p) => {
        seq += 1;
        const step: LoggedProgress = { ...p, seq };
        setProgress((all) => [...all, step]);
      },
    });
  }, []);
  return (
    <ApolloProvider client={client}>
      <Demo
        session={session}
        prompt={prompt}
        clearPrompt={() => setPrompt(null)}
        progress={progress}
        clearProgress={() => setProgress([])}
      />
    </ApolloProvider>
  );
}

interface DemoProps {
  readonly session: { current: DemoSession | null };
  readonly prompt: ConsentPrompt | null;
  clearPrompt(): void;
  readonly progress: readonly LoggedProgress[];
  clearProgress(): void;
}

function Demo({ session, prompt, clearPrompt, progress, clearProgress }: DemoProps) {
  const [user, setUser] = useState<DemoUser>('bob');
  const [signedIn, setSignedIn] = useState<DemoSession | null>(null);
  const [signInError, setSignInError] = useState<string | null>(null);
  const [runs, setRuns] = useState(0);
  const [run, result] = useLazyQuery(DEMO_QUERY, { fetchPolicy: 'no-cache', errorPolicy: 'all' });

  // A query is running, or the kit is asking for or waiting on a consent.
  const busy = result.loading || prompt !== null || progress.at(-1)?.status === 'waiting';

  const chooseUser = (next: DemoUser): void => {
    setUser(next);
    session.current = null;
    setSignedIn(null);
    setRuns(0);
    clearProgress();
    void result.client.clearStore();
  };

  const runQuery = async (): Promise<void> => {
    setSignInError(null);
    clearProgress();
    try {
      if (!isFresh(session.current, user)) session.current = await signIn(user);
      setSignedIn(session.current);
    } catch (e) {
      setSignInError((e as Error).message);
      return;
    }
    setRuns((n) => n + 1);
    void run().catch(() => {});
  };

  return (
    <main>
      <header>
        <h1>Credential gateway demo</h1>
        <p className="muted">
          One federated GraphQL query; each subgraph is called with its own token for the signed-in user.
        </p>
      </header>

      <section aria-labelledby="who">
        <h2 id="who">1. Who are you?</h2>
        <fieldset className="users">
          <legend>Demo user</legend>
          {DEMO_USERS.map((u) => (
            <label key={u}>
              <input type="radio" name="user" value={u} checked={user === u} onChange={() => chooseUser(u)} /> {u}
            </label>
          ))}
        </fieldset>
        <p className="muted" aria-live="polite">
          {signedIn ? (
            <>
              Signed in as <strong>{signedIn.user}</strong>: a JWT from the demo issuer <code>{signedIn.issuer}</code>,
              kept in this page's memory only.
            </>
          ) : (
            'Not signed in yet: running the query signs you in.'
          )}
        </p>
        {signInError && (
          <p role="alert" className="problem">
            {signInError}
          </p>
        )}
      </section>

      <section aria-labelledby="run">
        <h2 id="run">2. Run the federated query</h2>
        <button type="button" onClick={() => void runQuery()} disabled={busy}>
          {runs === 0 || busy ? 'Run query' : 'Run again'}
        </button>
        {result.loading && <span className="muted"> Running…</span>}
      </section>

      {prompt && <ConsentPanel prompt={prompt} user={user} done={clearPrompt} />}
      <ProgressLog progress={progress} />

      {runs > 0 && !result.loading && (result.data || result.error) && (
        <Results data={result.data ?? null} error={result.error ?? null} />
      )}
    </main>
  );
}
