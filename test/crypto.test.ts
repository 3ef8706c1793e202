import { randomBytes } from 'node:crypto';
import { chmod, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/schema.js';
import { Envelope, SealedOpenFailure, type OpenFailure } from '../src/crypto/envelope.js';
import { parseEnvKeyring } from '../src/crypto/envKeyring.js';
import { openFileKeyring } from '../src/crypto/fileKeyring.js';
import type { Keyring } from '../src/crypto/keyring.js';
import { sealedKeyId, type Sealed, type SealedRef } from '../src/crypto/sealed.js';
import { GatewayError } from '../src/errors.js';
import { tempDir, type TempDir } from './support/tmp.js';

const PROVIDER: SealedRef = { kind: 'provider', field: 'clientSecret', providerId: 'github-01' };
const TOKENS: SealedRef = { kind: 'connection', field: 'tokens', providerId: 'github-01', connectionId: 'alice' };
const CONN_SECRET: SealedRef = {
  kind: 'connection',
  field: 'clientSecret',
  providerId: 'github-01',
  connectionId: 'alice',
};
const CONSENT: SealedRef = { kind: 'consent', field: 'codeVerifier', stateHash: 'c2hhMjU2' };
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const SECRET = 'gho_super-secret-token-value-1234567890';

let tmp: TempDir;
let fileCount = 0;
beforeAll(async () => {
  tmp = await tempDir('cg-crypto-');
});
afterAll(async () => {
  await tmp.cleanup();
});

/** A fresh keyring file path in the temp dir, under a directory that does not exist yet. */
function freshPath(): string {
  fileCount += 1;
  return tmp.file(`run-${fileCount}`, 'nested', 'keyring.json');
}

function b64(bytes = 32): string {
  return randomBytes(bytes).toString('base64');
}

/** Runs `fn`, expecting the decryption failure with the given internal reason. */
function expectOpenFailure(fn: () => unknown, reason: OpenFailure): GatewayError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(GatewayError);
  const err = caught as GatewayError;
  expect(err.code).toBe('INTERNAL_SERVER_ERROR');
  expect(err.message).toBe('stored secret cannot be decrypted');
  expect(err.cause).toBeInstanceOf(SealedOpenFailure);
  expect((err.cause as SealedOpenFailure).reason).toBe(reason);
  expect(String((err.cause as Error).message)).not.toContain(SECRET);
  return err;
}

async function expectRejectCode(p: Promise<unknown>, code: string): Promise<GatewayError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(GatewayError);
  expect((e as GatewayError).code).toBe(code);
  return e as GatewayError;
}

/** Flips one bit inside the decoded bytes of part `index` and re-encodes it canonically. */
function tamperPart(sealed: Sealed, index: number): Sealed {
  const parts = sealed.split('.');
  const bytes = Buffer.from(parts[index]!, 'base64url');
  if (bytes.length === 0) throw new Error('empty part');
  bytes[bytes.length - 1]! ^= 0x01;
  parts[index] = bytes.toString('base64url');
  return parts.join('.') as Sealed;
}

describe('Envelope', () => {
  let keyring: Keyring;
  let envelope: Envelope;
  beforeAll(async () => {
    keyring = await openFileKeyring(freshPath());
    envelope = new Envelope(keyring);
  });

  it('opens what it sealed, for every kind of field, including empty and non-ASCII text', () => {
    for (const ref of [PROVIDER, TOKENS, CONN_SECRET, CONSENT]) {
      for (const text of [SECRET, '', 'ünïcødé ✓ 🔑', JSON.stringify({ accessToken: 'a'.repeat(5000) })]) {
        expect(envelope.open(envelope.seal(text, ref), ref)).toBe(text);
      }
    }
  });

  it('writes the documented format v1.<keyId>.<wrappedDataKey>.<iv>.<ciphertext>.<tag>', () => {
    const sealed = envelope.seal(SECRET, TOKENS);
    expect(sealed).toMatch(
      /^v1\.k-\d{8}-[0-9a-f]{6}\.[A-Za-z0-9_-]{80}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/,
    );
    expect(sealedKeyId(sealed)).toBe(keyring.primary().id);
    const [, , , , ciphertext] = sealed.split('.');
    expect(Buffer.from(ciphertext!, 'base64url').length).toBe(Buffer.byteLength(SECRET));
  });

  it('seals the same plaintext differently every time (fresh data key and IVs)', () => {
    const a = envelope.seal(SECRET, TOKENS).split('.');
    const b = envelope.seal(SECRET, TOKENS).split('.');
    expect(a.slice(0, 2)).toEqual(b.slice(0, 2));
    for (const i of [2, 3, 4, 5]) expect(a[i]).not.toBe(b[i]);
  });

  it('never lets the plaintext appear in the sealed text, in any common encoding', () => {
    const sealed = envelope.seal(SECRET, TOKENS);
    const plain = Buffer.from(SECRET);
    for (const encoded of [SECRET, plain.toString('base64'), plain.toString('base64url'), plain.toString('hex')]) {
      expect(sealed).not.toContain(encoded.slice(0, 16));
    }
  });

  describe('a ciphertext moved to another record or field fails to decrypt', () => {
    const sealedFor = (ref: SealedRef) => envelope.seal(SECRET, ref);
    const moves: [string, SealedRef, SealedRef][] = [
      ['another provider', PROVIDER, { ...PROVIDER, providerId: 'github-02' }],
      ['another connection of the same provider', TOKENS, { ...TOKENS, connectionId: 'bob' }],
      ['the same connection id under another provider', TOKENS, { ...TOKENS, providerId: 'google-01' }],
      ['another field of the same connection', TOKENS, CONN_SECRET],
      ['a provider field from a connection field', CONN_SECRET, PROVIDER],
      ['another consent state', CONSENT, { ...CONSENT, stateHash: 'b3RoZXI' }],
      ['a connection, from a revocation row', { kind: 'revocation', field: 'tokens', revocationId: 'rev-1' }, TOKENS],
      [
        'another revocation row',
        { kind: 'revocation', field: 'tokens', revocationId: 'rev-1' },
        { kind: 'revocation', field: 'tokens', revocationId: 'rev-2' },
      ],
      [
        'another webhook',
        { kind: 'webhook', field: 'secret', webhookId: 'ops' },
        { kind: 'webhook', field: 'secret', webhookId: 'dev' },
      ],
    ];

    it('resealed to a revocation row, opens there and no longer under the connection it left', () => {
      const revocation: SealedRef = { kind: 'revocation', field: 'tokens', revocationId: 'rev-1' };
      const moved = envelope.reseal(sealedFor(TOKENS), TOKENS, revocation);
      expect(envelope.open(moved, revocation)).toBe(SECRET);
      expectOpenFailure(() => envelope.open(moved, TOKENS), 'KEY_UNWRAP_FAILED');
    });
    for (const [name, from, to] of moves) {
      it(`to ${name}`, () => {
        const sealed = sealedFor(from);
        expectOpenFailure(() => envelope.open(sealed, to), 'KEY_UNWRAP_FAILED');
        expectOpenFailure(() => envelope.rewrap(sealed, to), 'KEY_UNWRAP_FAILED');
      });
    }

    it('even when the wrapped data key of the target record is spliced onto the moved content', () => {
      const alice = envelope.seal(SECRET, TOKENS).split('.');
      const bobRef: SealedRef = { ...TOKENS, connectionId: 'bob' };
      const bob = envelope.seal('bob-token', bobRef).split('.');
      const spliced = [...bob.slice(0, 3), ...alice.slice(3)].join('.') as Sealed;
      expectOpenFailure(() => envelope.open(spliced, bobRef), 'CONTENT_AUTH_FAILED');
    });
  });

  describe('tampering with any part fails', () => {
    const names = ['', '', 'wrapped data key', 'iv', 'ciphertext', 'tag'];
    for (const [index, reason] of [
      [2, 'KEY_UNWRAP_FAILED'],
      [3, 'CONTENT_AUTH_FAILED'],
      [4, 'CONTENT_AUTH_FAILED'],
      [5, 'CONTENT_AUTH_FAILED'],
    ] as const) {
      it(`the ${names[index]}`, () => {
        const tampered = tamperPart(envelope.seal(SECRET, TOKENS), index);
        expectOpenFailure(() => envelope.open(tampered, TOKENS), reason);
        expectOpenFailure(() => envelope.rewrap(tampered, TOKENS), reason);
      });
    }

    it('the version', () => {
      const sealed = envelope.seal(SECRET, TOKENS);
      expectOpenFailure(() => envelope.open(sealed.replace(/^v1/, 'v2') as Sealed, TOKENS), 'MALFORMED');
    });

    it('the key id, relabelled as another key the keyring holds', async () => {
      const own = await openFileKeyring(freshPath());
      const ownEnvelope = new Envelope(own);
      const sealed = ownEnvelope.seal(SECRET, TOKENS);
      const oldId = own.primary().id;
      const newId = (await own.addPrimary()).id;
      expect(ownEnvelope.open(sealed, TOKENS)).toBe(SECRET);
      const relabelled = sealed.replace(`v1.${oldId}.`, `v1.${newId}.`) as Sealed;
      expectOpenFailure(() => ownEnvelope.open(relabelled, TOKENS), 'KEY_UNWRAP_FAILED');
    });

    it('the shape: truncated, extra parts, bad base64url, non-canonical base64url, wrong lengths', () => {
      const sealed = envelope.seal(SECRET, TOKENS);
      const parts = sealed.split('.');
      const bad = [
        '',
        'not sealed',
        parts.slice(0, 5).join('.'),
        `${sealed}.AAAA`,
        [...parts.slice(0, 4), 'a+b/', parts[5]].join('.'),
        [...parts.slice(0, 3), parts[3]!.slice(0, -2), ...parts.slice(4)].join('.'),
        // Same bytes, spelled with a non-zero padding bit in the last character.
        [...parts.slice(0, 5), `${parts[5]!.slice(0, -1)}${B64URL[B64URL.indexOf(parts[5]!.slice(-1)) | 1]}`].join('.'),
        [parts[0], 'K-UPPER', ...parts.slice(2)].join('.'),
        [parts[0], '', ...parts.slice(2)].join('.'),
      ];
      for (const value of bad) expectOpenFailure(() => envelope.open(value as Sealed, TOKENS), 'MALFORMED');
    });
  });

  it('fails on a key id the keyring does not hold, naming the key id but no secret', async () => {
    const other = new Envelope(await openFileKeyring(freshPath()));
    const sealed = other.seal(SECRET, TOKENS);
    const err = expectOpenFailure(() => envelope.open(sealed, TOKENS), 'UNKNOWN_KEY');
    expect((err.cause as Error).message).toContain(sealedKeyId(sealed));
    expectOpenFailure(() => envelope.rewrap(sealed, TOKENS), 'UNKNOWN_KEY');
  });

  it('rewraps with the new primary keeping the content ciphertext, and the result opens', async () => {
    const own = await openFileKeyring(freshPath());
    const ownEnvelope = new Envelope(own);
    const sealed = ownEnvelope.seal(SECRET, TOKENS);
    const next = await own.addPrimary();
    const rewrapped = ownEnvelope.rewrap(sealed, TOKENS);
    expect(sealedKeyId(rewrapped)).toBe(next.id);
    expect(rewrapped.split('.').slice(3)).toEqual(sealed.split('.').slice(3));
    expect(rewrapped.split('.')[2]).not.toBe(sealed.split('.')[2]);
    expect(ownEnvelope.open(rewrapped, TOKENS)).toBe(SECRET);
    expectOpenFailure(() => ownEnvelope.open(rewrapped, CONN_SECRET), 'KEY_UNWRAP_FAILED');
  });
});

describe('openFileKeyring', () => {
  it('creates the keyring on first use: directory 0700, file 0600, one valid key, atomically', async () => {
    const path = freshPath();
    const keyring = await openFileKeyring(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(path, '..'))).mode & 0o777).toBe(0o700);
    const doc = JSON.parse(await readFile(path, 'utf8'));
    expect(doc).toEqual({
      version: 1,
      primary: keyring.primary().id,
      keys: [{ id: keyring.primary().id, key: expect.any(String), createdAt: expect.any(String) }],
    });
    expect(keyring.primary().id).toMatch(/^k-\d{8}-[0-9a-f]{6}$/);
    expect(keyring.primary().id.slice(2, 10)).toBe(new Date().toISOString().slice(0, 10).replace(/-/g, ''));
    expect(Buffer.from(doc.keys[0].key, 'base64')).toHaveLength(32);
    expect(await readdir(join(path, '..'))).toEqual(['keyring.json']);
  });

  it('reopens an existing file with the same keys, so sealed values still open', async () => {
    const path = freshPath();
    const first = await openFileKeyring(path);
    await first.addPrimary();
    const sealed = new Envelope(first).seal(SECRET, PROVIDER);
    const again = await openFileKeyring(path);
    expect(again.list()).toEqual(first.list());
    expect(again.primary().material.equals(first.primary().material)).toBe(true);
    expect(new Envelope(again).open(sealed, PROVIDER)).toBe(SECRET);
  });

  it('agrees on one file when two openers race on first use', async () => {
    const path = freshPath();
    const [a, b] = await Promise.all([openFileKeyring(path), openFileKeyring(path)]);
    expect(a.primary().id).toBe(b.primary().id);
    expect((await readdir(join(path, '..'))).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  for (const mode of [0o644, 0o640, 0o604, 0o660]) {
    it(`refuses a keyring file with mode 0${mode.toString(8)}, naming the path and the chmod fix`, async () => {
      const path = freshPath();
      await openFileKeyring(path);
      await chmod(path, mode);
      const err = await openFileKeyring(path).then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(Error);
      expect(err!.message).toContain(path);
      expect(err!.message).toContain(`chmod 600 ${path}`);
      expect(err!.message).toContain(`0${mode.toString(8)}`);
      await chmod(path, 0o600);
      await expect(openFileKeyring(path)).resolves.toBeDefined();
    });
  }

  describe('refuses a file that is not a valid keyring, with a message naming the problem', () => {
    const id = 'k-20240101-abcdef';
    const key = { id, key: b64(), createdAt: '2024-01-01T00:00:00.000Z' };
    const cases: [string, string, RegExp][] = [
      ['not JSON', '{"version": 1,', /is not valid JSON/],
      ['not an object', '[]', /must hold a JSON object/],
      ['another version', JSON.stringify({ version: 2, primary: id, keys: [key] }), /"version" must be 1/],
      ['no primary', JSON.stringify({ version: 1, keys: [key] }), /"primary" must be a key id/],
      ['no keys', JSON.stringify({ version: 1, primary: id, keys: [] }), /"keys" must be a non-empty list/],
      [
        'a bad key id',
        JSON.stringify({ version: 1, primary: id, keys: [key, { ...key, id: 'K_1' }] }),
        /keys\[1\]\.id must match/,
      ],
      [
        'a short key',
        JSON.stringify({ version: 1, primary: id, keys: [{ ...key, key: b64(31) }] }),
        /keys\[0\]\.key must be 32 bytes in base64/,
      ],
      [
        'a key that is not base64',
        JSON.stringify({ version: 1, primary: id, keys: [{ ...key, key: 'zz zz' }] }),
        /keys\[0\]\.key must be 32 bytes/,
      ],
      [
        'a bad date',
        JSON.stringify({ version: 1, primary: id, keys: [{ ...key, createdAt: 'yesterday' }] }),
        /keys\[0\]\.createdAt must be an ISO date/,
      ],
      [
        'a primary not among the keys',
        JSON.stringify({ version: 1, primary: 'k-other', keys: [key] }),
        /primary key k-other is not among the keys/,
      ],
      ['a repeated key id', JSON.stringify({ version: 1, primary: id, keys: [key, key] }), /appears twice/],
    ];
    for (const [name, content, message] of cases) {
      it(name, async () => {
        const path = freshPath();
        await openFileKeyring(path);
        await writeFile(path, content, { mode: 0o600 });
        const err = await openFileKeyring(path).then(
          () => null,
          (e: unknown) => e as Error,
        );
        expect(err).toBeInstanceOf(Error);
        expect(err!.message).toContain(path);
        expect(err!.message).toMatch(message);
        expect(err!.message).not.toContain(key.key);
      });
    }
  });

  it('addPrimary persists a new primary next to the old key, still 0600, with no temp file left', async () => {
    const path = freshPath();
    const keyring = await openFileKeyring(path);
    const old = keyring.primary();
    const added = await keyring.addPrimary();
    expect(added.id).not.toBe(old.id);
    expect(keyring.primary().id).toBe(added.id);
    expect(keyring.get(old.id)?.material.equals(old.material)).toBe(true);
    expect(keyring.list().map((k) => [k.id, k.primary])).toEqual([
      [old.id, false],
      [added.id, true],
    ]);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(path, '..'))).toEqual(['keyring.json']);
    const reopened = await openFileKeyring(path);
    expect(reopened.primary().id).toBe(added.id);
    expect(reopened.list()).toHaveLength(2);
  });

  it('serializes concurrent addPrimary calls so no key is lost', async () => {
    const path = freshPath();
    const keyring = await openFileKeyring(path);
    const added = await Promise.all([keyring.addPrimary(), keyring.addPrimary(), keyring.addPrimary()]);
    const reopened = await openFileKeyring(path);
    expect(reopened.list().map((k) => k.id)).toEqual(expect.arrayContaining(added.map((k) => k.id)));
    expect(reopened.list()).toHaveLength(4);
  });

  it('a second opener of the same file finds a key the first one added (unknown id reloads)', async () => {
    const path = freshPath();
    const a = await openFileKeyring(path);
    const b = await openFileKeyring(path);
    const sealedByOld = new Envelope(b).seal(SECRET, TOKENS);
    await a.addPrimary();
    const sealedByNew = new Envelope(a).seal(SECRET, TOKENS);
    expect(new Envelope(b).open(sealedByNew, TOKENS)).toBe(SECRET);
    expect(new Envelope(a).open(sealedByOld, TOKENS)).toBe(SECRET);
    // b now knows both keys, and a change through b keeps the key a added.
    await b.addPrimary();
    expect((await openFileKeyring(path)).list()).toHaveLength(3);
  });

  it('remove forgets an old key persistently, refuses the primary and unknown ids', async () => {
    const path = freshPath();
    const keyring = await openFileKeyring(path);
    const old = keyring.primary().id;
    const current = (await keyring.addPrimary()).id;
    const refused = await expectRejectCode(keyring.remove(current), 'BAD_USER_INPUT');
    expect(refused.message).toBe(`key ${current} is the primary key and cannot be removed`);
    await expectRejectCode(keyring.remove('k-nope'), 'NOT_FOUND');
    await keyring.remove(old);
    expect(keyring.get(old)).toBeUndefined();
    expect(keyring.list().map((k) => k.id)).toEqual([current]);
    expect((await openFileKeyring(path)).list().map((k) => k.id)).toEqual([current]);
  });
});

describe('parseEnvKeyring', () => {
  it('takes kid:base64 pairs, the first one primary, in standard or URL-safe base64', () => {
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    const keyring = parseEnvKeyring(` prod-2:${k1.toString('base64')} , prod-1:${k2.toString('base64url')}`);
    expect(keyring.primary().id).toBe('prod-2');
    expect(keyring.primary().material.equals(k1)).toBe(true);
    expect(keyring.get('prod-1')?.material.equals(k2)).toBe(true);
    expect(keyring.list().map((k) => [k.id, k.primary])).toEqual([
      ['prod-2', true],
      ['prod-1', false],
    ]);
    const envelope = new Envelope(keyring);
    const sealed = envelope.seal(SECRET, TOKENS);
    expect(sealedKeyId(sealed)).toBe('prod-2');
    expect(envelope.open(sealed, TOKENS)).toBe(SECRET);
  });

  it('opens what a file keyring sealed once that key is listed (a move to the environment)', async () => {
    const file = await openFileKeyring(freshPath());
    const sealed = new Envelope(file).seal(SECRET, PROVIDER);
    const env = parseEnvKeyring(`new-1:${b64()},${file.primary().id}:${file.primary().material.toString('base64')}`);
    const envelope = new Envelope(env);
    expect(envelope.open(sealed, PROVIDER)).toBe(SECRET);
    expect(sealedKeyId(envelope.rewrap(sealed, PROVIDER))).toBe('new-1');
  });

  describe('rejects a bad spec with a ConfigError naming the entry, never the key', () => {
    const key = b64();
    const cases: [string, string, RegExp][] = [
      ['empty', '', /keys\.key must hold at least one kid:base64key entry/],
      ['a key without id', key, /keys\.key entry 1 must be kid:base64key/],
      ['an empty entry', `a:${key},`, /keys\.key entry 2 must be kid:base64key/],
      ['an invalid key id', `Prod_1:${key}`, /keys\.key entry 1 has an invalid key id/],
      ['id and key swapped', `${key}:prod`, /keys\.key entry 1 has an invalid key id/],
      ['a short key', `a:${b64(16)}`, /keys\.key entry 1 \(a\) must carry 32 bytes in base64/],
      ['a key that is not base64', `a:${'!'.repeat(44)}`, /keys\.key entry 1 \(a\) must carry 32 bytes/],
      ['a repeated id', `a:${key},a:${b64()}`, /keys\.key entry 2 repeats key id a/],
    ];
    for (const [name, spec, message] of cases) {
      it(name, () => {
        let caught: unknown;
        try {
          parseEnvKeyring(spec);
        } catch (e) {
          caught = e;
        }
        expect(caught).toBeInstanceOf(ConfigError);
        expect((caught as Error).message).toMatch(message);
        expect((caught as Error).message).not.toContain(key);
      });
    }
  });

  it('cannot add a key: BAD_USER_INPUT explaining how to rotate keys from the environment', async () => {
    const keyring = parseEnvKeyring(`a:${b64()}`);
    const err = await expectRejectCode(keyring.addPrimary(), 'BAD_USER_INPUT');
    expect(err.message).toMatch(/keys\.key.*every replica.*restart.*rotateEncryptionKey/);
    expect(keyring.list()).toHaveLength(1);
  });

  it('cannot forget a key: BAD_USER_INPUT, the keys are managed outside', async () => {
    const keyring = parseEnvKeyring(`a:${b64()},b:${b64()}`);
    const err = await expectRejectCode(keyring.remove('b'), 'BAD_USER_INPUT');
    expect(err.message).toMatch(/keys\.key/);
    expect(keyring.get('b')).toBeDefined();
  });
});
