/**
 * Lifecycle webhooks: the receivers with their events and dead letters, a form that registers one
 * and shows its signing secret once (the API never shows it again), deletion after a confirmation.
 */
import { useState, type FormEvent } from 'react';
import { useMutation, useQuery } from '@apollo/client/react';
import { CREATE_WEBHOOK, DEAD_LETTERS_SHOWN, DELETE_WEBHOOK, WEBHOOK_EVENTS, WEBHOOKS, type Webhook } from './api';
import { apiErrors, formErrors, NO_ERRORS, type ApiError, type FormErrors } from './errors';
import { bindField, ConfirmDialog, CopyField, ErrorList, Field, Loading, PageTitle, Time } from './ui';

const WEBHOOK_FIELDS = ['input.id', 'input.url', 'input.events'];

export function WebhooksPage() {
  const { data, error, loading, refetch } = useQuery<{ webhooks: Webhook[] }>(WEBHOOKS, {
    variables: { deadLetters: DEAD_LETTERS_SHOWN },
  });
  const [deleting, setDeleting] = useState<Webhook | null>(null);
  const [errors, setErrors] = useState<ApiError[]>([]);
  const [remove] = useMutation(DELETE_WEBHOOK);
  const confirmDelete = async () => {
    const hook = deleting;
    setDeleting(null);
    if (hook === null) return;
    setErrors([]);
    try {
      await remove({ variables: { id: hook.id } });
      await refetch();
    } catch (e) {
      setErrors(apiErrors(e));
    }
  };
  const hooks = data?.webhooks;
  return (
    <>
      <div className="page-head">
        <PageTitle>Webhooks</PageTitle>
        <button type="button" className="secondary" onClick={() => void refetch()}>
          Refresh
        </button>
      </div>
      <p className="muted">
        Receivers of connection lifecycle events, signed as the Standard Webhooks specification says.
      </p>
      <CreateWebhook onCreated={() => void refetch()} />
      <ErrorList errors={[...apiErrors(error), ...errors]} />
      {hooks === undefined ? (
        loading ? (
          <Loading what="webhooks" />
        ) : null
      ) : hooks.length === 0 ? (
        <p>No webhooks yet.</p>
      ) : (
        hooks.map((hook) => <WebhookPanel key={hook.id} hook={hook} onDelete={() => setDeleting(hook)} />)
      )}
      {deleting ? (
        <ConfirmDialog
          title={`Delete webhook ${deleting.id}?`}
          confirmLabel={`Delete ${deleting.id}`}
          onConfirm={() => void confirmDelete()}
          onCancel={() => setDeleting(null)}
        >
          <p>
            This deletes the webhook to <code>{deleting.url}</code> with its deliveries: pending ones are not sent. This
            cannot be undone.
          </p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}

function WebhookPanel({ hook, onDelete }: { readonly hook: Webhook; readonly onDelete: () => void }) {
  const n = hook.deadLetters.length;
  return (
    <section className="panel" aria-labelledby={`webhook-${hook.id}`} data-webhook={hook.id}>
      <div className="page-head">
        <h2 id={`webhook-${hook.id}`}>{hook.id}</h2>
        <button type="button" className="danger small-button" onClick={onDelete}>
          Delete webhook<span className="visually-hidden"> {hook.id}</span>
        </button>
      </div>
      <dl className="facts">
        <dt>URL</dt>
        <dd>
          <code>{hook.url}</code>
        </dd>
        <dt>Events</dt>
        <dd>{hook.events.join(', ')}</dd>
        <dt>Created</dt>
        <dd>
          <Time iso={hook.createdAt} />
        </dd>
        <dt>Dead letters</dt>
        <dd data-testid="dead-letter-count">
          {n === 0
            ? 'none'
            : `${n}${n === DEAD_LETTERS_SHOWN ? ' or more (the newest shown)' : ''}: every attempt failed`}
        </dd>
      </dl>
      {n > 0 ? (
        <table className="list">
          <caption>Dead letters of {hook.id}</caption>
          <thead>
            <tr>
              <th scope="col">Event</th>
              <th scope="col">Attempts</th>
              <th scope="col">Last error</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {hook.deadLetters.map((d) => (
              <tr key={d.eventId}>
                <th scope="row">
                  {d.eventType}
                  <div className="muted small">{d.eventId}</div>
                </th>
                <td>{d.attempts}</td>
                <td>{d.lastError ?? <span className="muted">none recorded</span>}</td>
                <td>
                  <Time iso={d.createdAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

function CreateWebhook({ onCreated }: { readonly onCreated: () => void }) {
  const [values, setValues] = useState({ id: '', url: '' });
  const [events, setEvents] = useState<ReadonlySet<string>>(() => new Set(WEBHOOK_EVENTS));
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const bind = bindField(values, setValues, errors);
  const [created, setCreated] = useState<{ id: string; secret: string } | null>(null);
  // Not cached: the signing secret lives in this component's state only, until "Done".
  const [create, { loading }] = useMutation<{ createWebhook: { id: string; secret: string | null } }>(CREATE_WEBHOOK, {
    fetchPolicy: 'no-cache',
  });
  const toggle = (event: string, on: boolean) =>
    setEvents((s) => {
      const next = new Set(s);
      if (on) next.add(event);
      else next.delete(event);
      return next;
    });
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setErrors(NO_ERRORS);
    try {
      const res = await create({
        variables: { input: { id: values.id, url: values.url, events: WEBHOOK_EVENTS.filter((x) => events.has(x)) } },
      });
      const hook = res.data?.createWebhook;
      if (hook?.secret) setCreated({ id: hook.id, secret: hook.secret });
      setValues({ id: '', url: '' });
      onCreated();
    } catch (err) {
      setErrors(formErrors(err, WEBHOOK_FIELDS));
    }
  };
  if (created) {
    return (
      <div className="warning-box" role="status">
        <p>
          <strong>Webhook {created.id} was created.</strong> Copy its signing secret now: it is shown this once and
          never again. Receivers verify the signatures with it.
        </p>
        <CopyField label={`Signing secret of ${created.id}`} value={created.secret} />
        <button type="button" onClick={() => setCreated(null)}>
          Done: I copied it
        </button>
      </div>
    );
  }
  return (
    <details className="panel">
      <summary>New webhook</summary>
      <form onSubmit={submit} noValidate className="form inline-form" aria-label="New webhook">
        <Field label="Webhook id" {...bind('id')} required />
        <Field label="URL" {...bind('url')} type="url" required hint="https; the events are POSTed here." />
        <fieldset>
          <legend>Events</legend>
          {WEBHOOK_EVENTS.map((event) => (
            <label key={event} className="radio">
              <input
                type="checkbox"
                name="input.events"
                value={event}
                checked={events.has(event)}
                onChange={(e) => toggle(event, e.target.checked)}
              />
              {event}
            </label>
          ))}
          {errors.byField.get('input.events') ? (
            <p className="field-error" data-field="input.events">
              <span aria-hidden="true">⚠ </span>
              {errors.byField.get('input.events')}
            </p>
          ) : null}
        </fieldset>
        <ErrorList errors={errors.general} />
        <div className="actions">
          <button type="submit" disabled={loading}>
            {loading ? 'Creating…' : 'Create webhook'}
          </button>
        </div>
      </form>
    </details>
  );
}
