/**
 * "Login link": a single-use consent link for an allowlisted post-login URL, with its expiry,
 * watched until it is used (the API's `loginLinkPending`) and the connection turns CONNECTED.
 */
import { useEffect, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from '@apollo/client/react';
import { CREATE_LOGIN_LINK, LOGIN_LINK_PENDING, type Connection, type LoginLink } from './api';
import { formErrors, NO_ERRORS, type FormErrors } from './errors';
import { CopyField, ErrorList, Field, Time } from './ui';

const LINK_POLL_MS = 1_500;
/** The gateway's own "consent done" page: its origin is allowlisted by default. */
const DEFAULT_POST_LOGIN_PATH = '/oauth/done';

type LinkState = 'unused' | 'used' | 'expired';

/**
 * Where a login link is: unused, used (its consent state is gone before its expiry) or expired.
 * Polls `loginLinkPending` until the link is used or expires; once used, it stays "used".
 */
function useLinkState(link: LoginLink | null): LinkState | null {
  const [now, setNow] = useState(() => Date.now());
  const [used, setUsed] = useState(false);
  // A new link starts unused: reset while rendering, as React advises for state that follows a prop.
  const [usedFor, setUsedFor] = useState(link);
  if (usedFor !== link) {
    setUsedFor(link);
    setUsed(false);
  }
  const expired = link !== null && new Date(link.expiresAt).getTime() <= now;
  const pending = useQuery<{ loginLinkPending: boolean }>(LOGIN_LINK_PENDING, {
    variables: { id: link?.id ?? '' },
    skip: link === null || used,
    fetchPolicy: 'network-only',
    pollInterval: link !== null && !expired && !used ? LINK_POLL_MS : 0,
  });
  const opened = pending.data?.loginLinkPending === false && !expired;
  useEffect(() => {
    if (opened) setUsed(true);
  }, [opened]);
  useEffect(() => {
    if (link === null || expired) return;
    const timer = setInterval(() => setNow(Date.now()), 1_000);
    return () => clearInterval(timer);
  }, [link, expired]);
  if (link === null) return null;
  return used ? 'used' : expired ? 'expired' : 'unused';
}

export function LoginLinkPanel({
  connection,
  onWatch,
}: {
  readonly connection: Connection;
  readonly onWatch: (watching: boolean) => void;
}) {
  const [postLogin, setPostLogin] = useState(() => `${window.location.origin}${DEFAULT_POST_LOGIN_PATH}`);
  const [link, setLink] = useState<LoginLink | null>(null);
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [create, { loading }] = useMutation<{ createLoginLink: LoginLink }>(CREATE_LOGIN_LINK);
  const shown = useLinkState(link);
  // The connection is re-read while its consent may still come.
  const watching = link !== null && connection.status !== 'CONNECTED' && shown !== 'expired';
  useEffect(() => {
    onWatch(watching);
    return () => onWatch(false);
  }, [watching, onWatch]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setErrors(NO_ERRORS);
    try {
      const res = await create({
        variables: { providerId: connection.providerId, connectionId: connection.id, postLoginRedirectUrl: postLogin },
      });
      setLink(res.data?.createLoginLink ?? null);
    } catch (e) {
      setErrors(formErrors(e, ['postLoginRedirectUrl']));
    }
  };

  return (
    <section className="panel" aria-labelledby="link-heading">
      <h2 id="link-heading">Login link</h2>
      <p className="muted">
        A single-use link for the user to consent at the identity provider; afterwards the browser goes to the
        post-login URL.
      </p>
      <form onSubmit={submit} noValidate className="form inline-form" aria-label="Create a login link">
        <Field
          label="Post-login URL"
          name="postLoginRedirectUrl"
          type="url"
          required
          value={postLogin}
          onChange={setPostLogin}
          error={errors.byField.get('postLoginRedirectUrl')}
          hint="Its origin must be in consent.allowedRedirectOrigins (the gateway's own origin by default)."
        />
        <ErrorList errors={errors.general} />
        <div className="actions">
          <button type="submit" disabled={loading}>
            {loading ? 'Creating…' : link === null ? 'Create login link' : 'Create a new login link'}
          </button>
        </div>
      </form>
      {link !== null ? (
        <div className="link-result">
          <CopyField label="Login link to send to the user" value={link.url} />
          <p>
            Expires <Time iso={link.expiresAt} />.{' '}
            <span className={`badge link-${shown}`} role="status" data-testid="link-state">
              {shown === 'used' ? '✓ Used' : shown === 'expired' ? '✕ Expired' : '○ Not opened yet'}
            </span>
          </p>
          {watching ? (
            <p className="muted small" role="status">
              Watching for consent: the status above updates by itself.
            </p>
          ) : null}
        </div>
      ) : null}
    </section>
  );
}
