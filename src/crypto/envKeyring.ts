/**
 * Keys from the environment (`keys.key` = `kid:base64[,kid:base64...]`, the first is primary), for
 * replicas that share one store. The keys live outside the gateway, so it can neither add nor
 * forget one: rotation is add-everywhere, restart, then re-wrap.
 */
import { ConfigError } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { KeyInfo, Keyring, KeyringKey } from './keyring.js';
import { KeySet } from './keySet.js';
import { KEK_BYTES, KEY_ID_PATTERN, parseKeyEntry, type KeyEntry } from './keySpec.js';

const CONFIG_KEY = 'keys.key';

const ROTATE_HOWTO =
  `keys come from ${CONFIG_KEY}: to rotate, put a new key first in ${CONFIG_KEY} on every replica ` +
  '(keep the old ones after it), restart them, then call rotateEncryptionKey to re-wrap stored secrets';

const RETIRE_HOWTO =
  `keys come from ${CONFIG_KEY}: to retire one, remove it from ${CONFIG_KEY} on every replica and restart ` +
  '(check first that encryptionKeys shows it with inUse 0)';

class EnvKeyring implements Keyring {
  readonly #set: KeySet;

  constructor(set: KeySet) {
    this.#set = set;
  }

  primary(): KeyringKey {
    return this.#set.primary();
  }

  get(id: string): KeyringKey | undefined {
    return this.#set.get(id);
  }

  list(): readonly KeyInfo[] {
    return this.#set.list();
  }

  addPrimary(): Promise<KeyringKey> {
    return Promise.reject(new GatewayError('BAD_USER_INPUT', `cannot add a key: ${ROTATE_HOWTO}`));
  }

  remove(id: string): Promise<void> {
    return Promise.reject(
      new GatewayError('BAD_USER_INPUT', `cannot retire key ${id}: ${RETIRE_HOWTO}`, { details: { field: 'id' } }),
    );
  }
}

function keyEntryProblem(at: string, entry: Extract<KeyEntry, { ok: false }>): string {
  if (entry.problem === 'format') return `${at} must be kid:base64key`;
  // Not echoed: a swapped `key:kid` entry would put key material in the message.
  if (entry.problem === 'id') return `${at} has an invalid key id; key ids match ${KEY_ID_PATTERN.source}`;
  return `${at} (${entry.id}) must carry ${KEK_BYTES} bytes in base64 (for example: openssl rand -base64 32)`;
}

/**
 * Parses `keys.key`. Errors are ConfigError naming the entry, never its key material. The keys have
 * no recorded creation time, so `createdAt` is when this process loaded them.
 */
export function parseEnvKeyring(spec: string, loadedAt: Date = new Date()): Keyring {
  const entries = spec.split(',').map((s) => s.trim());
  if (entries.length === 1 && entries[0] === '')
    throw new ConfigError([`${CONFIG_KEY} must hold at least one kid:base64key entry`]);
  const problems: string[] = [];
  const keys: KeyringKey[] = [];
  for (const [i, entry] of entries.entries()) {
    const at = `${CONFIG_KEY} entry ${i + 1}`;
    const parsed = parseKeyEntry(entry);
    if (!parsed.ok) {
      problems.push(keyEntryProblem(at, parsed));
      continue;
    }
    const { id, material } = parsed;
    if (keys.some((k) => k.id === id)) {
      problems.push(`${at} repeats key id ${id}`);
      continue;
    }
    keys.push({ id, material, createdAt: loadedAt });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return new EnvKeyring(new KeySet(keys, keys[0]!.id));
}
