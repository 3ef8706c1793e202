/**
 * Envelope encryption of secret fields (docs/design.md "Storage and encryption").
 *
 * Every seal draws its own 256-bit data key. The content is AES-256-GCM under that data key with
 * `associatedData(ref)`; the data key is AES-256-GCM-wrapped by the keyring's primary KEK with
 * associated data binding the key id and the same ref, so neither the ciphertext nor the wrapped
 * key can be moved to another record or field, or relabelled with another key id.
 *
 * `v1.<keyId>.<wrappedDataKey>.<iv>.<ciphertext>.<tag>`, where `wrappedDataKey` is
 * base64url(wrapIv ‖ wrappedKey ‖ wrapTag) and every other part is base64url on its own.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { GatewayError } from '../errors.js';
import type { Keyring, KeyringKey } from './keyring.js';
import { KEY_ID_PATTERN } from './keySpec.js';
import { SEALED_VERSION, associatedData, type Sealed, type SealedRef } from './sealed.js';

const CIPHER = 'aes-256-gcm';
const DATA_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const WRAPPED_KEY_BYTES = IV_BYTES + DATA_KEY_BYTES + TAG_BYTES;
const BASE64URL_PATTERN = /^[A-Za-z0-9_-]*$/;

/** Why a sealed value could not be opened; key ids are not secret, nothing else is said. */
export type OpenFailure = 'MALFORMED' | 'UNKNOWN_KEY' | 'KEY_UNWRAP_FAILED' | 'CONTENT_AUTH_FAILED';

const FAILURE_TEXT: Readonly<Record<OpenFailure, string>> = Object.freeze({
  MALFORMED: 'sealed value is malformed',
  UNKNOWN_KEY: 'sealed value is wrapped by a key the keyring does not hold',
  KEY_UNWRAP_FAILED: 'data key failed authentication (other record or field, or tampered)',
  CONTENT_AUTH_FAILED: 'content failed authentication (other record or field, or tampered)',
});

/** The internal cause of a decryption failure; `reason` lets callers (and tests) tell them apart. */
export class SealedOpenFailure extends Error {
  readonly reason: OpenFailure;
  constructor(reason: OpenFailure, keyId?: string) {
    super(keyId === undefined ? FAILURE_TEXT[reason] : `${FAILURE_TEXT[reason]} (key ${keyId})`);
    this.name = 'SealedOpenFailure';
    this.reason = reason;
  }
}

function failure(reason: OpenFailure, keyId?: string): GatewayError {
  return new GatewayError('INTERNAL_SERVER_ERROR', 'stored secret cannot be decrypted', {
    cause: new SealedOpenFailure(reason, keyId),
  });
}

interface Parts {
  readonly keyId: string;
  readonly wrapped: Buffer;
  readonly iv: Buffer;
  readonly ciphertext: Buffer;
  readonly tag: Buffer;
  /** The encoded `<iv>.<ciphertext>.<tag>` tail, reused verbatim by rewrap. */
  readonly contentText: string;
}

/** Strict base64url: a part that decodes to the same bytes under another spelling is refused. */
function decodePart(text: string): Buffer | null {
  if (!BASE64URL_PATTERN.test(text)) return null;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : null;
}

function parse(sealed: string): Parts {
  const parts = typeof sealed === 'string' ? sealed.split('.') : [];
  if (parts.length !== 6 || parts[0] !== SEALED_VERSION) throw failure('MALFORMED');
  const [, keyId = '', wrappedText = '', ivText = '', ctText = '', tagText = ''] = parts;
  if (!KEY_ID_PATTERN.test(keyId)) throw failure('MALFORMED');
  const wrapped = decodePart(wrappedText);
  const iv = decodePart(ivText);
  const ciphertext = decodePart(ctText);
  const tag = decodePart(tagText);
  if (
    wrapped?.length !== WRAPPED_KEY_BYTES ||
    iv?.length !== IV_BYTES ||
    ciphertext === null ||
    tag?.length !== TAG_BYTES
  )
    throw failure('MALFORMED', keyId);
  return { keyId, wrapped, iv, ciphertext, tag, contentText: `${ivText}.${ctText}.${tagText}` };
}

/** Associated data of the key wrapping: which KEK, and which record and field the key serves. */
function wrapAad(keyId: string, ref: SealedRef): Buffer {
  return Buffer.from(`cg/wrap/${SEALED_VERSION}/${keyId}/${associatedData(ref)}`, 'utf8');
}

function wrapKey(kek: KeyringKey, dataKey: Buffer, ref: SealedRef): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(CIPHER, kek.material, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(wrapAad(kek.id, ref));
  const out = Buffer.concat([iv, cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]);
  return out.toString('base64url');
}

function unwrapKey(keyring: Keyring, parts: Parts, ref: SealedRef): Buffer {
  const kek = keyring.get(parts.keyId);
  if (!kek) throw failure('UNKNOWN_KEY', parts.keyId);
  const iv = parts.wrapped.subarray(0, IV_BYTES);
  const body = parts.wrapped.subarray(IV_BYTES, IV_BYTES + DATA_KEY_BYTES);
  const tag = parts.wrapped.subarray(IV_BYTES + DATA_KEY_BYTES);
  try {
    const decipher = createDecipheriv(CIPHER, kek.material, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(wrapAad(kek.id, ref));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw failure('KEY_UNWRAP_FAILED', parts.keyId);
  }
}

/** Decrypts and authenticates the content; the caller owns (and zeroes) the returned buffer. */
function decryptContent(dataKey: Buffer, parts: Parts, ref: SealedRef): Buffer {
  try {
    const decipher = createDecipheriv(CIPHER, dataKey, parts.iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(associatedData(ref), 'utf8'));
    decipher.setAuthTag(parts.tag);
    return Buffer.concat([decipher.update(parts.ciphertext), decipher.final()]);
  } catch {
    throw failure('CONTENT_AUTH_FAILED', parts.keyId);
  }
}

export class Envelope {
  readonly #keyring: Keyring;

  constructor(keyring: Keyring) {
    this.#keyring = keyring;
  }

  seal(plaintext: string, ref: SealedRef): Sealed {
    const kek = this.#keyring.primary();
    const dataKey = randomBytes(DATA_KEY_BYTES);
    const clear = Buffer.from(plaintext, 'utf8');
    try {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv(CIPHER, dataKey, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(associatedData(ref), 'utf8'));
      const ciphertext = Buffer.concat([cipher.update(clear), cipher.final()]);
      const tag = cipher.getAuthTag();
      const wrapped = wrapKey(kek, dataKey, ref);
      return [
        SEALED_VERSION,
        kek.id,
        wrapped,
        iv.toString('base64url'),
        ciphertext.toString('base64url'),
        tag.toString('base64url'),
      ].join('.') as Sealed;
    } finally {
      dataKey.fill(0);
      clear.fill(0);
    }
  }

  open(sealed: Sealed, ref: SealedRef): string {
    const parts = parse(sealed);
    const dataKey = unwrapKey(this.#keyring, parts, ref);
    let clear: Buffer | null = null;
    try {
      clear = decryptContent(dataKey, parts, ref);
      return clear.toString('utf8');
    } finally {
      dataKey.fill(0);
      clear?.fill(0);
    }
  }

  /** The secret sealed to `from`, sealed anew to `to` (it moves to another record). */
  reseal(sealed: Sealed, from: SealedRef, to: SealedRef): Sealed {
    return this.seal(this.open(sealed, from), to);
  }

  /**
   * Wraps the same data key with the current primary KEK; the content ciphertext is kept as is.
   * The content is still authenticated first, so a damaged value is reported, not carried over.
   */
  rewrap(sealed: Sealed, ref: SealedRef): Sealed {
    const parts = parse(sealed);
    const dataKey = unwrapKey(this.#keyring, parts, ref);
    try {
      decryptContent(dataKey, parts, ref).fill(0);
      const kek = this.#keyring.primary();
      return [SEALED_VERSION, kek.id, wrapKey(kek, dataKey, ref), parts.contentText].join('.') as Sealed;
    } finally {
      dataKey.fill(0);
    }
  }
}
