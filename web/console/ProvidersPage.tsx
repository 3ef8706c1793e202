/** Every credential provider, a page at a time, with its connections counted by status. */
import { useQuery } from '@apollo/client/react';
import { PROVIDERS, PROVIDERS_PAGE_SIZE, type ProviderSummary } from './api';
import { apiErrors } from './errors';
import { Pager, useCursors } from './Pager';
import { hrefOf } from './route';
import { ErrorList, Loading, PageTitle } from './ui';

interface ProvidersData {
  credentialProviders: { nextCursor: string | null; items: ProviderSummary[] };
}

export function Counts({ counts }: { readonly counts: ProviderSummary['connectionCounts'] }) {
  return (
    <span className="counts">
      <span className="count status-connected">
        <span aria-hidden="true">✓ </span>
        {counts.connected} connected
      </span>
      <span className="count status-not_connected">
        <span aria-hidden="true">○ </span>
        {counts.notConnected} not connected
      </span>
      <span className="count status-error">
        <span aria-hidden="true">✕ </span>
        {counts.error} error
      </span>
    </span>
  );
}

export function ProvidersPage() {
  const cursors = useCursors();
  const { data, error, loading } = useQuery<ProvidersData>(PROVIDERS, {
    variables: { first: PROVIDERS_PAGE_SIZE, after: cursors.after },
  });
  const page = data?.credentialProviders;
  return (
    <>
      <div className="page-head">
        <PageTitle>Credential providers</PageTitle>
        <a className="button" href={hrefOf({ page: 'new-provider' })}>
          New provider
        </a>
      </div>
      <ErrorList errors={apiErrors(error)} />
      {page === undefined ? (
        loading ? (
          <Loading what="providers" />
        ) : null
      ) : page.items.length === 0 && cursors.pageNumber === 1 ? (
        <p>No credential providers yet. Create one from the identity provider catalog with “New provider”.</p>
      ) : (
        <>
          <table className="list">
            <caption className="visually-hidden">Credential providers, page {cursors.pageNumber}</caption>
            <thead>
              <tr>
                <th scope="col">Provider</th>
                <th scope="col">Identity provider</th>
                <th scope="col">Grant type</th>
                <th scope="col">Connections</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((p) => (
                <tr key={p.id}>
                  <th scope="row">
                    <a href={hrefOf({ page: 'provider', id: p.id })}>{p.displayName}</a>
                    {p.displayName !== p.id ? <div className="muted small">{p.id}</div> : null}
                  </th>
                  <td>{p.identityProvider}</td>
                  <td>{p.grantType === 'AUTHORIZATION_CODE' ? 'Authorization code' : 'Client credentials'}</td>
                  <td>
                    <span className="total">{p.connectionCounts.total} total: </span>
                    <Counts counts={p.connectionCounts} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager cursors={cursors} nextCursor={page.nextCursor} label="Provider" />
        </>
      )}
    </>
  );
}
