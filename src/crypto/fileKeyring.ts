/**
 * The embedded default keyring: a JSON file created on first start with mode 0600.
 *
 * `{ "version": 1, "primary": "<kid>", "keys": [{ "id", "key": "<base64 32 bytes>", "createdAt" }] }`
 *
 * Every write goes to a temp file in the same directory, is fsynced, then renamed over the old one:
 * a crash leaves either the old or the new keyring, never a torn one (a lost key is lost data).
 * Changes re-read the file first and an unknown key id triggers a reload, so a second process on
 * the same file sees keys it added; two processes rotating at the same instant can still race,
 * which is why shared deployments should take their keys from `keys.key` instead.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { link, mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { isRecord } from '../values.js';
import { GatewayError } from '../errors.js';
import type { KeyInfo, Keyring, KeyringKey } from './keyring.js';
import { KeySet } from './keySet.js';
import { KEK_BYTES, KEY_ID_PATTERN } from './keySpec.js';

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
const GROUP_OR_OTHER_BITS = 0o077;
const FORMAT_VERSION = 1;

interface KeyringDocument {
  readonly version: typeof FORMAT_VERSION;
  readonly primary: string;
  readonly keys: readonly { readonly id: string; readonly key: string; readonly createdAt: string }[];
}

/** Where the file stood when we last read or wrote it, to notice another process's change. */
interface FileStamp {
  readonly mtimeMs: number;
  readonly size: number;
}

interface Loaded {
  readonly set: KeySet;
  readonly stamp: FileStamp;
}

function isNotFound(e: unknown): boolean {
  return isRecord(e) && e['code'] === 'ENOENT';
}

function decodeKey(text: unknown): Buffer | null {
  if (typeof text !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return null;
  const bytes = Buffer.from(text, 'base64');
  return bytes.length === KEK_BYTES && bytes.toString('base64') === text ? bytes : null;
}

/** Validates the parsed JSON; every message names the offending field. */
function toKeySet(doc: unknown): KeySet {
  if (!isRecord(doc)) throw new Error('must hold a JSON object');
  if (doc['version'] !== FORMAT_VERSION) throw new Error(`"version" must be ${FORMAT_VERSION}`);
  const primary = doc['primary'];
  if (typeof primary !== 'string' || !KEY_ID_PATTERN.test(primary)) throw new Error('"primary" must be a key id');
  const keys = doc['keys'];
  if (!Array.isArray(keys) || keys.length === 0) throw new Error('"keys" must be a non-empty list');
  const parsed = keys.map((entry: unknown, i): KeyringKey => {
    if (!isRecord(entry)) throw new Error(`keys[${i}] must be an object`);
    const { id, key, createdAt } = entry;
    if (typeof id !== 'string' || !KEY_ID_PATTERN.test(id))
      throw new Error(`keys[${i}].id must match ${KEY_ID_PATTERN.source}`);
    const material = decodeKey(key);
    if (!material) throw new Error(`keys[${i}].key must be ${KEK_BYTES} bytes in base64`);
    const created = typeof createdAt === 'string' ? new Date(createdAt) : new Date(Number.NaN);
    if (Number.isNaN(created.getTime())) throw new Error(`keys[${i}].createdAt must be an ISO date`);
    return { id, material, createdAt: created };
  });
  return new KeySet(parsed, primary);
}

function toDocument(set: KeySet): KeyringDocument {
  return {
    version: FORMAT_VERSION,
    primary: set.primary().id,
    keys: set
      .keys()
      .map((k) => ({ id: k.id, key: k.material.toString('base64'), createdAt: k.createdAt.toISOString() })),
  };
}

function parseFile(file: string, text: string, mode: number, isFile: boolean): KeySet {
  if (!isFile) throw new Error(`keyring file ${file} is not a regular file`);
  if (process.platform !== 'win32' && (mode & GROUP_OR_OTHER_BITS) !== 0) {
    const shown = (mode & 0o777).toString(8).padStart(4, '0');
    throw new Error(
      `keyring file ${file} is accessible by group or others (mode ${shown}) and holds encryption keys; ` +
        `restrict it with: chmod 600 ${file}`,
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`keyring file ${file} is not valid JSON`);
  }
  try {
    return toKeySet(doc);
  } catch (e) {
    throw new Error(`keyring file ${file}: ${(e as Error).message}`);
  }
}

/** Reads through one file handle, so the mode checked is the mode of the bytes read. */
async function readKeyring(file: string): Promise<Loaded | null> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, 'r');
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
  try {
    const st = await handle.stat();
    const text = await handle.readFile('utf8');
    return { set: parseFile(file, text, st.mode, st.isFile()), stamp: { mtimeMs: st.mtimeMs, size: st.size } };
  } finally {
    await handle.close();
  }
}

function readKeyringSync(file: string): Loaded {
  const st = statSync(file);
  const text = readFileSync(file, 'utf8');
  return { set: parseFile(file, text, st.mode, st.isFile()), stamp: { mtimeMs: st.mtimeMs, size: st.size } };
}

function utcDay(d: Date): string {
  return d.toISOString().slice(0, 10).replace(/-/g, '');
}

function generateKey(taken: KeySet | null): KeyringKey {
  const createdAt = new Date();
  for (;;) {
    const id = `k-${utcDay(createdAt)}-${randomBytes(3).toString('hex')}`;
    if (!taken?.get(id)) return { id, material: randomBytes(KEK_BYTES), createdAt };
  }
}

async function syncDir(dir: string): Promise<void> {
  // Makes the rename itself durable; some platforms cannot open a directory, which is fine.
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    /* best effort */
  }
}

/** Writes `set` to a fresh 0600 temp file next to `file`, fsynced; returns its path. */
async function writeTemp(file: string, set: KeySet): Promise<string> {
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', FILE_MODE);
  try {
    await handle.writeFile(`${JSON.stringify(toDocument(set), null, 2)}\n`, 'utf8');
    await handle.chmod(FILE_MODE); // exactly 0600, whatever the umask made of it
    await handle.sync();
  } finally {
    await handle.close();
  }
  return temp;
}

async function stampOf(file: string): Promise<FileStamp> {
  const handle = await open(file, 'r');
  try {
    const st = await handle.stat();
    return { mtimeMs: st.mtimeMs, size: st.size };
  } finally {
    await handle.close();
  }
}

async function replaceFile(file: string, set: KeySet): Promise<FileStamp> {
  const temp = await writeTemp(file, set);
  try {
    await rename(temp, file);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
  await syncDir(dirname(file));
  return stampOf(file);
}

/** First start: `link` never overwrites, so two processes starting together agree on one file. */
async function createKeyring(file: string): Promise<Loaded> {
  await mkdir(dirname(file), { recursive: true, mode: DIR_MODE });
  const key = generateKey(null);
  const set = new KeySet([key], key.id);
  const temp = await writeTemp(file, set);
  try {
    await link(temp, file);
  } catch (e) {
    if (!isRecord(e) || e['code'] !== 'EEXIST') throw e;
    const existing = await readKeyring(file);
    if (existing) return existing;
    throw e;
  } finally {
    await rm(temp, { force: true });
  }
  await syncDir(dirname(file));
  return { set, stamp: await stampOf(file) };
}

class FileKeyring implements Keyring {
  readonly #file: string;
  #loaded: Loaded;
  /** Serializes changes within this process. */
  #writing: Promise<unknown> = Promise.resolve();

  constructor(file: string, loaded: Loaded) {
    this.#file = file;
    this.#loaded = loaded;
  }

  primary(): KeyringKey {
    return this.#loaded.set.primary();
  }

  get(id: string): KeyringKey | undefined {
    return this.#loaded.set.get(id) ?? this.#reloadIfChanged()?.get(id);
  }

  list(): readonly KeyInfo[] {
    return this.#loaded.set.list();
  }

  addPrimary(): Promise<KeyringKey> {
    return this.#change((current) => {
      const key = generateKey(current);
      return { next: current.withPrimary(key), result: key };
    });
  }

  remove(id: string): Promise<void> {
    return this.#change((current) => {
      if (id === current.primary().id)
        throw new GatewayError('BAD_USER_INPUT', `key ${id} is the primary key and cannot be removed`, {
          details: { field: 'id' },
        });
      if (!current.get(id)) throw new GatewayError('NOT_FOUND', `key ${id} not found`);
      return { next: current.without(id), result: undefined };
    });
  }

  /** Read-modify-write from the file as it is now, so another process's change is not undone. */
  #change<T>(apply: (current: KeySet) => { next: KeySet; result: T }): Promise<T> {
    const run = this.#writing.then(async () => {
      const fresh = await readKeyring(this.#file).catch((e: unknown) => {
        throw new GatewayError('INTERNAL_SERVER_ERROR', 'keyring file cannot be read', { cause: e });
      });
      const { next, result } = apply(fresh?.set ?? this.#loaded.set);
      const stamp = await replaceFile(this.#file, next).catch((e: unknown) => {
        throw new GatewayError('INTERNAL_SERVER_ERROR', 'keyring file cannot be written', { cause: e });
      });
      this.#loaded = { set: next, stamp };
      return result;
    });
    this.#writing = run.catch(() => undefined);
    return run;
  }

  #reloadIfChanged(): KeySet | null {
    try {
      const st = statSync(this.#file);
      if (st.mtimeMs === this.#loaded.stamp.mtimeMs && st.size === this.#loaded.stamp.size) return null;
      this.#loaded = readKeyringSync(this.#file);
      return this.#loaded.set;
    } catch {
      // Keep serving the keys we hold; the broken file is reported at the next start or change.
      return null;
    }
  }
}

/**
 * Opens the keyring file at `path`, creating it (and its directory, mode 0700) with one random key
 * on first use. Refuses a file that group or others can access, or whose content is not a keyring.
 */
export async function openFileKeyring(path: string): Promise<Keyring> {
  const file = resolve(path);
  const loaded = (await readKeyring(file)) ?? (await createKeyring(file));
  return new FileKeyring(file, loaded);
}
