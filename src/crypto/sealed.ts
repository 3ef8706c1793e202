/**
 * A sealed secret: envelope-encrypted text as it rests in the store. Branded so that a plaintext
 * string can never be written where a sealed one belongs (and the other way round).
 *
 * Format (all parts base64url): `v1.<keyId>.<wrappedDataKey>.<iv>.<ciphertext>.<tag>`.
 * The key id sits in clear so that the store can find what a key still wraps (`LIKE 'v1.<kid>.%'`).
 */
export type Sealed = string & { readonly __sealed: unique symbol };

export const SEALED_VERSION = 'v1';

/**
 * Which record and field a sealed value belongs to. It is the associated data of both the content
 * encryption and the data-key wrapping, so a ciphertext moved to another record or field fails.
 */
export type SealedRef =
  | { readonly kind: 'provider'; readonly field: 'clientSecret'; readonly providerId: string }
  | {
      readonly kind: 'connection';
      readonly field: 'clientSecret' | 'tokens';
      readonly providerId: string;
      readonly connectionId: string;
    }
  | { readonly kind: 'consent'; readonly field: 'codeVerifier' | 'linkToken'; readonly stateHash: string }
  | {
      readonly kind: 'pendingConsent';
      readonly field: 'tokens';
      readonly providerId: string;
      readonly connectionId: string;
      readonly consentHash: string;
    }
  /** A deleted connection's tokens and client secret, moved to its revocation row (RFC 7009). */
  | { readonly kind: 'revocation'; readonly field: 'clientSecret' | 'tokens'; readonly revocationId: string }
  /** A webhook's signing secret. */
  | { readonly kind: 'webhook'; readonly field: 'secret'; readonly webhookId: string };

/** IDs cannot contain `/`, so this string is unambiguous. */
export function associatedData(ref: SealedRef): string {
  switch (ref.kind) {
    case 'provider':
      return `cg/provider/${ref.providerId}/${ref.field}`;
    case 'connection':
      return `cg/connection/${ref.providerId}/${ref.connectionId}/${ref.field}`;
    case 'consent':
      return `cg/consent/${ref.stateHash}/${ref.field}`;
    case 'pendingConsent':
      return `cg/pending-consent/${ref.providerId}/${ref.connectionId}/${ref.consentHash}/${ref.field}`;
    case 'revocation':
      return `cg/revocation/${ref.revocationId}/${ref.field}`;
    case 'webhook':
      return `cg/webhook/${ref.webhookId}/${ref.field}`;
  }
}

/** The key id a sealed value's data key is wrapped with, read without decrypting. */
export function sealedKeyId(sealed: Sealed): string {
  const parts = sealed.split('.');
  if (parts.length !== 6 || parts[0] !== SEALED_VERSION || !parts[1]) throw new Error('not a sealed value');
  return parts[1];
}

/** `LIKE` prefix matching every value wrapped by `keyId` (key ids are `[a-z0-9-]`, no wildcards). */
export function sealedPrefix(keyId: string): string {
  return `${SEALED_VERSION}.${keyId}.`;
}
