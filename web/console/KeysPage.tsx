/** Encryption keys: how many secrets each still wraps, rotation with its progress, retiring unused keys. */
import { useEffect, useState } from 'react';
import { useMutation, useQuery } from '@apollo/client/react';
import { KEYS, RETIRE_KEY, ROTATE_KEY, type EncryptionKey, type KeyRotation } from './api';
import { apiErrors, type ApiError } from './errors';
import { ConfirmDialog, ErrorList, Loading, PageTitle, Time } from './ui';

const ROTATION_POLL_MS = 500;

interface KeysData {
  encryptionKeys: EncryptionKey[];
  keyRotation: KeyRotation;
}

const STATE_TEXT: Record<KeyRotation['state'], string> = {
  IDLE: 'No rotation has run since the gateway started.',
  RUNNING: 'Rotation running: re-wrapping stored secrets with the new primary key.',
  DONE: 'Rotation done: every stored secret is wrapped by the primary key.',
  FAILED: 'Rotation failed: some secrets could not be re-wrapped. Rotate again to retry.',
};

export function KeysPage() {
  const [errors, setErrors] = useState<ApiError[]>([]);
  const [retiring, setRetiring] = useState<EncryptionKey | null>(null);
  const { data, error, loading, refetch, startPolling, stopPolling } = useQuery<KeysData>(KEYS, {
    notifyOnNetworkStatusChange: false,
  });
  const [rotate, rotation] = useMutation<{ rotateEncryptionKey: KeyRotation }>(ROTATE_KEY);
  const [retire] = useMutation(RETIRE_KEY);
  const running = data?.keyRotation.state === 'RUNNING';
  // Watch the progress while a rotation runs; stop when it ends.
  useEffect(() => {
    if (running) startPolling(ROTATION_POLL_MS);
    else stopPolling();
  }, [running, startPolling, stopPolling]);

  const doRotate = async () => {
    setErrors([]);
    try {
      await rotate();
      await refetch();
    } catch (e) {
      setErrors(apiErrors(e));
    }
  };
  const doRetire = async (key: EncryptionKey) => {
    setRetiring(null);
    setErrors([]);
    try {
      await retire({ variables: { id: key.id } });
      await refetch();
    } catch (e) {
      setErrors(apiErrors(e));
    }
  };

  if (error) return <ErrorList errors={apiErrors(error)} />;
  if (data === undefined) return loading ? <Loading what="keys" /> : null;
  return (
    <>
      <div className="page-head">
        <PageTitle>Encryption keys</PageTitle>
        <button type="button" onClick={doRotate} disabled={running || rotation.loading}>
          {running || rotation.loading ? 'Rotating…' : 'Rotate keys'}
        </button>
      </div>
      <p className="muted">
        Rotating makes a new key primary and re-wraps every stored secret with it in the background. A key no secret
        uses any more can be retired.
      </p>
      <ErrorList errors={errors} />
      <RotationPanel rotation={data.keyRotation} keys={data.encryptionKeys} />
      <KeysTable keys={data.encryptionKeys} onRetire={setRetiring} />
      {retiring ? (
        <ConfirmDialog
          title={`Retire key ${retiring.id}?`}
          confirmLabel={`Retire ${retiring.id}`}
          onConfirm={() => void doRetire(retiring)}
          onCancel={() => setRetiring(null)}
        >
          <p>
            No stored secret uses this key any more. Retiring it forgets it from the keyring; a backup taken while it
            was in use cannot be read without it. This cannot be undone.
          </p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}

function RotationPanel({
  rotation: r,
  keys,
}: {
  readonly rotation: KeyRotation;
  readonly keys: readonly EncryptionKey[];
}) {
  // What is left to re-wrap: the secrets the older keys still wrap.
  const remaining = keys.filter((k) => !k.primary).reduce((n, k) => n + k.inUse, 0);
  const total = r.rewrapped + remaining;
  return (
    <section className="panel" aria-labelledby="rotation-heading">
      <h2 id="rotation-heading">Rotation</h2>
      <p role="status" data-testid="rotation-state" data-state={r.state}>
        <strong>{r.state}</strong>: {STATE_TEXT[r.state]}
      </p>
      {r.state !== 'IDLE' ? (
        <>
          <label htmlFor="rotation-progress">
            Re-wrapped {r.rewrapped} of {total} secret{total === 1 ? '' : 's'}
            {r.failed > 0 ? `, ${r.failed} failed` : ''}
          </label>
          <progress id="rotation-progress" max={Math.max(total, 1)} value={total === 0 ? 1 : r.rewrapped} />
          <p className="small muted">
            Started <Time iso={r.startedAt} />
            {r.finishedAt ? (
              <>
                , finished <Time iso={r.finishedAt} />
              </>
            ) : null}
            . Primary key <code>{r.primaryKeyId}</code>.
          </p>
        </>
      ) : null}
    </section>
  );
}

function KeysTable({
  keys,
  onRetire,
}: {
  readonly keys: readonly EncryptionKey[];
  readonly onRetire: (key: EncryptionKey) => void;
}) {
  return (
    <table className="list">
      <caption>Keys</caption>
      <thead>
        <tr>
          <th scope="col">Key</th>
          <th scope="col">Role</th>
          <th scope="col">Created</th>
          <th scope="col">Secrets it still wraps</th>
          <th scope="col">
            <span className="visually-hidden">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {keys.map((k) => (
          <tr key={k.id} data-key={k.id}>
            <th scope="row">
              <code>{k.id}</code>
            </th>
            <td>{k.primary ? <strong>★ Primary</strong> : 'Old'}</td>
            <td>
              <Time iso={k.createdAt} />
            </td>
            <td>{k.inUse}</td>
            <td>
              {!k.primary && k.inUse === 0 ? (
                <button type="button" className="danger small-button" onClick={() => onRetire(k)}>
                  Retire<span className="visually-hidden"> key {k.id}</span>
                </button>
              ) : (
                <span className="muted small">{k.primary ? 'In use (primary)' : 'Still in use'}</span>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
