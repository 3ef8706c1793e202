/**
 * Binding variants: unattended use (`identity: managed`, a fixed connection, the same data for every
 * caller) and `ignore_error` (the subgraph is called without a token and decides for itself).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consentOverHttp } from './support/authServer.js';
import { startStage, type Stage } from './support/federation.js';

const QUERY = `{ githubTokenInfo { subject } graphTokenInfo { issuer subject } }`;

describe('managed identity and ignore_error bindings', () => {
  let s: Stage;

  beforeAll(async () => {
    s = await startStage({
      editSupergraph: (yaml) => {
        const [head, graphPart] = yaml.split('  graph:');
        return (
          head!.replace('ignore_error: false', 'ignore_error: true') +
          '  graph:' +
          graphPart!
            .replace('connection: "{jwt.sub}"', 'connection: team')
            .replace('identity: jwt', 'identity: managed')
        );
      },
    });
    const created = await s.t.admin(
      `mutation { createConnection(providerId: "graph-01", input: { id: "team" }) { accessPolicies { kind } } }`,
    );
    expect(created.body.data.createConnection.accessPolicies).toEqual([{ kind: 'MANAGED_IDENTITY' }]);
    const link = await s.t.admin(
      `mutation($r: String!) { createLoginLink(providerId: "graph-01", connectionId: "team", postLoginRedirectUrl: $r) { url } }`,
      {
        r: `${s.t.url}/oauth/done`,
      },
    );
    const final = await consentOverHttp(link.body.data.createLoginLink.url, { login: 'team-bot' });
    expect(final.searchParams.get('status')).toBe('CONNECTED');
  }, 60_000);

  afterAll(() => s?.close());

  it('serves the managed connection to every caller, anonymous ones included', async () => {
    const subjects = [];
    for (const jwt of [null, await s.jwtFor('alice'), await s.jwtFor('bob')]) {
      const res = await s.query(QUERY, jwt);
      subjects.push(res.body.data.graphTokenInfo);
    }
    expect(subjects).toEqual(Array(3).fill({ issuer: s.authGraph.issuer, subject: 'team-bot' }));
  });

  it('calls an ignore_error subgraph without a token, and does not copy its error body', async () => {
    s.github.seen.length = 0;
    const res = await s.query(QUERY, await s.jwtFor('carol'));
    expect(s.github.seen.map((x) => x.authorization)).toEqual([null]);
    const errors = (res.body.errors ?? []).filter((e: any) => e.extensions?.serviceName === 'github');
    expect(errors).toEqual([
      expect.objectContaining({
        message: 'subgraph github answered HTTP 401',
        extensions: { code: 'DOWNSTREAM_SERVICE_ERROR', serviceName: 'github' },
      }),
    ]);
    expect(res.body.data.graphTokenInfo.subject).toBe('team-bot');
  });

  it('refuses the managed connection once its MANAGED_IDENTITY policy is gone', async () => {
    const del = await s.t.admin(
      `mutation { deleteAccessPolicy(providerId: "graph-01", connectionId: "team", id: "managed-identity") }`,
    );
    expect(del.body.data.deleteAccessPolicy).toBe(true);
    const res = await s.query(QUERY, null);
    const graphError = res.body.errors!.find((e: any) => e.extensions?.serviceName === 'graph');
    expect(graphError.extensions.code).toBe('ACCESS_DENIED');
    expect(res.body.data.graphTokenInfo).toBeNull();
  });
});
