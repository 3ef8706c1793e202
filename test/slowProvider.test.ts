/**
 * A slow identity provider on a PostgreSQL-backed gateway (docs/design.md "The runtime step"): forty connections inside the refresh window at once, while their provider (a real
 * oidc-provider) holds every token answer back 8 s. Each renewal holds the connection's lock for as
 * long as its provider takes; unbounded, they would take every session of the lock pool and leave
 * the rest, and every other provider's renewals, to fail. Bounded, callers are served the
 * still-valid tokens, nobody gets a 500, and the other provider's connections renew as usual.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Envelope } from '../src/crypto/envelope.js';
import { openFileKeyring } from '../src/crypto/fileKeyring.js';
import type { ConnectionKey } from '../src/domain/ids.js';
import { openTokenSet } from '../src/tokens/tokenSet.js';
import { consentOverHttp } from './support/authServer.js';
import { startStage, type Stage } from './support/federation.js';
import { freshPgSchema, requirePgOrSkip, type PgSchema } from './support/pg.js';
import { pgSchemaUrl } from './support/replicas.js';

const hasPg = await requirePgOrSkip('the slow provider test on PostgreSQL');

const SLOW_CONNECTIONS = 40;
const OTHER_CONNECTIONS = 4;
const SLOW_ANSWER_MS = 8_000;
/** Tokens enter the refresh window 10 s after they are issued and stay valid 80 s more. */
const ACCESS_TOKEN_TTL_SECONDS = 90;
const REFRESH_SKEW_SECONDS = 80;
/** Callers wait this long for a renewal: longer than the lock pool's 5 s checkout timeout. */
const CALLER_TIMEOUT_MS = 10_000;

describe.skipIf(!hasPg)('a slow provider and forty renewals on PostgreSQL', () => {
  let schema: PgSchema;
  let s: Stage;
  let envelope: Envelope;
  let lastIssuedAt = 0;
  const slow: ConnectionKey[] = Array.from({ length: SLOW_CONNECTIONS }, (_, i) => ({
    providerId: 'github-01',
    connectionId: `svc-${i}`,
  }));
  const other: ConnectionKey[] = Array.from({ length: OTHER_CONNECTIONS }, (_, i) => ({
    providerId: 'graph-01',
    connectionId: `svc-${i}`,
  }));

  async function connect(key: ConnectionKey): Promise<void> {
    const vars = { p: key.providerId, c: key.connectionId };
    const created = await s.t.admin(
      `mutation($p: ID!, $c: ID!) { createConnection(providerId: $p, input: { id: $c }) { id } }`,
      vars,
    );
    expect(created.body.errors).toBeUndefined();
    const policy = await s.t.admin(
      `mutation($p: ID!, $c: ID!) { createAccessPolicy(providerId: $p, connectionId: $c, input: { id: "svc", kind: USER, objectId: "svc" }) { id } }`,
      vars,
    );
    expect(policy.body.errors).toBeUndefined();
    const link = await s.t.admin(
      `mutation($p: ID!, $c: ID!, $r: String!) { createLoginLink(providerId: $p, connectionId: $c, postLoginRedirectUrl: $r) { url } }`,
      {
        ...vars,
        r: `${s.t.url}/oauth/done`,
      },
    );
    const final = await consentOverHttp(link.body.data.createLoginLink.url, { login: key.connectionId });
    expect(final.searchParams.get('status')).toBe('CONNECTED');
  }

  async function storedToken(key: ConnectionKey): Promise<string> {
    const connection = await s.t.app.store.getConnection(key);
    return openTokenSet(envelope, key, connection!.tokens!).accessToken;
  }

  beforeAll(async () => {
    schema = await freshPgSchema('cg_slow_provider');
    s = await startStage({
      accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS,
      slowFaultDelayMs: SLOW_ANSWER_MS,
      storeUrl: pgSchemaUrl(schema),
      config: {
        oauth: { timeoutMs: CALLER_TIMEOUT_MS },
        cache: { refreshSkewSeconds: REFRESH_SKEW_SECONDS, proactiveRefresh: false },
      },
    });
    envelope = new Envelope(await openFileKeyring(join(s.t.dir, 'keyring.json')));
    for (const key of [...slow, ...other]) await connect(key);
    lastIssuedAt = Date.now();
  }, 120_000);

  afterAll(async () => {
    s?.authGithub.setFault('none');
    await s?.close();
    await schema?.drop();
  }, 60_000);

  it('serves still-valid tokens with no 500s, and leaves the other provider unaffected', async () => {
    // Every token inside the refresh window, none expired.
    await sleep(
      Math.max(0, lastIssuedAt + (ACCESS_TOKEN_TTL_SECONDS - REFRESH_SKEW_SECONDS) * 1000 + 500 - Date.now()),
    );
    const before = new Map<string, string>();
    for (const key of [...slow, ...other]) before.set(`${key.providerId}/${key.connectionId}`, await storedToken(key));
    s.authGithub.setFault('slow');
    s.authGithub.resetCounts();
    s.authGraph.resetCounts();
    const svc = await s.jwtFor('svc');

    const answers = await Promise.all(
      [...slow, ...other].map(async (key) => {
        const res = await fetch(`${s.t.url}/tokens/${key.providerId}/${key.connectionId}`, {
          headers: { authorization: `Bearer ${svc}` },
        });
        return { key, status: res.status, body: (await res.json()) as { access_token?: string; error?: string } };
      }),
    );

    const failed = answers.filter((a) => a.status !== 200);
    expect(failed.map((a) => `${a.key.providerId}/${a.key.connectionId}: ${a.status} ${a.body.error}`)).toEqual([]);
    for (const { key, body } of answers.filter((a) => a.key.providerId === 'github-01')) {
      // The token it had, or (for the first renewals the slots let through) the one it renewed to.
      const name = `${key.providerId}/${key.connectionId}`;
      expect([before.get(name), await storedToken(key)]).toContain(body.access_token);
    }
    // The other provider's connections were renewed, not left on their old tokens.
    expect(s.authGraph.counts.refresh).toBe(OTHER_CONNECTIONS);
    for (const { key, body } of answers.filter((a) => a.key.providerId === 'graph-01')) {
      expect(body.access_token).not.toBe(before.get(`${key.providerId}/${key.connectionId}`));
      expect(body.access_token).toBe(await storedToken(key));
    }
  }, 60_000);
});
