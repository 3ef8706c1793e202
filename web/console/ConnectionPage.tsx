/**
 * One connection: status with its error, token expiry and last refresh; a login link (watched
 * until used), a test, deletion; and its access policies, added and removed. API_KEY and BASIC
 * connections show their credential as set or not, with a rotation, and no login link.
 */
import { useState } from 'react';
import { useMutation, useQuery } from '@apollo/client/react';
import {
  CONNECTION,
  DELETE_CONNECTION,
  holdsStaticCredential,
  PROVIDER,
  TEST_CONNECTION,
  type Connection,
  type ConnectionStatus,
  type Provider,
} from './api';
import { CredentialPanel } from './Credential';
import { DeleteWithConfirm } from './DeleteWithConfirm';
import { apiErrors } from './errors';
import { LoginLinkPanel } from './LoginLinkPanel';
import { Policies } from './Policies';
import { hrefOf, navigate } from './route';
import { ErrorList, Loading, PageTitle, StatusBadge, Time } from './ui';

/** How often a connection waiting for consent is re-read, so that CONNECTED shows without a reload. */
const WAITING_POLL_MS = 1_500;

export function ConnectionPage({
  providerId,
  connectionId,
}: {
  readonly providerId: string;
  readonly connectionId: string;
}) {
  const [watching, setWatching] = useState(false);
  const provider = useQuery<{ credentialProvider: Provider | null }>(PROVIDER, { variables: { id: providerId } });
  const { data, error, loading, refetch } = useQuery<{ connection: Connection | null }>(CONNECTION, {
    variables: { providerId, id: connectionId },
    pollInterval: watching ? WAITING_POLL_MS : 0,
  });
  const connection = data?.connection;
  if (error) return <ErrorList errors={apiErrors(error)} />;
  if (connection === undefined) return loading ? <Loading what="the connection" /> : null;
  if (connection === null) {
    return (
      <>
        <PageTitle>No such connection</PageTitle>
        <p>
          Provider <code>{providerId}</code> has no connection <code>{connectionId}</code>.{' '}
          <a href={hrefOf({ page: 'provider', id: providerId })}>Back to the provider</a>
        </p>
      </>
    );
  }
  const grantType = provider.data?.credentialProvider?.grantType;
  const staticKind = grantType !== undefined && holdsStaticCredential(grantType) ? grantType : null;
  return (
    <>
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <a href={hrefOf({ page: 'providers' })}>Providers</a> /{' '}
        <a href={hrefOf({ page: 'provider', id: providerId })}>{providerId}</a> / {connection.id}
      </nav>
      <div className="page-head">
        <PageTitle>{connection.displayName}</PageTitle>
        <button type="button" className="secondary" onClick={() => void refetch()}>
          Refresh
        </button>
        <DeleteConnection connection={connection} onReload={refetch} />
      </div>
      <section className="panel" aria-labelledby="state-heading">
        <h2 id="state-heading">State</h2>
        <dl className="facts">
          <dt>Status</dt>
          <dd aria-live="polite" data-testid="connection-status">
            <StatusBadge status={connection.status} />
          </dd>
          {connection.error ? (
            <>
              <dt>Error</dt>
              <dd>
                <code>{connection.error.code}</code>: {connection.error.message}
              </dd>
            </>
          ) : null}
          <dt>Token expires</dt>
          <dd>
            <Time iso={connection.tokenExpiresAt} empty={staticKind ? 'never' : '—'} />
          </dd>
          <dt>Last refresh</dt>
          <dd>
            <Time iso={connection.lastRefreshedAt} empty="never" />
          </dd>
          {connection.clientId ? (
            <>
              <dt>Client id</dt>
              <dd>
                <code>{connection.clientId}</code>
              </dd>
            </>
          ) : null}
          {staticKind ? null : (
            <>
              <dt>Client secret</dt>
              <dd>{connection.hasClientSecret ? 'Set (never shown)' : "Not set (the provider's is used)"}</dd>
            </>
          )}
        </dl>
      </section>
      {staticKind ? <CredentialPanel connection={connection} kind={staticKind} /> : null}
      <TestConnection connection={connection} holdsCredential={staticKind !== null} onTested={() => void refetch()} />
      {grantType === 'AUTHORIZATION_CODE' ? <LoginLinkPanel connection={connection} onWatch={setWatching} /> : null}
      <Policies connection={connection} />
    </>
  );
}

interface TestResult {
  ok: boolean;
  /** False when nothing could be tried (NOT_TESTABLE: the catalog entry names no check URL). */
  tested: boolean;
  status: ConnectionStatus;
  tokenExpiresAt: string | null;
  error: { code: string; message: string } | null;
}

function TestConnection({
  connection,
  holdsCredential,
  onTested,
}: {
  readonly connection: Connection;
  readonly holdsCredential: boolean;
  readonly onTested: () => void;
}) {
  const [test, { data, loading, error }] = useMutation<{ testConnection: TestResult }>(TEST_CONNECTION);
  const result = data?.testConnection;
  return (
    <section className="panel" aria-labelledby="test-heading">
      <h2 id="test-heading">Test</h2>
      <p className="muted">
        {holdsCredential
          ? 'Sends the credential to the check URL the catalog entry names and reports whether it was accepted; the credential itself is never shown.'
          : 'Acquires or refreshes a token now and reports the outcome; the token itself is never shown.'}
      </p>
      <button
        type="button"
        disabled={loading}
        onClick={async () => {
          await test({ variables: { providerId: connection.providerId, connectionId: connection.id } }).catch(
            () => undefined,
          );
          onTested();
        }}
      >
        {loading ? 'Testing…' : 'Test connection'}
      </button>
      <ErrorList errors={apiErrors(error)} />
      <div aria-live="polite" data-testid="test-result">
        {result && !result.tested ? (
          <p className="outcome" data-tested="false">
            <strong>
              <span aria-hidden="true">○ </span>Not tested
            </strong>
            : this connection cannot be tested (the catalog entry names no check URL); status{' '}
            <StatusBadge status={result.status} />
            {result.error ? (
              <>
                . <code>{result.error.code}</code>: {result.error.message}
              </>
            ) : null}
          </p>
        ) : result ? (
          <p className={result.ok ? 'outcome ok' : 'outcome bad'}>
            <strong>{result.ok ? '✓ Test passed' : '✕ Test failed'}</strong>: status{' '}
            <StatusBadge status={result.status} />
            {result.tokenExpiresAt ? (
              <>
                , token valid until <Time iso={result.tokenExpiresAt} />
              </>
            ) : null}
            {result.error ? (
              <>
                . <code>{result.error.code}</code>: {result.error.message}
              </>
            ) : null}
          </p>
        ) : null}
      </div>
    </section>
  );
}

function DeleteConnection({
  connection,
  onReload,
}: {
  readonly connection: Connection;
  readonly onReload: () => Promise<unknown>;
}) {
  const [remove] = useMutation(DELETE_CONNECTION, { refetchQueries: ['ConsoleConnections', 'ConsoleProvider'] });
  const n = connection.accessPolicies.length;
  return (
    <DeleteWithConfirm
      what="connection"
      title={`Delete connection ${connection.id}?`}
      confirmLabel={`Delete ${connection.id}`}
      remove={() =>
        remove({
          variables: { providerId: connection.providerId, id: connection.id, expectedVersion: connection.version },
        })
      }
      onDeleted={() => navigate({ page: 'provider', id: connection.providerId })}
      reload={onReload}
    >
      <p>
        This deletes the connection <strong>{connection.displayName}</strong> with its{' '}
        <strong>
          {n} access polic{n === 1 ? 'y' : 'ies'}
        </strong>{' '}
        and its stored tokens. Callers that use it lose access at once. This cannot be undone.
      </p>
    </DeleteWithConfirm>
  );
}
