/** Sign-in: the admin's API key or JWT is tried against /admin/graphql before it is kept. */
import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { WHO_AM_I } from './api';
import { createClient } from './client';
import { apiErrors, type ApiError } from './errors';
import type { Credential, CredentialKind } from './session';

const KIND_LABEL: Record<CredentialKind, string> = { apiKey: 'Admin API key', jwt: 'Admin JWT' };

function explain(errors: readonly ApiError[], kind: CredentialKind): string {
  const e = errors[0];
  if (e === undefined) return 'Sign-in failed.';
  const what = kind === 'apiKey' ? 'this API key' : 'this JWT';
  if (e.code === 'UNAUTHENTICATED') return `The gateway did not accept ${what}: ${e.message}.`;
  if (e.code === 'FORBIDDEN')
    return `${kind === 'apiKey' ? 'This API key' : 'This JWT'} is valid but not an admin's: ${e.message}.`;
  return `Sign-in failed (${e.code}): ${e.message}`;
}

export function SignIn({
  onSignedIn,
  notice,
}: {
  readonly onSignedIn: (credential: Credential) => void;
  readonly notice: string | null;
}) {
  const [kind, setKind] = useState<CredentialKind>('apiKey');
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const inputId = useId();
  const errorId = useId();
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const trimmed = value.trim();
    if (trimmed === '') {
      setError(`Enter your ${KIND_LABEL[kind].toLowerCase()}.`);
      return;
    }
    setBusy(true);
    setError(null);
    const credential = { kind, value: trimmed };
    const client = createClient(credential);
    try {
      await client.query({ query: WHO_AM_I, fetchPolicy: 'network-only' });
      onSignedIn(credential);
    } catch (e) {
      setError(explain(apiErrors(e), kind));
      setBusy(false);
    } finally {
      client.stop();
    }
  };

  return (
    <main className="signin">
      <h1 ref={heading} tabIndex={-1}>
        Credential gateway console
      </h1>
      {notice ? (
        <p className="notice" role="status">
          {notice}
        </p>
      ) : null}
      <p className="muted">
        Sign in with an admin API key or an admin JWT. It is kept in this tab only, until you sign out or close it.
      </p>
      <form onSubmit={submit} noValidate>
        <fieldset>
          <legend>Sign in with</legend>
          {(['apiKey', 'jwt'] as const).map((k) => (
            <label key={k} className="radio">
              <input type="radio" name="kind" value={k} checked={kind === k} onChange={() => setKind(k)} />{' '}
              {k === 'apiKey' ? 'API key' : 'JWT'}
            </label>
          ))}
        </fieldset>
        <div className={error ? 'field invalid' : 'field'}>
          <label htmlFor={inputId}>{KIND_LABEL[kind]}</label>
          <input
            id={inputId}
            name="credential"
            type="password"
            autoComplete="off"
            value={value}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? errorId : undefined}
            onChange={(e) => setValue(e.target.value)}
          />
          {error ? (
            <p className="field-error" id={errorId} role="alert">
              <span aria-hidden="true">⚠ </span>
              {error}
            </p>
          ) : null}
        </div>
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
