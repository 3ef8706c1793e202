/** Deleting a provider or a connection: a button, a confirmation, and a reload-and-ask-again on VERSION_CONFLICT. */
import { useState, type ReactNode } from 'react';
import { apiErrors, hasCode, type ApiError } from './errors';
import { ConfirmDialog, ConflictNotice, ErrorList } from './ui';

interface DeleteWithConfirmProps {
  /** What is deleted, in words: "provider", "connection". */
  readonly what: string;
  readonly title: string;
  readonly confirmLabel: string;
  /** What the deletion takes with it: the dialog's text. */
  readonly children: ReactNode;
  /** Deletes, expecting the version shown; rejects with the API's error. */
  readonly remove: () => Promise<unknown>;
  readonly onDeleted: () => void;
  /** Reads the object again as it is now, after a VERSION_CONFLICT. */
  readonly reload: () => Promise<unknown>;
}

export function DeleteWithConfirm({
  what,
  title,
  confirmLabel,
  children,
  remove,
  onDeleted,
  reload,
}: DeleteWithConfirmProps) {
  const [asking, setAsking] = useState(false);
  const [conflict, setConflict] = useState(false);
  const [errors, setErrors] = useState<ApiError[]>([]);
  const confirm = async () => {
    setAsking(false);
    setErrors([]);
    try {
      await remove();
      onDeleted();
    } catch (e) {
      if (hasCode(e, 'VERSION_CONFLICT')) setConflict(true);
      else setErrors(apiErrors(e));
    }
  };
  // It changed since it was shown: show it as it is now, then ask again (what cascades may differ).
  const reloadAndAskAgain = async () => {
    await reload();
    setConflict(false);
    setAsking(true);
  };
  return (
    <>
      <button type="button" className="danger" onClick={() => setAsking(true)}>
        {`Delete ${what}`}
      </button>
      <ErrorList errors={errors} />
      {conflict ? (
        <ConflictNotice
          what={what}
          undone="it was not deleted"
          action={`Reload the ${what} and delete again`}
          onAction={() => void reloadAndAskAgain()}
        />
      ) : null}
      {asking ? (
        <ConfirmDialog title={title} confirmLabel={confirmLabel} onConfirm={confirm} onCancel={() => setAsking(false)}>
          {children}
        </ConfirmDialog>
      ) : null}
    </>
  );
}
