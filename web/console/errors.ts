/**
 * Errors as the management API words them: `{ message, extensions: { code, field? } }`, whether
 * they arrive in a 200 GraphQL answer or with an HTTP error status (401, 400, 409...).
 */
import { CombinedGraphQLErrors, ServerError } from '@apollo/client/errors';

export interface ApiError {
  readonly code: string;
  readonly message: string;
  /** The input path the error names (`input.clientId`, `postLoginRedirectUrl`...), for BAD_USER_INPUT. */
  readonly field: string | null;
}

interface RawError {
  readonly message?: unknown;
  readonly extensions?: { readonly code?: unknown; readonly field?: unknown };
}

function fromRaw(raw: RawError): ApiError {
  return {
    code: typeof raw.extensions?.code === 'string' ? raw.extensions.code : 'ERROR',
    message: typeof raw.message === 'string' ? raw.message : 'The request failed.',
    field: typeof raw.extensions?.field === 'string' ? raw.extensions.field : null,
  };
}

export function apiErrors(error: unknown): ApiError[] {
  if (error === null || error === undefined) return [];
  if (CombinedGraphQLErrors.is(error)) return error.errors.map((e) => fromRaw(e as RawError));
  if (ServerError.is(error)) {
    try {
      const body = JSON.parse(error.bodyText) as { errors?: RawError[]; message?: string; code?: string };
      if (Array.isArray(body.errors) && body.errors.length > 0) return body.errors.map(fromRaw);
      if (typeof body.message === 'string')
        return [{ code: body.code ?? `HTTP_${error.statusCode}`, message: body.message, field: null }];
    } catch {
      // Not JSON: fall through to the status.
    }
    return [{ code: `HTTP_${error.statusCode}`, message: `The gateway answered ${error.statusCode}.`, field: null }];
  }
  if (error instanceof TypeError) return [{ code: 'NETWORK', message: 'The gateway cannot be reached.', field: null }];
  return [{ code: 'ERROR', message: error instanceof Error ? error.message : String(error), field: null }];
}

export const hasCode = (error: unknown, code: string): boolean => apiErrors(error).some((e) => e.code === code);

/** Errors that name a field, by field, and the others, for a form. */
export interface FormErrors {
  readonly byField: ReadonlyMap<string, string>;
  readonly general: readonly ApiError[];
}

export const NO_ERRORS: FormErrors = { byField: new Map(), general: [] };

/**
 * Splits errors between the form's fields and the rest. `fields` maps an API field path (or its
 * prefix, such as `input.scopes` for `input.scopes[2]`) to the form's control name.
 */
export function formErrors(error: unknown, fields: readonly string[]): FormErrors {
  const byField = new Map<string, string>();
  const general: ApiError[] = [];
  for (const e of apiErrors(error)) {
    const match = e.field === null ? undefined : matchField(e.field, fields);
    if (match === undefined) general.push(e);
    else byField.set(match, e.message);
  }
  return { byField, general };
}

function matchField(path: string, fields: readonly string[]): string | undefined {
  // The longest known path that is the error's path or a prefix of it (`input.scopes[1]`).
  return [...fields]
    .sort((a, b) => b.length - a.length)
    .find((f) => path === f || path.startsWith(`${f}.`) || path.startsWith(`${f}[`));
}
