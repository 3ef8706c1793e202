/**
 * Connections the gateway creates for callers on first use cannot pile up: still NOT_CONNECTED after
 * `limits.unconsentedConnectionTtlSeconds`, they are deleted (and every cache told), while consented
 * ones and the ones an admin created stay. The gateway's clock is injected; nothing sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../src/store/types.js';
import { consentOverHttp } from './support/authServer.js';
import { confirmAsOwner } from './support/consent.js';
import { startStage, type Stage } from './support/federation.js';
import { freshPgSchema, requirePgOrSkip, type PgSchema } from './support/pg.js';

const hasPg = await requirePgOrSkip('the unconsented-connection sweep on PostgreSQL');

const TTL_SECONDS = 3600;
const TOKEN_INFO = `{ githubTokenInfo { subject } graphTokenInfo { subject } }`;

function errorsByService(errors: any[] | undefined): Record<string, any> {
  return Object.fromEntries((errors ?? []).map((e) => [e.extensions?.serviceName, e]));
}

describe.each(hasPg ? (['sqlite', 'postgres'] as const) : (['sqlite'] as const))(
  'the sweep of connections created on first use and never consented to (%s)',
  (dialect) => {
    let s: Stage;
    let pg: PgSchema | null = null;
    let clockMs = Date.now();
    const events: (ChangeEvent | null)[] = [];

    const status = async (providerId: string, id: string): Promise<string | null> => {
      const res = await s.t.admin(`query ($p: ID!, $c: ID!) { connection(providerId: $p, id: $c) { status } }`, {
        p: providerId,
        c: id,
      });
      expect(res.body.errors).toBeUndefined();
      return res.body.data.connection?.status ?? null;
    };

    beforeAll(async () => {
      if (dialect === 'postgres') pg = await freshPgSchema('cg_unconsented_sweep');
      const storeUrl = pg ? `${pg.url}?options=${encodeURIComponent(`-c search_path=${pg.schema}`)}` : undefined;
      s = await startStage({
        now: () => new Date(clockMs),
        config: { limits: { unconsentedConnectionTtlSeconds: TTL_SECONDS } },
        ...(storeUrl && { storeUrl }),
      });
      s.t.app.store.onChange((event) => events.push(event));
    }, 60_000);
    afterAll(async () => {
      await s?.close();
      await pg?.drop();
    });

    it('deletes a connection created on first use after the TTL, keeps a consented one and an admin-created one', async () => {
      const created = await s.t.admin(
        `mutation { createConnection(providerId: "github-01", input: { id: "shared", displayName: "Shared" }) { status } }`,
      );
      expect(created.body.data.createConnection.status).toBe('NOT_CONNECTED');

      const carol = await s.query(TOKEN_INFO, await s.jwtFor('carol'));
      expect(errorsByService(carol.body.errors)['github'].extensions.code).toBe('CONNECTION_NOT_CONNECTED');
      const daveJwt = await s.jwtFor('dave');
      const dave = await s.query(TOKEN_INFO, daveJwt);
      const daveLink = errorsByService(dave.body.errors)['github'].extensions.loginUrl;
      await confirmAsOwner(new URL(daveLink).origin, await consentOverHttp(daveLink, { login: 'dave' }), daveJwt);
      expect(await status('github-01', 'dave')).toBe('CONNECTED');
      expect(await status('github-01', 'carol')).toBe('NOT_CONNECTED');

      // Just before the TTL nothing goes.
      clockMs += TTL_SECONDS * 1000 - 1000;
      expect(await s.t.app.sweepUnconsentedConnections()).toBe(0);
      expect(await status('github-01', 'carol')).toBe('NOT_CONNECTED');

      clockMs += 2000;
      events.length = 0;
      // carol's two connections and dave's graph one, which he never consented to.
      expect(await s.t.app.sweepUnconsentedConnections()).toBe(3);
      expect(await status('github-01', 'carol')).toBeNull();
      expect(await status('graph-01', 'carol')).toBeNull();
      expect(await status('graph-01', 'dave')).toBeNull();
      expect(await status('github-01', 'dave')).toBe('CONNECTED');
      expect(await status('github-01', 'shared')).toBe('NOT_CONNECTED');
      expect(events).toEqual(
        expect.arrayContaining([
          { providerId: 'github-01', connectionId: 'carol' },
          { providerId: 'graph-01', connectionId: 'carol' },
          { providerId: 'graph-01', connectionId: 'dave' },
        ]),
      );
      expect(await s.t.app.sweepUnconsentedConnections()).toBe(0);
    });

    it('gives a swept user a new connection and a working login link on their next query', async () => {
      const carolJwt = await s.jwtFor('carol');
      const carol = await s.query(TOKEN_INFO, carolJwt);
      const github = errorsByService(carol.body.errors)['github'];
      expect(github.extensions.code).toBe('CONNECTION_NOT_CONNECTED');
      expect(await status('github-01', 'carol')).toBe('NOT_CONNECTED');
      const link = github.extensions.loginUrl;
      await confirmAsOwner(new URL(link).origin, await consentOverHttp(link, { login: 'carol' }), carolJwt);
      expect(await status('github-01', 'carol')).toBe('CONNECTED');
    });
  },
);
