/**
 * The per-connection budget of token acquisitions (docs/design.md "The runtime step"): a caller the connection's access policies refuse never spends it, so a stranger
 * cannot rate-limit someone else's connection, neither a user's own nor a shared managed one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consentOverHttp } from './support/authServer.js';
import { startStage, type Stage } from './support/federation.js';

const ACQUISITIONS_PER_MINUTE = 3;
/** Well past the budget: on a budget shared with strangers, the owner's next miss would be RATE_LIMITED. */
const REFUSED_CALLS = 3 * ACQUISITIONS_PER_MINUTE;

describe('refused callers and the acquisition budget', () => {
  let s: Stage;

  async function consentByAdminLink(providerId: string, connectionId: string, login: string): Promise<void> {
    const link = await s.t.admin(
      `mutation($p: ID!, $c: ID!, $r: String!) { createLoginLink(providerId: $p, connectionId: $c, postLoginRedirectUrl: $r) { url } }`,
      {
        p: providerId,
        c: connectionId,
        r: `${s.t.url}/oauth/done`,
      },
    );
    const final = await consentOverHttp(link.body.data.createLoginLink.url, { login });
    expect(final.searchParams.get('status')).toBe('CONNECTED');
  }

  const tokenEndpoint = async (path: string, jwt: string) => {
    const res = await fetch(`${s.t.url}/tokens/${path}`, { headers: { authorization: `Bearer ${jwt}` } });
    return { status: res.status, body: (await res.json()) as any };
  };

  beforeAll(async () => {
    s = await startStage({
      config: { limits: { tokenAcquisitionsPerMinute: ACQUISITIONS_PER_MINUTE }, cache: { proactiveRefresh: false } },
      // graph: one shared connection for every caller, under the gateway's own identity.
      editSupergraph: (yaml) => {
        const [head, graphPart] = yaml.split('  graph:');
        return `${head}  graph:${graphPart!.replace('connection: "{jwt.sub}"', 'connection: team').replace('identity: jwt', 'identity: managed')}`;
      },
    });
    const created = await s.t.admin(
      `mutation { createConnection(providerId: "graph-01", input: { id: "team" }) { id } }`,
    );
    expect(created.body.errors).toBeUndefined();
    await consentByAdminLink('graph-01', 'team', 'team-bot');
    const own = await s.t.admin(
      `mutation { createConnection(providerId: "github-01", input: { id: "alice" }) { id } }`,
    );
    expect(own.body.errors).toBeUndefined();
    const policy = await s.t.admin(
      `mutation { createAccessPolicy(providerId: "github-01", connectionId: "alice", input: { id: "alice", kind: USER, objectId: "alice" }) { id } }`,
    );
    expect(policy.body.errors).toBeUndefined();
    await consentByAdminLink('github-01', 'alice', 'alice');
  }, 60_000);

  afterAll(() => s?.close());

  it("refused calls beyond the limit never make the owner's first acquisition RATE_LIMITED", async () => {
    const mallory = await s.jwtFor('mallory');
    for (let i = 0; i < REFUSED_CALLS; i++) {
      const refused = await tokenEndpoint('github-01/alice', mallory);
      expect(refused.status).toBe(403);
      expect(refused.body.error).toBe('ACCESS_DENIED');
    }
    const owner = await tokenEndpoint('github-01/alice', await s.jwtFor('alice'));
    expect(owner.body.error).toBeUndefined();
    expect(owner.status).toBe(200);
    expect(owner.body.access_token).toEqual(expect.any(String));
  });

  it('refused calls against a shared managed connection never rate-limit the callers it serves', async () => {
    const mallory = await s.jwtFor('mallory');
    for (let i = 0; i < REFUSED_CALLS; i++) {
      const refused = await tokenEndpoint('graph-01/team', mallory);
      expect(refused.status).toBe(403);
      expect(refused.body.error).toBe('ACCESS_DENIED');
    }
    const res = await s.query(`{ graphTokenInfo { subject } }`, await s.jwtFor('bob'));
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data).toEqual({ graphTokenInfo: { subject: 'team-bot' } });
  });

  it("costs a stranger's repeated refused calls no store read each", async () => {
    const mallory = await s.jwtFor('mallory');
    await s.t.app.store.publishChange({ providerId: 'github-01', connectionId: 'alice' });
    const queriesBefore = s.t.app.store.stats.queries;
    for (let i = 0; i < 20; i++) expect((await tokenEndpoint('github-01/alice', mallory)).status).toBe(403);
    // One read of the policies (and the connection beside it), then the refusal is remembered briefly;
    // a slow machine may need a fresh read or two. Reading per call would be 40.
    expect(s.t.app.store.stats.queries - queriesBefore).toBeLessThanOrEqual(10);
  });

  it('admits a refused caller at once when a policy for them is added', async () => {
    const mallet = await s.jwtFor('mallet');
    expect((await tokenEndpoint('graph-01/team', mallet)).status).toBe(403);
    const added = await s.t.admin(
      `mutation { createAccessPolicy(providerId: "graph-01", connectionId: "team", input: { id: "mallet", kind: USER, objectId: "mallet" }) { id } }`,
    );
    expect(added.body.errors).toBeUndefined();
    const admitted = await tokenEndpoint('graph-01/team', mallet);
    expect(admitted.body.error).toBeUndefined();
    expect(admitted.status).toBe(200);
  });

  it('allowed callers still spend it: past the limit of cache misses, RATE_LIMITED', async () => {
    const alice = await s.jwtFor('alice');
    const codes: (string | undefined)[] = [];
    for (let i = 0; i < ACQUISITIONS_PER_MINUTE + 1; i++) {
      // Every call a cache miss: a change to the connection evicts its cached token.
      await s.t.app.store.publishChange({ providerId: 'github-01', connectionId: 'alice' });
      codes.push((await tokenEndpoint('github-01/alice', alice)).body.error);
    }
    // One acquisition spent by the first test's owner call already.
    expect(codes.slice(0, ACQUISITIONS_PER_MINUTE - 1)).toEqual(Array(ACQUISITIONS_PER_MINUTE - 1).fill(undefined));
    expect(codes.at(-1)).toBe('RATE_LIMITED');
  });
});
