/** Small accessible building blocks: labelled fields with their errors, copy, confirm, status. */
import { useEffect, useId, useRef, useState, type ReactNode } from 'react';
import type { ConnectionStatus } from './api';
import type { ApiError, FormErrors } from './errors';

export function ErrorList({ errors }: { readonly errors: readonly ApiError[] }) {
  if (errors.length === 0) return null;
  return (
    <div className="error-box" role="alert">
      {errors.map((e) => (
        <p key={`${e.code}:${e.field ?? ''}:${e.message}`}>
          <strong>{e.code}</strong>: {e.message}
        </p>
      ))}
    </div>
  );
}

/** The ids of a field's hint and error paragraphs (see FieldNotes), for aria-describedby; '' when neither shows. */
const describedBy = (id: string, hint: ReactNode, error: string | undefined): string =>
  [hint ? `${id}-hint` : null, error ? `${id}-error` : null].filter(Boolean).join(' ');

/** A field's hint and the API's error for it, under the ids that describedBy names. */
function FieldNotes({
  id,
  name,
  hint,
  error,
}: {
  readonly id: string;
  readonly name: string;
  readonly hint: ReactNode;
  readonly error: string | undefined;
}) {
  return (
    <>
      {hint ? (
        <p className="hint" id={`${id}-hint`}>
          {hint}
        </p>
      ) : null}
      {error ? (
        <p className="field-error" id={`${id}-error`} data-field={name}>
          <span aria-hidden="true">⚠ </span>
          {error}
        </p>
      ) : null}
    </>
  );
}

interface FieldProps {
  readonly label: string;
  readonly name: string;
  readonly value: string;
  readonly onChange: (value: string) => void;
  readonly error?: string | undefined;
  readonly hint?: ReactNode;
  readonly required?: boolean;
  readonly type?: 'text' | 'password' | 'url';
  readonly placeholder?: string | undefined;
  readonly disabled?: boolean;
  readonly autoComplete?: string;
}

/** A text input with its label, hint and the API's error for it, tied together for screen readers. */
export function Field({
  label,
  name,
  value,
  onChange,
  error,
  hint,
  required,
  type = 'text',
  placeholder,
  disabled,
  autoComplete,
}: FieldProps) {
  const id = useId();
  const described = describedBy(id, hint, error);
  return (
    <div className={error ? 'field invalid' : 'field'}>
      <label htmlFor={id}>
        {label}
        {required ? <span className="required"> (required)</span> : null}
      </label>
      <input
        id={id}
        name={name}
        type={type}
        value={value}
        required={required}
        disabled={disabled}
        placeholder={placeholder}
        autoComplete={autoComplete ?? 'off'}
        spellCheck={false}
        aria-invalid={error ? true : undefined}
        aria-describedby={described || undefined}
        onChange={(e) => onChange(e.target.value)}
      />
      <FieldNotes id={id} name={name} hint={hint} error={error} />
    </div>
  );
}

/**
 * The props that tie a Field or Select to `values[key]` of a form's state and to the API's error for
 * `input.<key>`: `<Field label="…" {...bind('id')} />` with `const bind = bindField(values, setValues, errors)`.
 */
export function bindField<V extends object>(values: V, setValues: (update: (v: V) => V) => void, errors: FormErrors) {
  return <K extends keyof V & string>(key: K) => ({
    name: `input.${key}`,
    value: values[key],
    onChange: (value: V[K]) => setValues((v) => ({ ...v, [key]: value })),
    error: errors.byField.get(`input.${key}`),
  });
}

interface SelectProps<T extends string> {
  readonly label: string;
  readonly name: string;
  readonly value: T;
  readonly options: readonly { readonly value: T; readonly label: string }[];
  readonly onChange: (value: T) => void;
  readonly error?: string | undefined;
  readonly hint?: ReactNode;
  readonly disabled?: boolean;
}

export function Select<T extends string>({
  label,
  name,
  value,
  options,
  onChange,
  error,
  hint,
  disabled,
}: SelectProps<T>) {
  const id = useId();
  const described = describedBy(id, hint, error);
  return (
    <div className={error ? 'field invalid' : 'field'}>
      <label htmlFor={id}>{label}</label>
      <select
        id={id}
        name={name}
        value={value}
        disabled={disabled}
        aria-invalid={error ? true : undefined}
        aria-describedby={described || undefined}
        onChange={(e) => onChange(e.target.value as T)}
      >
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      <FieldNotes id={id} name={name} hint={hint} error={error} />
    </div>
  );
}

/** A read-only value with a button that copies it; says "Copied" to screen readers too. */
export function CopyField({ label, value }: { readonly label: string; readonly value: string }) {
  const id = useId();
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<'idle' | 'copied' | 'selected'>('idle');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied('copied');
    } catch {
      // No clipboard permission: select the text so that Ctrl+C copies it.
      input.current?.select();
      setCopied('selected');
    }
  };
  return (
    <div className="field copy-field">
      <label htmlFor={id}>{label}</label>
      <div className="copy-row">
        <input id={id} ref={input} readOnly value={value} onFocus={(e) => e.target.select()} />
        <button type="button" className="secondary" onClick={copy} aria-describedby={`${id}-copied`}>
          Copy<span className="visually-hidden"> {label}</span>
        </button>
      </div>
      <p className="hint" id={`${id}-copied`} aria-live="polite">
        {copied === 'copied'
          ? 'Copied to the clipboard.'
          : copied === 'selected'
            ? 'Selected: press Ctrl+C to copy.'
            : ''}
      </p>
    </div>
  );
}

interface ConfirmProps {
  readonly title: string;
  readonly children: ReactNode;
  readonly confirmLabel: string;
  readonly onConfirm: () => void;
  readonly onCancel: () => void;
}

/** A modal confirmation (native <dialog>: focus stays inside, Escape cancels). */
export function ConfirmDialog({ title, children, confirmLabel, onConfirm, onCancel }: ConfirmProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const cancelRef = useRef<HTMLButtonElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    // Cancel, the safe choice, has the focus when the dialog opens.
    cancelRef.current?.focus();
    return () => dialog?.close();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby={titleId} onCancel={onCancel} className="confirm">
      <h2 id={titleId}>{title}</h2>
      {children}
      <div className="actions">
        <button ref={cancelRef} type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" className="danger" onClick={onConfirm}>
          {confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

const STATUS_TEXT: Record<ConnectionStatus, { readonly symbol: string; readonly text: string }> = {
  CONNECTED: { symbol: '✓', text: 'Connected' },
  NOT_CONNECTED: { symbol: '○', text: 'Not connected' },
  ERROR: { symbol: '✕', text: 'Error' },
};

/** Status in words and a symbol; colour only repeats it. */
export function StatusBadge({ status }: { readonly status: ConnectionStatus }) {
  const s = STATUS_TEXT[status];
  return (
    <span className={`badge status-${status.toLowerCase()}`} data-status={status}>
      <span aria-hidden="true">{s.symbol} </span>
      {s.text}
    </span>
  );
}

export const statusLabel = (status: ConnectionStatus): string => STATUS_TEXT[status].text;

/** An instant as local date and time; "never" when absent. */
export function Time({ iso, empty = '—' }: { readonly iso: string | null; readonly empty?: string }) {
  if (iso === null) return <span className="muted">{empty}</span>;
  const d = new Date(iso);
  return <time dateTime={iso}>{d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' })}</time>;
}

export function Loading({ what }: { readonly what: string }) {
  return (
    <p className="muted" role="status">
      Loading {what}…
    </p>
  );
}

/** Catalog text with `code` in backticks, shown as code rather than as backticks. */
export function Prose({ text }: { readonly text: string }) {
  const parts: ReactNode[] = [];
  let inCode = false;
  let at = 0; // where the part starts in `text`: its key
  for (const part of text.split('`')) {
    parts.push(inCode ? <code key={at}>{part}</code> : part);
    inCode = !inCode;
    at += part.length + 1;
  }
  return <>{parts}</>;
}

/** A VERSION_CONFLICT, said as the API says it, with the one way forward: reload and try again. */
export function ConflictNotice({
  what,
  undone,
  action,
  onAction,
}: {
  readonly what: string;
  readonly undone: string;
  readonly action: string;
  readonly onAction: () => void;
}) {
  return (
    <div className="warning-box" role="alert">
      <p>
        <strong>VERSION_CONFLICT</strong>: someone else changed this {what} after it was shown, so {undone}.
      </p>
      <button type="button" onClick={onAction}>
        {action}
      </button>
    </div>
  );
}

/**
 * The page's heading: takes the focus when the page appears (as a page load would, for keyboard
 * and screen reader users) and names the tab after the page.
 */
export function PageTitle({ children }: { readonly children: ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => ref.current?.focus(), []);
  useEffect(() => {
    document.title = `${ref.current?.textContent ?? ''} · Credential gateway console`;
  });
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children}
    </h1>
  );
}
