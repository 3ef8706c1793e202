/** The consent prompt (the popup opens from its button, inside the click) and the kit's progress, in words. */
import { useEffect, useRef } from 'react';
import type { ConsentProgress, ConsentPrompt } from 'credential-gateway/client';
import { SUBGRAPHS } from './subgraphs';

const titleOf = (service: string | undefined): string =>
  SUBGRAPHS.find((s) => s.name === service)?.provider ?? service ?? 'a provider';

export function ConsentPanel({ prompt, user, done }: { prompt: ConsentPrompt; user: string; done(): void }) {
  const provider = titleOf(prompt.service);
  const openRef = useRef<HTMLButtonElement>(null);
  // The prompt takes the focus when it shows up, so Enter opens the popup.
  useEffect(() => {
    openRef.current?.focus();
  }, []);
  return (
    <section className="consent" aria-labelledby="consent-title">
      <h2 id="consent-title">Consent needed: {provider}</h2>
      <p>
        The <code>{prompt.service ?? 'unknown'}</code> subgraph needs {user}'s permission to call {provider}. A window
        opens where you sign in at {provider} as {user} and allow access; this page then confirms the consent as {user},
        and runs the query again.
      </p>
      <div className="actions">
        <button
          ref={openRef}
          type="button"
          onClick={() => {
            prompt.open();
            done();
          }}
        >
          Open consent window for {provider}
        </button>
        <button
          type="button"
          className="secondary"
          onClick={() => {
            prompt.cancel();
            done();
          }}
        >
          Not now
        </button>
      </div>
    </section>
  );
}

const WORDS: Readonly<Record<ConsentProgress['status'], string>> = {
  waiting: 'Waiting for consent in the popup…',
  confirmed: 'Confirmed',
  cancelled: 'Cancelled',
  failed: 'Failed',
};

function describe(p: ConsentProgress): string {
  if (p.status === 'confirmed') return `connection ${p.connectionId} of ${p.providerId} is connected.`;
  if (p.status === 'failed') return `${p.code}: ${p.message ?? ''}`;
  return p.message ?? '';
}

/** A step as logged by the app: `seq` numbers the steps in the order they came, and keys them. */
export type LoggedProgress = ConsentProgress & { readonly seq: number };

export function ProgressLog({ progress }: { progress: readonly LoggedProgress[] }) {
  if (progress.length === 0) return null;
  return (
    <section aria-labelledby="progress-title">
      <h2 id="progress-title">Consent steps</h2>
      <ol className="progress" aria-live="polite">
        {progress.map((p) => (
          <li key={p.seq} className={`step ${p.status}`} data-status={p.status}>
            <strong>{titleOf(p.service)}</strong> — <span className="status-word">{WORDS[p.status]}</span> {describe(p)}
          </li>
        ))}
      </ol>
    </section>
  );
}
