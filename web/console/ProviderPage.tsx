/** One provider: its settings and redirect URL, and its connections a page at a time, filtered by status. */
import { useState, type FormEvent } from 'react';
import { useLazyQuery, useMutation, useQuery } from '@apollo/client/react';
import {
  CONNECTIONS,
  CONNECTIONS_PAGE_SIZE,
  CREATE_CONNECTION,
  DELETE_PROVIDER,
  holdsStaticCredential,
  PROVIDER,
  type Connection,
  type ConnectionStatus,
  type Provider,
} from './api';
import { DeleteWithConfirm } from './DeleteWithConfirm';
import { apiErrors, formErrors, NO_ERRORS, type FormErrors } from './errors';
import { Pager, useCursors } from './Pager';
import {
  CREDENTIAL_FIELDS,
  CredentialFields,
  credentialInput,
  NO_CREDENTIAL,
  type CredentialValues,
} from './Credential';
import { CREDENTIAL_WORDS, GRANT_LABEL } from './ProviderForm';
import { Counts } from './ProvidersPage';
import { hrefOf, navigate } from './route';
import { bindField, CopyField, ErrorList, Field, Loading, PageTitle, Select, StatusBadge, Time } from './ui';

type StatusFilter = ConnectionStatus | 'ALL';

const FILTERS: readonly { readonly value: StatusFilter; readonly label: string }[] = [
  { value: 'ALL', label: 'All statuses' },
  { value: 'CONNECTED', label: 'Connected' },
  { value: 'NOT_CONNECTED', label: 'Not connected' },
  { value: 'ERROR', label: 'Error' },
];

export function ProviderPage({ id }: { readonly id: string }) {
  const { data, error, loading } = useQuery<{ credentialProvider: Provider | null }>(PROVIDER, { variables: { id } });
  const provider = data?.credentialProvider;
  if (error) return <ErrorList errors={apiErrors(error)} />;
  if (provider === undefined) return loading ? <Loading what="the provider" /> : null;
  if (provider === null) {
    return (
      <>
        <PageTitle>No such provider</PageTitle>
        <p>
          There is no provider <code>{id}</code>. <a href={hrefOf({ page: 'providers' })}>Back to the providers</a>
        </p>
      </>
    );
  }
  return (
    <>
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <a href={hrefOf({ page: 'providers' })}>Providers</a> / {provider.id}
      </nav>
      <div className="page-head">
        <PageTitle>{provider.displayName}</PageTitle>
        <a className="button secondary" href={hrefOf({ page: 'edit-provider', id: provider.id })}>
          Edit provider
        </a>
        <DeleteProvider provider={provider} />
      </div>
      <ProviderDetails provider={provider} />
      <Connections provider={provider} />
    </>
  );
}

function ProviderDetails({ provider }: { readonly provider: Provider }) {
  return (
    <section aria-labelledby="settings-heading" className="panel">
      <h2 id="settings-heading">Settings</h2>
      {provider.grantType === 'AUTHORIZATION_CODE' ? (
        <CopyField label="Redirect URL to register at the identity provider" value={provider.redirectUrl} />
      ) : null}
      <dl className="facts">
        <dt>Id</dt>
        <dd>
          <code>{provider.id}</code>
        </dd>
        <dt>Identity provider</dt>
        <dd>{provider.identityProvider}</dd>
        <dt>Grant type</dt>
        <dd>{GRANT_LABEL[provider.grantType]}</dd>
        {holdsStaticCredential(provider.grantType) ? (
          <>
            <dt>Client</dt>
            <dd>None: each connection holds {CREDENTIAL_WORDS[provider.grantType]}</dd>
          </>
        ) : (
          <>
            <dt>Client id</dt>
            <dd>
              {provider.clientId === null ? (
                <span className="muted">none (connections carry their own)</span>
              ) : (
                <code>{provider.clientId}</code>
              )}
            </dd>
            <dt>Client secret</dt>
            <dd>{provider.hasClientSecret ? 'Set (never shown)' : 'Not set'}</dd>
            <dt>Scopes</dt>
            <dd>{provider.scopes.length > 0 ? provider.scopes.join(' ') : <span className="muted">none</span>}</dd>
          </>
        )}
        {provider.parameters.map((p) => (
          <div key={p.name} className="fact">
            <dt>{p.name}</dt>
            <dd>
              <code>{p.value}</code>
            </dd>
          </div>
        ))}
        <dt>Connections</dt>
        <dd>
          {provider.connectionCounts.total} total: <Counts counts={provider.connectionCounts} />
        </dd>
        <dt>Version</dt>
        <dd>
          {provider.version}, changed <Time iso={provider.updatedAt} />
        </dd>
      </dl>
    </section>
  );
}

function DeleteProvider({ provider }: { readonly provider: Provider }) {
  const [remove] = useMutation(DELETE_PROVIDER, { refetchQueries: ['ConsoleProviders'] });
  const [reload] = useLazyQuery(PROVIDER, { fetchPolicy: 'network-only' });
  const n = provider.connectionCounts.total;
  return (
    <DeleteWithConfirm
      what="provider"
      title={`Delete provider ${provider.id}?`}
      confirmLabel={`Delete ${provider.id} and its ${n} connection${n === 1 ? '' : 's'}`}
      remove={() => remove({ variables: { id: provider.id, expectedVersion: provider.version } })}
      onDeleted={() => navigate({ page: 'providers' })}
      reload={() => reload({ variables: { id: provider.id } })}
    >
      <p>
        This deletes the provider <strong>{provider.displayName}</strong> and, with it, its{' '}
        <strong>
          {n} connection{n === 1 ? '' : 's'}
        </strong>
        , their access policies and their stored tokens. Callers bound to it lose access at once. This cannot be undone.
      </p>
    </DeleteWithConfirm>
  );
}

interface ConnectionsData {
  credentialProvider: { id: string; connections: { nextCursor: string | null; items: Connection[] } } | null;
}

function Connections({ provider }: { readonly provider: Provider }) {
  const [filter, setFilter] = useState<StatusFilter>('ALL');
  const cursors = useCursors();
  const { data, error, loading, refetch } = useQuery<ConnectionsData>(CONNECTIONS, {
    variables: {
      providerId: provider.id,
      first: CONNECTIONS_PAGE_SIZE,
      after: cursors.after,
      status: filter === 'ALL' ? null : filter,
    },
  });
  const page = data?.credentialProvider?.connections;
  const holdsCredential = holdsStaticCredential(provider.grantType);
  return (
    <section aria-labelledby="connections-heading">
      <h2 id="connections-heading">Connections</h2>
      <CreateConnection provider={provider} />
      <div className="toolbar">
        <Select
          label="Show"
          name="status"
          value={filter}
          options={FILTERS}
          onChange={(f) => {
            setFilter(f);
            cursors.reset();
          }}
        />
        <button type="button" className="secondary" onClick={() => void refetch()}>
          Refresh
        </button>
      </div>
      <ErrorList errors={apiErrors(error)} />
      {page === undefined ? (
        loading ? (
          <Loading what="connections" />
        ) : null
      ) : page.items.length === 0 ? (
        <p>{filter === 'ALL' ? 'No connections yet.' : 'No connections in this status.'}</p>
      ) : (
        <>
          <table className="list">
            <caption className="visually-hidden">
              Connections of {provider.id}, page {cursors.pageNumber}
            </caption>
            <thead>
              <tr>
                <th scope="col">Connection</th>
                <th scope="col">Status</th>
                <th scope="col">Token expires</th>
                <th scope="col">Last refresh</th>
                <th scope="col">Access policies</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((c) => (
                <tr key={c.id}>
                  <th scope="row">
                    <a href={hrefOf({ page: 'connection', providerId: provider.id, connectionId: c.id })}>
                      {c.displayName}
                    </a>
                    {c.displayName !== c.id ? <div className="muted small">{c.id}</div> : null}
                  </th>
                  <td>
                    <StatusBadge status={c.status} />
                    {c.error ? (
                      <div className="small">
                        <code>{c.error.code}</code>: {c.error.message}
                      </div>
                    ) : null}
                    {holdsCredential ? (
                      <div className="small">Credential: {c.hasCredential ? 'set (never shown)' : 'not set'}</div>
                    ) : null}
                  </td>
                  <td>
                    <Time iso={c.tokenExpiresAt} empty={holdsCredential ? 'never' : '—'} />
                  </td>
                  <td>
                    <Time iso={c.lastRefreshedAt} empty="never" />
                  </td>
                  <td>{c.accessPolicies.length}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager cursors={cursors} nextCursor={page.nextCursor} label="Connection" />
        </>
      )}
    </section>
  );
}

const CONNECTION_FIELDS = [
  'input.id',
  'input.displayName',
  'input.clientId',
  'input.clientSecret',
  ...CREDENTIAL_FIELDS,
];

function CreateConnection({ provider }: { readonly provider: Provider }) {
  const [values, setValues] = useState({ id: '', displayName: '', clientId: '', clientSecret: '' });
  const [credential, setCredential] = useState<CredentialValues>(NO_CREDENTIAL);
  const staticKind = holdsStaticCredential(provider.grantType) ? provider.grantType : null;
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const bind = bindField(values, setValues, errors);
  const [create, { loading }] = useMutation<{ createConnection: Connection }>(CREATE_CONNECTION, {
    refetchQueries: ['ConsoleConnections', 'ConsoleProvider'],
  });
  const clientCredentials = provider.grantType === 'CLIENT_CREDENTIALS';
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setErrors(NO_ERRORS);
    const input = {
      id: values.id,
      ...(values.displayName !== '' && { displayName: values.displayName }),
      ...(clientCredentials && values.clientId !== '' && { clientId: values.clientId }),
      ...(clientCredentials && values.clientSecret !== '' && { clientSecret: values.clientSecret }),
      ...(staticKind && credentialInput(staticKind, credential)),
    };
    try {
      const res = await create({ variables: { providerId: provider.id, input } });
      setValues({ id: '', displayName: '', clientId: '', clientSecret: '' });
      setCredential(NO_CREDENTIAL);
      const created = res.data?.createConnection;
      if (created) navigate({ page: 'connection', providerId: provider.id, connectionId: created.id });
    } catch (e) {
      setErrors(formErrors(e, CONNECTION_FIELDS));
    }
  };
  return (
    <details className="panel">
      <summary>New connection</summary>
      <form onSubmit={submit} noValidate className="form inline-form" aria-label="New connection">
        <Field label="Connection id" {...bind('id')} required />
        <Field label="Display name" {...bind('displayName')} />
        {clientCredentials ? (
          <>
            <Field
              label="Client id of this connection"
              {...bind('clientId')}
              hint="Leave empty to use the provider's client."
            />
            <Field
              label="Client secret of this connection"
              {...bind('clientSecret')}
              type="password"
              autoComplete="new-password"
              hint="Write-only."
            />
          </>
        ) : null}
        {staticKind ? (
          <CredentialFields kind={staticKind} values={credential} onChange={setCredential} errors={errors} />
        ) : null}
        <ErrorList errors={errors.general} />
        <div className="actions">
          <button type="submit" disabled={loading}>
            {loading ? 'Creating…' : 'Create connection'}
          </button>
        </div>
      </form>
    </details>
  );
}
