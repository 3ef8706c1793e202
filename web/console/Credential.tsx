/**
 * The credential an API_KEY or BASIC connection holds: typed by the admin (an API key, or a
 * username and password), write-only, shown only as "set (never shown)", rotated by typing a new one.
 */
import { useState, type FormEvent } from 'react';
import { useMutation } from '@apollo/client/react';
import { UPDATE_CONNECTION, type Connection, type StaticCredentialKind } from './api';
import { formErrors, NO_ERRORS, type FormErrors } from './errors';
import { ErrorList, Field } from './ui';

export interface CredentialValues {
  readonly apiKey: string;
  readonly username: string;
  readonly password: string;
}

export const NO_CREDENTIAL: CredentialValues = { apiKey: '', username: '', password: '' };

/** The API's paths for the credential fields, for errors shown next to them. */
export const CREDENTIAL_FIELDS = ['input.apiKey', 'input.username', 'input.password'];

/** The input fields of the kind, empty ones left out so that the API names what is missing. */
export function credentialInput(kind: StaticCredentialKind, values: CredentialValues): Record<string, string> {
  const picked: Record<string, string> =
    kind === 'API_KEY' ? { apiKey: values.apiKey } : { username: values.username, password: values.password };
  return Object.fromEntries(Object.entries(picked).filter(([, v]) => v !== ''));
}

interface FieldsProps {
  readonly kind: StaticCredentialKind;
  readonly values: CredentialValues;
  readonly onChange: (update: (v: CredentialValues) => CredentialValues) => void;
  readonly errors: FormErrors;
  /** A rotation: the labels say "new", and the hint says the old one stops being served. */
  readonly rotating?: boolean;
}

export function CredentialFields({ kind, values, onChange, errors, rotating = false }: FieldsProps) {
  const hint = rotating
    ? 'Write-only. Replaces the stored one: the old one is no longer sent, on any replica.'
    : 'Write-only: it is stored encrypted and never shown again.';
  if (kind === 'API_KEY') {
    return (
      <Field
        label={rotating ? 'New API key' : 'API key'}
        name="input.apiKey"
        type="password"
        autoComplete="new-password"
        required
        value={values.apiKey}
        onChange={(apiKey) => onChange((v) => ({ ...v, apiKey }))}
        error={errors.byField.get('input.apiKey')}
        hint={hint}
      />
    );
  }
  return (
    <>
      <Field
        label="Username"
        name="input.username"
        required
        value={values.username}
        onChange={(username) => onChange((v) => ({ ...v, username }))}
        error={errors.byField.get('input.username')}
        hint={rotating ? 'Both are replaced together: type the username again.' : 'No colon.'}
      />
      <Field
        label={rotating ? 'New password' : 'Password'}
        name="input.password"
        type="password"
        autoComplete="new-password"
        required
        value={values.password}
        onChange={(password) => onChange((v) => ({ ...v, password }))}
        error={errors.byField.get('input.password')}
        hint={hint}
      />
    </>
  );
}

/**
 * "Credential": whether one is stored, and a form that rotates it. The rotation carries no expected
 * version: it replaces the whole credential, so there is nothing of another admin's edit to lose.
 */
export function CredentialPanel({
  connection,
  kind,
}: {
  readonly connection: Connection;
  readonly kind: StaticCredentialKind;
}) {
  const [values, setValues] = useState<CredentialValues>(NO_CREDENTIAL);
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [rotated, setRotated] = useState(false);
  const [rotate, { loading }] = useMutation<{ updateConnection: Connection }>(UPDATE_CONNECTION);
  const what = kind === 'API_KEY' ? 'API key' : 'password';
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setErrors(NO_ERRORS);
    setRotated(false);
    try {
      await rotate({
        variables: { providerId: connection.providerId, id: connection.id, input: credentialInput(kind, values) },
      });
      setRotated(true);
    } catch (e) {
      setErrors(formErrors(e, CREDENTIAL_FIELDS));
    } finally {
      // The typed secret leaves the page whatever the outcome.
      setValues(NO_CREDENTIAL);
    }
  };
  return (
    <section className="panel" aria-labelledby="credential-heading">
      <h2 id="credential-heading">Credential</h2>
      <p data-testid="credential-state">
        <strong>Credential:</strong> {connection.hasCredential ? 'set (never shown)' : 'not set'}. It never expires;
        rotate it here when it leaks or is due.
      </p>
      <form onSubmit={submit} noValidate className="form" aria-label={`Rotate the ${what}`}>
        <CredentialFields kind={kind} values={values} onChange={setValues} errors={errors} rotating />
        <ErrorList errors={errors.general} />
        <div className="actions">
          <button type="submit" disabled={loading}>
            {loading ? 'Rotating…' : `Rotate ${what}`}
          </button>
          <span aria-live="polite" data-testid="rotate-result">
            {rotated ? `✓ The ${what} was replaced; the old one is no longer sent.` : ''}
          </span>
        </div>
      </form>
    </section>
  );
}
