/**
 * Key-encryption keys (KEKs). A keyring holds AES-256 keys by id; the primary one wraps new data
 * keys, the others only unwrap what they wrapped before. Implementations: a file created with mode
 * 0600 (embedded default) and a static list from the environment (`keys.key`).
 */
export interface KeyringKey {
  readonly id: string;
  /** 32 bytes. */
  readonly material: Buffer;
  readonly createdAt: Date;
}

export interface KeyInfo {
  readonly id: string;
  readonly primary: boolean;
  readonly createdAt: Date;
}

export interface Keyring {
  /** The key that wraps every new data key. */
  primary(): KeyringKey;
  get(id: string): KeyringKey | undefined;
  list(): readonly KeyInfo[];
  /**
   * Generates a new key, persists it, and makes it primary. Keyrings whose keys come from outside
   * (the environment) cannot, and throw BAD_USER_INPUT saying how to rotate there.
   */
  addPrimary(): Promise<KeyringKey>;
  /** Forgets a non-primary key. The caller has checked that nothing uses it any more. */
  remove(id: string): Promise<void>;
}
