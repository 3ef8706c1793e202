/**
 * Create a provider from the catalog, or edit one. The form is generated from the identity
 * provider's parameter metadata; secrets are write-only (an edit shows that one is set, never its
 * value); an edit sends only what the admin changed, guarded by the version it started from, so a
 * version conflict can reload the record and re-apply the same changes.
 */
import { useState, type FormEvent } from 'react';
import { useApolloClient, useMutation, useQuery } from '@apollo/client/react';
import {
  CATALOG,
  CREATE_PROVIDER,
  holdsStaticCredential,
  PROVIDER,
  UPDATE_PROVIDER,
  type GrantType,
  type IdentityProvider,
  type ParameterSpec,
  type Provider,
} from './api';
import { apiErrors, formErrors, hasCode, NO_ERRORS, type FormErrors } from './errors';
import { hrefOf, navigate } from './route';
import { bindField, ConflictNotice, ErrorList, Field, Loading, PageTitle, Prose, Select } from './ui';

type Mode = { readonly kind: 'create' } | { readonly kind: 'edit'; readonly id: string };

interface Values {
  id: string;
  displayName: string;
  clientId: string;
  clientSecret: string;
  scopes: string;
  grantType: GrantType;
  parameters: Record<string, string>;
}

export const GRANT_LABEL: Record<GrantType, string> = {
  AUTHORIZATION_CODE: 'Authorization code (users consent)',
  CLIENT_CREDENTIALS: 'Client credentials (no user)',
  API_KEY: 'API key (each connection holds its key)',
  BASIC: 'Username and password (each connection holds its own)',
};

/** What a connection of an API_KEY or BASIC provider holds, in words. */
export const CREDENTIAL_WORDS: Record<'API_KEY' | 'BASIC', string> = {
  API_KEY: 'an API key',
  BASIC: 'a username and password',
};

const splitScopes = (s: string): string[] => s.split(/[\s,]+/).filter(Boolean);

function initialFor(entry: IdentityProvider, grantType: GrantType): Values {
  return {
    id: '',
    displayName: '',
    clientId: '',
    clientSecret: '',
    scopes: entry.defaultScopes.join(' '),
    grantType,
    parameters: Object.fromEntries(
      entry.parameters.filter((p) => p.level === 'PROVIDER' && p.default !== null).map((p) => [p.name, p.default!]),
    ),
  };
}

function valuesOf(p: Provider): Values {
  return {
    id: p.id,
    displayName: p.displayName,
    clientId: p.clientId ?? '',
    clientSecret: '',
    scopes: p.scopes.join(' '),
    grantType: p.grantType,
    parameters: Object.fromEntries(p.parameters.map((x) => [x.name, x.value])),
  };
}

const specsFor = (entry: IdentityProvider, grantType: GrantType, level: ParameterSpec['level']) =>
  entry.parameters.filter((p) => p.level === level && p.grantTypes.includes(grantType));

const fieldNames = (entry: IdentityProvider | undefined): string[] => [
  'input.id',
  'input.displayName',
  'input.identityProvider',
  'input.grantType',
  'input.clientId',
  'input.clientSecret',
  'input.scopes',
  'input.parameters',
  ...(entry?.parameters.map((p) => `input.parameters.${p.name}`) ?? []),
];

/** What the admin changed against the record the form was opened on: the update's input. */
function patchOf(original: Values, values: Values, specs: readonly ParameterSpec[]): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  if (values.displayName !== original.displayName) patch['displayName'] = values.displayName;
  if (values.clientId !== original.clientId) patch['clientId'] = values.clientId;
  if (values.clientSecret !== '') patch['clientSecret'] = values.clientSecret;
  if (values.scopes !== original.scopes) patch['scopes'] = splitScopes(values.scopes);
  const changed = specs.filter(
    (s) =>
      (values.parameters[s.name] ?? '') !== (original.parameters[s.name] ?? '') &&
      !(s.type === 'SECRET' && (values.parameters[s.name] ?? '') === ''),
  );
  // The update replaces the parameter list: send them all once one changed (secrets only when typed anew).
  if (changed.length > 0) {
    patch['parameters'] = specs
      .filter((s) => s.type !== 'SECRET' || (values.parameters[s.name] ?? '') !== '')
      .map((s) => ({ name: s.name, value: values.parameters[s.name] ?? '' }));
  }
  return patch;
}

export function ProviderForm({ mode }: { readonly mode: Mode }) {
  const catalog = useQuery<{ identityProviders: IdentityProvider[] }>(CATALOG, { fetchPolicy: 'cache-first' });
  const existing = useQuery<{ credentialProvider: Provider | null }>(PROVIDER, {
    variables: { id: mode.kind === 'edit' ? mode.id : '' },
    skip: mode.kind !== 'edit',
    fetchPolicy: 'network-only',
  });
  const entries = catalog.data?.identityProviders;
  const loadError = catalog.error ?? existing.error;
  if (loadError) return <ErrorList errors={apiErrors(loadError)} />;
  if (entries === undefined || (mode.kind === 'edit' && existing.data === undefined))
    return <Loading what="the form" />;
  if (mode.kind === 'edit') {
    const provider = existing.data?.credentialProvider;
    if (!provider) return <p role="alert">There is no provider {mode.id}.</p>;
    const entry = entries.find((e) => e.name === provider.identityProvider);
    if (entry === undefined)
      return <p role="alert">Identity provider {provider.identityProvider} is no longer in the catalog.</p>;
    return <EditForm entry={entry} provider={provider} />;
  }
  return <CreateForm entries={entries} />;
}

function CreateForm({ entries }: { readonly entries: readonly IdentityProvider[] }) {
  const [entryName, setEntryName] = useState(entries[0]!.name);
  const entry = entries.find((e) => e.name === entryName) ?? entries[0]!;
  const [values, setValues] = useState<Values>(() => initialFor(entry, entry.grantTypes[0]!));
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const bind = bindField(values, setValues, errors);
  const [create, { loading }] = useMutation<{ createCredentialProvider: Provider }>(CREATE_PROVIDER);

  const chooseEntry = (name: string) => {
    const next = entries.find((e) => e.name === name)!;
    setEntryName(name);
    setValues((v) => ({
      ...initialFor(next, next.grantTypes[0]!),
      id: v.id,
      displayName: v.displayName,
      clientId: v.clientId,
    }));
    setErrors(NO_ERRORS);
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const specs = specsFor(entry, values.grantType, 'PROVIDER');
    // API_KEY and BASIC providers have no OAuth client and no scopes: the API refuses a client for them.
    const oauth = !holdsStaticCredential(values.grantType);
    const input = {
      id: values.id,
      ...(values.displayName !== '' && { displayName: values.displayName }),
      identityProvider: entry.name,
      grantType: values.grantType,
      ...(oauth && { clientId: values.clientId, scopes: splitScopes(values.scopes) }),
      ...(oauth && values.clientSecret !== '' && { clientSecret: values.clientSecret }),
      parameters: specs
        .filter((s) => (values.parameters[s.name] ?? '') !== '')
        .map((s) => ({ name: s.name, value: values.parameters[s.name]! })),
    };
    try {
      const res = await create({ variables: { input } });
      setValues((v) => ({ ...v, clientSecret: '' }));
      const created = res.data?.createCredentialProvider;
      if (created) navigate({ page: 'provider', id: created.id });
    } catch (e) {
      setErrors(formErrors(e, fieldNames(entry)));
    }
  };

  return (
    <>
      <PageTitle>New credential provider</PageTitle>
      <p className="muted">Choose an identity provider from the catalog; the form asks for what it needs.</p>
      <form onSubmit={submit} noValidate className="form">
        <Select
          label="Identity provider"
          name="input.identityProvider"
          value={entry.name}
          options={entries.map((e) => ({ value: e.name, label: `${e.displayName} (${e.name})` }))}
          onChange={chooseEntry}
          error={errors.byField.get('input.identityProvider')}
        />
        {entry.docsUrl ? (
          <p className="hint standalone">Set-up guide of the identity provider: {entry.docsUrl}</p>
        ) : null}
        <Select
          label="Grant type"
          {...bind('grantType')}
          options={entry.grantTypes.map((g) => ({ value: g, label: GRANT_LABEL[g] }))}
        />
        <Field
          label="Provider id"
          {...bind('id')}
          required
          hint="Used in URLs and bindings; no spaces or * # & + : < > ? /."
        />
        <CommonFields entry={entry} values={values} setValues={setValues} errors={errors} secretSet={false} />
        <ErrorList errors={errors.general} />
        <div className="actions">
          <button type="submit" disabled={loading}>
            {loading ? 'Creating…' : 'Create provider'}
          </button>
          <a className="button secondary" href={hrefOf({ page: 'providers' })}>
            Cancel
          </a>
        </div>
      </form>
    </>
  );
}

interface CommonProps {
  readonly entry: IdentityProvider;
  readonly values: Values;
  readonly setValues: (update: (v: Values) => Values) => void;
  readonly errors: FormErrors;
  readonly secretSet: boolean;
  /** Names of secret parameters that have a value stored. */
  readonly secretParametersSet?: ReadonlySet<string>;
}

function CommonFields({ entry, values, setValues, errors, secretSet, secretParametersSet }: CommonProps) {
  const bind = bindField(values, setValues, errors);
  const specs = specsFor(entry, values.grantType, 'PROVIDER');
  const connectionSpecs = specsFor(entry, values.grantType, 'CONNECTION');
  const setParam = (name: string, value: string) =>
    setValues((v) => ({ ...v, parameters: { ...v.parameters, [name]: value } }));
  return (
    <>
      <Field label="Display name" {...bind('displayName')} hint="Defaults to the id." />
      {holdsStaticCredential(values.grantType) ? (
        <p className="notice" data-testid="no-client">
          No OAuth client and no consent: each connection holds {CREDENTIAL_WORDS[values.grantType]}, typed on the
          connection, write-only and never expiring.
        </p>
      ) : (
        <OAuthClientFields entry={entry} values={values} setValues={setValues} errors={errors} secretSet={secretSet} />
      )}
      {specs.length > 0 ? (
        <fieldset>
          <legend>Parameters of {entry.displayName}</legend>
          {specs.map((spec) => (
            <ParameterField
              key={spec.name}
              spec={spec}
              value={values.parameters[spec.name] ?? ''}
              onChange={(value) => setParam(spec.name, value)}
              error={errors.byField.get(`input.parameters.${spec.name}`)}
              isSet={secretParametersSet?.has(spec.name) ?? false}
            />
          ))}
          {errors.byField.get('input.parameters') ? (
            <p className="field-error" data-field="input.parameters">
              <span aria-hidden="true">⚠ </span>
              {errors.byField.get('input.parameters')}
            </p>
          ) : null}
        </fieldset>
      ) : null}
      {connectionSpecs.length > 0 ? (
        <p className="hint">Set on each connection: {connectionSpecs.map((s) => s.name).join(', ')}.</p>
      ) : null}
    </>
  );
}

/** The OAuth client and scopes: what every grant type but API_KEY and BASIC needs. */
function OAuthClientFields({ entry, values, setValues, errors, secretSet }: Omit<CommonProps, 'secretParametersSet'>) {
  const bind = bindField(values, setValues, errors);
  return (
    <>
      <Field
        label="Client id"
        {...bind('clientId')}
        required
        hint="The OAuth client registered at the identity provider."
      />
      <Field
        label="Client secret"
        {...bind('clientSecret')}
        type="password"
        autoComplete="new-password"
        hint={
          secretSet
            ? 'A client secret is set (it is never shown). Leave empty to keep it; type a new one to replace it.'
            : 'Write-only: it is stored encrypted and never shown again.'
        }
      />
      <Field
        label="Scopes"
        {...bind('scopes')}
        hint={`Separated by spaces.${entry.defaultScopes.length > 0 ? ` Default: ${entry.defaultScopes.join(' ')}` : ''}`}
      />
    </>
  );
}

function ParameterField({
  spec,
  value,
  onChange,
  error,
  isSet,
}: {
  readonly spec: ParameterSpec;
  readonly value: string;
  readonly onChange: (v: string) => void;
  readonly error: string | undefined;
  readonly isSet: boolean;
}) {
  const name = `input.parameters.${spec.name}`;
  if (spec.type === 'BOOL') {
    return (
      <Select
        label={spec.name}
        name={name}
        value={value === '' ? '' : value}
        options={[
          { value: '', label: spec.default === null ? 'Not set' : `Default (${spec.default})` },
          { value: 'true', label: 'true' },
          { value: 'false', label: 'false' },
        ]}
        onChange={onChange}
        error={error}
        hint={<Prose text={spec.description} />}
      />
    );
  }
  const secretHint =
    spec.type === 'SECRET'
      ? isSet
        ? ' A value is set (never shown); type a new one to replace it.'
        : ' Write-only.'
      : '';
  return (
    <Field
      label={spec.name}
      name={name}
      type={spec.type === 'SECRET' ? 'password' : 'text'}
      autoComplete={spec.type === 'SECRET' ? 'new-password' : 'off'}
      required={spec.required}
      value={value}
      onChange={onChange}
      error={error}
      placeholder={spec.default ?? undefined}
      hint={
        <Prose
          text={`${spec.description}${spec.default !== null ? ` Default: \`${spec.default}\`.` : ''}${secretHint}`}
        />
      }
    />
  );
}

function EditForm({ entry, provider }: { readonly entry: IdentityProvider; readonly provider: Provider }) {
  const client = useApolloClient();
  // The record the admin started from: what "changed" means, and the version the update expects.
  const [base, setBase] = useState(() => ({ values: valuesOf(provider), version: provider.version }));
  const [values, setValues] = useState<Values>(() => {
    const v = valuesOf(provider);
    const secretNames = new Set(entry.parameters.filter((p) => p.type === 'SECRET').map((p) => p.name));
    return { ...v, parameters: Object.fromEntries(Object.entries(v.parameters).filter(([k]) => !secretNames.has(k))) };
  });
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [conflict, setConflict] = useState(false);
  const [update, { loading }] = useMutation<{ updateCredentialProvider: Provider }>(UPDATE_PROVIDER);
  const specs = specsFor(entry, provider.grantType, 'PROVIDER');
  const secretParametersSet = new Set(provider.parameters.map((p) => p.name));

  const save = async (expectedVersion: number, input: Record<string, unknown>) => {
    setErrors(NO_ERRORS);
    setConflict(false);
    try {
      await update({ variables: { id: provider.id, input, expectedVersion } });
      setValues((v) => ({ ...v, clientSecret: '' }));
      navigate({ page: 'provider', id: provider.id });
    } catch (e) {
      if (hasCode(e, 'VERSION_CONFLICT')) setConflict(true);
      else setErrors(formErrors(e, fieldNames(entry)));
    }
  };

  /**
   * Reloads the record and applies the admin's same changes (against the record they started
   * from) on top of it: what the other admin changed meanwhile, and this admin did not, stays.
   */
  const reloadAndReapply = async () => {
    const changes = patchOf(base.values, values, specs);
    try {
      const res = await client.query<{ credentialProvider: Provider | null }>({
        query: PROVIDER,
        variables: { id: provider.id },
        fetchPolicy: 'network-only',
      });
      const fresh = res.data?.credentialProvider;
      if (!fresh) {
        setConflict(false);
        setErrors({
          byField: new Map(),
          general: [{ code: 'NOT_FOUND', message: `provider '${provider.id}' was deleted meanwhile`, field: null }],
        });
        return;
      }
      setBase((b) => ({ ...b, version: fresh.version }));
      await save(fresh.version, changes);
    } catch (e) {
      setErrors(formErrors(e, fieldNames(entry)));
    }
  };

  return (
    <>
      <PageTitle>Edit {provider.displayName}</PageTitle>
      <p className="muted">
        {entry.displayName} · {GRANT_LABEL[provider.grantType]} · id <code>{provider.id}</code> (fixed)
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save(base.version, patchOf(base.values, values, specs));
        }}
        noValidate
        className="form"
      >
        {conflict ? (
          <ConflictNotice
            what="provider"
            undone="your edit was not saved"
            action="Reload the provider and re-apply my changes"
            onAction={() => void reloadAndReapply()}
          />
        ) : null}
        <CommonFields
          entry={entry}
          values={values}
          setValues={setValues}
          errors={errors}
          secretSet={provider.hasClientSecret}
          secretParametersSet={secretParametersSet}
        />
        <ErrorList errors={errors.general} />
        <div className="actions">
          <button type="submit" disabled={loading}>
            {loading ? 'Saving…' : 'Save changes'}
          </button>
          <a className="button secondary" href={hrefOf({ page: 'provider', id: provider.id })}>
            Cancel
          </a>
        </div>
      </form>
    </>
  );
}
