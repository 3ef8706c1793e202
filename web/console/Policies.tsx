/** A connection's access policies: who may use it. Every kind, with tenant, app ids and issuer. */
import { useState, type FormEvent } from 'react';
import { useMutation } from '@apollo/client/react';
import { CREATE_POLICY, DELETE_POLICY, type AccessPolicy, type Connection, type PolicyKind } from './api';
import { apiErrors, formErrors, NO_ERRORS, type ApiError, type FormErrors } from './errors';
import { bindField, ErrorList, Field, Select, Time } from './ui';

const KINDS: readonly { readonly value: PolicyKind; readonly label: string }[] = [
  { value: 'USER', label: 'User' },
  { value: 'GROUP', label: 'Group' },
  { value: 'SERVICE_PRINCIPAL', label: 'Service principal (application)' },
  { value: 'MANAGED_IDENTITY', label: "Managed identity (the gateway's own)" },
];

const POLICY_FIELDS = ['input.id', 'input.kind', 'input.objectId', 'input.tenantId', 'input.appIds', 'input.issuer'];
const EMPTY = { id: '', kind: 'USER' as PolicyKind, objectId: '', tenantId: '', appIds: '', issuer: '' };

export function Policies({ connection }: { readonly connection: Connection }) {
  const [removeErrors, setRemoveErrors] = useState<ApiError[]>([]);
  const [remove, removing] = useMutation(DELETE_POLICY, {
    refetchQueries: ['ConsoleConnection'],
    awaitRefetchQueries: true,
  });
  const removePolicy = async (policy: AccessPolicy) => {
    setRemoveErrors([]);
    try {
      await remove({ variables: { providerId: connection.providerId, connectionId: connection.id, id: policy.id } });
    } catch (e) {
      setRemoveErrors(apiErrors(e));
    }
  };
  return (
    <section className="panel" aria-labelledby="policies-heading">
      <h2 id="policies-heading">Access policies</h2>
      {connection.accessPolicies.length === 0 ? (
        <p>No access policies: nobody may use this connection.</p>
      ) : (
        <table className="list">
          <caption className="visually-hidden">Access policies of {connection.id}</caption>
          <thead>
            <tr>
              <th scope="col">Policy</th>
              <th scope="col">Kind</th>
              <th scope="col">Object id</th>
              <th scope="col">Tenant</th>
              <th scope="col">App ids</th>
              <th scope="col">Issuer</th>
              <th scope="col">Created</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {connection.accessPolicies.map((p) => (
              <tr key={p.id} data-policy={p.id}>
                <th scope="row">
                  <code>{p.id}</code>
                </th>
                <td>{p.kind}</td>
                <td>
                  <code>{p.objectId}</code>
                </td>
                <td>{p.tenantId ?? <span className="muted">any</span>}</td>
                <td>{p.appIds.length > 0 ? p.appIds.join(', ') : <span className="muted">any</span>}</td>
                <td>{p.issuer ?? <span className="muted">any trusted issuer</span>}</td>
                <td>
                  <Time iso={p.createdAt} />
                </td>
                <td>
                  <button
                    type="button"
                    className="secondary small-button"
                    disabled={removing.loading}
                    onClick={() => void removePolicy(p)}
                  >
                    Remove<span className="visually-hidden"> policy {p.id}</span>
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ErrorList errors={removeErrors} />
      <AddPolicy connection={connection} />
    </section>
  );
}

function AddPolicy({ connection }: { readonly connection: Connection }) {
  const [values, setValues] = useState(EMPTY);
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [create, { loading }] = useMutation(CREATE_POLICY, {
    refetchQueries: ['ConsoleConnection'],
    awaitRefetchQueries: true,
  });
  const bind = bindField(values, setValues, errors);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setErrors(NO_ERRORS);
    const appIds = values.appIds.split(/[\s,]+/).filter(Boolean);
    const input = {
      id: values.id,
      kind: values.kind,
      objectId: values.objectId,
      ...(values.tenantId !== '' && { tenantId: values.tenantId }),
      ...(appIds.length > 0 && { appIds }),
      ...(values.issuer !== '' && { issuer: values.issuer }),
    };
    try {
      await create({ variables: { providerId: connection.providerId, connectionId: connection.id, input } });
      setValues(EMPTY);
    } catch (e) {
      setErrors(formErrors(e, POLICY_FIELDS));
    }
  };
  return (
    <form onSubmit={submit} noValidate className="form inline-form" aria-labelledby="add-policy-heading">
      <h3 id="add-policy-heading">Add an access policy</h3>
      <Field label="Policy id" {...bind('id')} required />
      <Select label="Kind" {...bind('kind')} options={KINDS} />
      <Field
        label="Object id"
        {...bind('objectId')}
        required
        hint="The user's or group's object id, the application's own object id, or the gateway's managed identity."
      />
      <Field label="Tenant id" {...bind('tenantId')} hint="Optional: also require the token's tid." />
      <Field
        label="App ids"
        {...bind('appIds')}
        hint="Optional, separated by commas: also require the token's azp / client_id / appid to be one of these."
      />
      <Field
        label="Issuer"
        {...bind('issuer')}
        hint="Optional: admit only tokens with this iss (an absolute URL or a configured issuer). Empty: any trusted issuer."
      />
      <ErrorList errors={errors.general} />
      <div className="actions">
        <button type="submit" disabled={loading}>
          {loading ? 'Adding…' : 'Add policy'}
        </button>
      </div>
    </form>
  );
}
