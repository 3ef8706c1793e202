/**
 * An immutable set of key-encryption keys with one primary: the in-memory half shared by the file
 * and environment keyrings. Changing keys builds a new set, so readers never see a half-applied one.
 */
import type { KeyInfo, KeyringKey } from './keyring.js';
import { KEK_BYTES, KEY_ID_PATTERN } from './keySpec.js';

export class KeySet {
  readonly #byId: ReadonlyMap<string, KeyringKey>;
  readonly #primary: KeyringKey;
  readonly #infos: readonly KeyInfo[];

  /** Throws a plain Error (the callers add where the keys came from) on an invalid set. */
  constructor(keys: readonly KeyringKey[], primaryId: string) {
    const byId = new Map<string, KeyringKey>();
    for (const key of keys) {
      if (!KEY_ID_PATTERN.test(key.id)) throw new Error(`key id "${key.id}" must match ${KEY_ID_PATTERN.source}`);
      if (key.material.length !== KEK_BYTES) throw new Error(`key ${key.id} must be ${KEK_BYTES} bytes`);
      if (byId.has(key.id)) throw new Error(`key id ${key.id} appears twice`);
      byId.set(key.id, Object.freeze({ ...key }));
    }
    const primary = byId.get(primaryId);
    if (!primary) throw new Error(`primary key ${primaryId} is not among the keys`);
    this.#byId = byId;
    this.#primary = primary;
    this.#infos = Object.freeze(
      [...byId.values()].map((k) => Object.freeze({ id: k.id, primary: k.id === primaryId, createdAt: k.createdAt })),
    );
  }

  primary(): KeyringKey {
    return this.#primary;
  }

  get(id: string): KeyringKey | undefined {
    return this.#byId.get(id);
  }

  list(): readonly KeyInfo[] {
    return this.#infos;
  }

  keys(): KeyringKey[] {
    return [...this.#byId.values()];
  }

  withPrimary(key: KeyringKey): KeySet {
    return new KeySet([...this.#byId.values(), key], key.id);
  }

  without(id: string): KeySet {
    return new KeySet(
      [...this.#byId.values()].filter((k) => k.id !== id),
      this.#primary.id,
    );
  }
}
