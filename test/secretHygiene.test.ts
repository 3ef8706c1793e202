/**
 * Secrets never leak: a full run (providers, consent, federated queries, refreshes, a client secret
 * rotation, errors) collects every secret it used — client secrets, access and refresh tokens —
 * then scans the JSON logs, every GraphQL response and error, and the store at rest (the SQLite
 * file, or a pg_dump of the PostgreSQL schema). Zero hits, on both stores.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Envelope } from '../src/crypto/envelope.js';
import { openFileKeyring } from '../src/crypto/fileKeyring.js';
import { openTokenSet } from '../src/tokens/tokenSet.js';
import { consentOverHttp } from './support/authServer.js';
import { confirmAsOwner, consentIdOf } from './support/consent.js';
import { startStage, type Stage } from './support/federation.js';
import { freshPgSchema, requirePgOrSkip, type PgSchema } from './support/pg.js';
import { pgSchemaUrl } from './support/replicas.js';

const hasPg = await requirePgOrSkip('the PostgreSQL secret-hygiene run');
const ROTATED_SECRET = 'rotated-client-secret-5d1e8c';
const QUERY = `{ viewer { login profile { displayName } } githubTokenInfo { subject } graphTokenInfo { subject } }`;

interface Run {
  readonly secrets: Set<string>;
  readonly responses: string[];
  readonly logLines: string[];
}

/** Everything a user and an admin would do, recording secrets used and every GraphQL answer. */
async function fullRun(s: Stage, run: Run): Promise<void> {
  for (const auth of [s.authGithub, s.authGraph])
    run.secrets.add(auth.clients.web.clientSecret).add(auth.clients.service.clientSecret);
  run.secrets.add(ROTATED_SECRET);
  const record = (body: unknown) => run.responses.push(JSON.stringify(body));
  const alice = await s.jwtFor('alice');

  const first = await s.query(QUERY, alice);
  record(first.body);
  for (const e of first.body.errors ?? []) {
    const done = await consentOverHttp(e.extensions.loginUrl, { login: 'alice' });
    // The consent id is a bearer secret too: it must not show up anywhere either.
    run.secrets.add(consentIdOf(done));
    await confirmAsOwner(s.t.url, done, alice);
  }
  for (let i = 0; i < 3; i++) {
    const res = await s.query(QUERY, alice);
    expect(res.body.errors).toBeUndefined();
    record(res.body);
    record(
      (
        await s.t.admin(
          `mutation { testConnection(providerId: "github-01", connectionId: "alice") { ok status error { code message } } }`,
        )
      ).body,
    );
  }
  // Errors too: a rotated (wrong) client secret makes refreshes fail at the provider.
  record(
    (
      await s.t.admin(
        `mutation($s: String!) { updateCredentialProvider(id: "graph-01", input: { clientSecret: $s }) { hasClientSecret } }`,
        { s: ROTATED_SECRET },
      )
    ).body,
  );
  record(
    (
      await s.t.admin(
        `mutation { testConnection(providerId: "graph-01", connectionId: "alice") { ok error { code message } } }`,
      )
    ).body,
  );
  record(
    (
      await s.t.admin(
        `{ credentialProviders { items { id clientId hasClientSecret parameters { name value } connections { items { id status error { code message } } } } } }`,
      )
    ).body,
  );
  record((await s.query(QUERY, 'not-a-jwt')).body);

  // API keys and passwords: created, rotated, tested (no check URL), listed.
  const apiKeys = ['hygiene-api-key-4c1d9e', 'hygiene-api-key-rotated-7b2f'];
  const password = 'hygiene-password-91ae';
  for (const k of apiKeys) run.secrets.add(k);
  run.secrets.add(password).add(Buffer.from(`svc:${password}`).toString('base64'));
  record(
    (
      await s.t.admin(
        `mutation { createCredentialProvider(input: { id: "keys-01", identityProvider: "apikey", grantType: API_KEY }) { id } }`,
      )
    ).body,
  );
  record(
    (
      await s.t.admin(
        `mutation { createCredentialProvider(input: { id: "basic-01", identityProvider: "basic", grantType: BASIC }) { id } }`,
      )
    ).body,
  );
  record(
    (
      await s.t.admin(
        `mutation($k: String!) { createConnection(providerId: "keys-01", input: { id: "k", apiKey: $k }) { status hasCredential } }`,
        { k: apiKeys[0] },
      )
    ).body,
  );
  const rotated = await s.t.admin(
    `mutation($k: String!) { updateConnection(providerId: "keys-01", id: "k", input: { apiKey: $k }) { status hasCredential } }`,
    { k: apiKeys[1] },
  );
  expect(rotated.body.data.updateConnection).toEqual({ status: 'CONNECTED', hasCredential: true });
  record(rotated.body);
  record(
    (
      await s.t.admin(
        `mutation($p: String!) { createConnection(providerId: "basic-01", input: { id: "b", username: "svc", password: $p }) { status } }`,
        { p: password },
      )
    ).body,
  );
  record(
    (
      await s.t.admin(
        `mutation { testConnection(providerId: "keys-01", connectionId: "k") { ok tested error { code message } } }`,
      )
    ).body,
  );
  record(
    (
      await s.t.admin(
        `{ credentialProvider(id: "keys-01") { parameters { name value } connections { items { id status hasCredential } } } }`,
      )
    ).body,
  );

  // The tokens themselves, as the gateway holds them (decrypted with the run's own keyring).
  const envelope = new Envelope(await openFileKeyring(join(s.t.dir, 'keyring.json')));
  for (const providerId of ['github-01', 'graph-01']) {
    const key = { providerId, connectionId: 'alice' };
    const connection = await s.t.app.store.getConnection(key);
    const tokens = openTokenSet(envelope, key, connection!.tokens!);
    run.secrets.add(tokens.accessToken);
    if (tokens.refreshToken) run.secrets.add(tokens.refreshToken);
  }
  for (const seen of [...s.github.seen, ...s.graph.seen])
    if (seen.authorization) run.secrets.add(seen.authorization.replace(/^Bearer /, ''));
}

function hits(haystack: Buffer | string, secrets: Iterable<string>): string[] {
  const bytes = typeof haystack === 'string' ? Buffer.from(haystack) : haystack;
  return [...secrets].filter((secret) => bytes.includes(Buffer.from(secret))).map((secret) => `${secret.slice(0, 6)}…`);
}

describe.each([['SQLite', false], ...(hasPg ? [['PostgreSQL', true] as const] : [])] as const)(
  'secret hygiene over a full run on %s',
  (_name, postgres) => {
    let s: Stage;
    let schema: PgSchema | null = null;
    const run: Run = { secrets: new Set(), responses: [], logLines: [] };

    beforeAll(async () => {
      if (postgres) schema = await freshPgSchema('cg_secrets');
      s = await startStage({
        accessTokenTtlSeconds: 5,
        logLines: run.logLines,
        config: { log: { level: 'debug' } },
        ...(schema && { storeUrl: pgSchemaUrl(schema) }),
      });
      await fullRun(s, run);
    }, 90_000);

    afterAll(async () => {
      await s?.close();
      await schema?.drop();
    });

    it('used real secrets (the scan has something to find)', () => {
      // 4 client secrets + the rotated one, 2 access and 2 refresh tokens at least.
      expect(run.secrets.size).toBeGreaterThanOrEqual(9);
      expect(run.logLines.length).toBeGreaterThan(10);
      expect(run.responses.length).toBeGreaterThan(8);
    });

    it('finds none of them in the logs', () => {
      expect(hits(run.logLines.join('\n'), run.secrets)).toEqual([]);
    });

    it('finds none of them in any GraphQL response or error', () => {
      expect(hits(run.responses.join('\n'), run.secrets)).toEqual([]);
    });

    it('finds none of them in the store at rest', async () => {
      let atRest: Buffer;
      if (schema) {
        const url = new URL(schema.url);
        atRest = execFileSync(
          'pg_dump',
          [
            '-h',
            url.hostname,
            '-p',
            url.port || '5432',
            '-U',
            decodeURIComponent(url.username || 'postgres'),
            '-n',
            schema.schema,
            url.pathname.slice(1),
          ],
          { maxBuffer: 256 * 1024 * 1024 },
        );
        expect(atRest.includes(Buffer.from('CREATE TABLE'))).toBe(true);
      } else {
        await s.t.app.store.close();
        const read = (f: string) => {
          try {
            return readFileSync(join(s.t.dir, f));
          } catch {
            return Buffer.alloc(0);
          }
        };
        atRest = Buffer.concat([read('credentials.db'), read('credentials.db-wal')]);
      }
      // Sanity: the dump holds the records, just not their secrets.
      expect(atRest.includes(Buffer.from('github-01'))).toBe(true);
      expect(hits(atRest, run.secrets)).toEqual([]);
    });
  },
);
