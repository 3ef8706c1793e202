/**
 * The admin's credential for this tab: an API key (sent as `x-api-key`) or an admin JWT (sent as
 * `Authorization: Bearer`). Kept in sessionStorage so that a reload keeps the admin signed in;
 * it dies with the tab. Never localStorage, never a cookie.
 */
export type CredentialKind = 'apiKey' | 'jwt';

export interface Credential {
  readonly kind: CredentialKind;
  readonly value: string;
}

const STORAGE_KEY = 'credential-gateway.console.credential';

export function loadCredential(): Credential | null {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    if (raw === null) return null;
    const parsed = JSON.parse(raw) as Partial<Credential>;
    if (
      (parsed.kind === 'apiKey' || parsed.kind === 'jwt') &&
      typeof parsed.value === 'string' &&
      parsed.value !== ''
    ) {
      return { kind: parsed.kind, value: parsed.value };
    }
  } catch {
    // Storage refused (private mode) or garbled: sign in again.
  }
  return null;
}

export function saveCredential(credential: Credential): void {
  try {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credential));
  } catch {
    // Without storage the credential lives in memory only: a reload signs out.
  }
}

export function clearCredential(): void {
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Nothing stored.
  }
}

export function headersFor(credential: Credential): Record<string, string> {
  return credential.kind === 'apiKey'
    ? { 'x-api-key': credential.value }
    : { authorization: `Bearer ${credential.value}` };
}
