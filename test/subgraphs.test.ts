import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGithubSubgraph } from '../subgraphs/github/server.js';
import { startGraphSubgraph } from '../subgraphs/graph/server.js';
import type { RunningSubgraph } from '../subgraphs/shared/serve.js';
import { startJwtIssuer, type JwtIssuer } from './support/jwtIssuer.js';

const GITHUB_AUDIENCE = 'api://github';
const GRAPH_AUDIENCE = 'api://graph';
const HEALTH_CHECK_QUERY = 'query __ApolloServiceHealthCheck__ { __typename }';

interface GraphQLBody {
  data?: Record<string, any> | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
}

async function post(
  url: string,
  query: string,
  authorization?: string,
  variables?: Record<string, unknown>,
): Promise<{ status: number; body: GraphQLBody; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, body: (await res.json()) as GraphQLBody, headers: res.headers };
}

function expectUnauthenticated(result: { status: number; body: GraphQLBody }): void {
  expect(result.status).toBe(401);
  expect(result.body.data).toBeUndefined();
  expect(result.body.errors?.map((e) => e.extensions?.['code'])).toEqual(['UNAUTHENTICATED']);
}

let githubIdp: JwtIssuer;
let graphIdp: JwtIssuer;
let github: RunningSubgraph;
let graph: RunningSubgraph;

beforeAll(async () => {
  githubIdp = await startJwtIssuer({ audience: GITHUB_AUDIENCE });
  graphIdp = await startJwtIssuer({ audience: GRAPH_AUDIENCE });
  // github finds its keys by discovery, graph is given its JWKS URI: both ways are exercised.
  github = await startGithubSubgraph({ issuer: githubIdp.issuer, audience: GITHUB_AUDIENCE });
  graph = await startGraphSubgraph({ issuer: graphIdp.issuer, audience: GRAPH_AUDIENCE, jwksUri: graphIdp.jwksUri });
});

afterAll(async () => {
  await Promise.all([github?.close(), graph?.close()]);
  await Promise.all([githubIdp?.close(), graphIdp?.close()]);
});

describe('github subgraph', () => {
  it('serves the viewer and their repositories for a token of its own issuer and audience', async () => {
    const token = await githubIdp.sign({ sub: 'alice', azp: 'gateway-app' });
    const { status, body } = await post(
      github.url,
      '{ viewer { id login repositories { id name stars owner { login } } } githubTokenInfo { issuer audience subject clientId } }',
      `Bearer ${token}`,
    );
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(body.data?.['viewer']).toMatchObject({
      id: 'alice',
      login: 'alice',
      repositories: [
        { id: 'alice/dotfiles', name: 'dotfiles', owner: { login: 'alice' } },
        { id: 'alice/notes', name: 'notes', owner: { login: 'alice' } },
      ],
    });
    expect(body.data?.['githubTokenInfo']).toEqual({
      issuer: githubIdp.issuer,
      audience: [GITHUB_AUDIENCE],
      subject: 'alice',
      clientId: 'gateway-app',
    });
  });

  it('derives the same data from the same subject every time', async () => {
    const query = '{ viewer { repositories { stars } } }';
    const first = await post(github.url, query, `Bearer ${await githubIdp.sign({ sub: 'carol' })}`);
    const second = await post(github.url, query, `Bearer ${await githubIdp.sign({ sub: 'carol' })}`);
    expect(first.body.data).toEqual(second.body.data);
    const repositories = first.body.data?.['viewer']?.repositories;
    expect(repositories).toEqual(expect.any(Array));
    for (const repo of repositories ?? []) expect(repo.stars).toBeGreaterThanOrEqual(0);
  });

  it('finds a repository by owner and name, and answers null for an unknown one', async () => {
    const token = `Bearer ${await githubIdp.sign({ sub: 'alice' })}`;
    const query =
      'query ($owner: String!, $name: String!) { repository(owner: $owner, name: $name) { id owner { id } } }';
    const found = await post(github.url, query, token, { owner: 'bob', name: 'notes' });
    expect(found.body.data).toEqual({ repository: { id: 'bob/notes', owner: { id: 'bob' } } });
    const missing = await post(github.url, query, token, { owner: 'bob', name: 'secret-plans' });
    expect(missing.body.data).toEqual({ repository: null });
  });

  it('rejects a token minted for the other subgraph’s audience with 401 UNAUTHENTICATED', async () => {
    const token = await githubIdp.sign({ sub: 'alice' }, { audience: GRAPH_AUDIENCE });
    const result = await post(github.url, '{ viewer { login } }', `Bearer ${token}`);
    expectUnauthenticated(result);
    expect(result.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
  });

  it('rejects a token signed by another issuer, even for its own audience', async () => {
    const foreign = await graphIdp.sign({ sub: 'alice' }, { audience: GITHUB_AUDIENCE });
    expectUnauthenticated(await post(github.url, '{ viewer { login } }', `Bearer ${foreign}`));
    // Claiming the right issuer does not help: the signature is checked against its keys.
    const forged = await graphIdp.sign({ sub: 'alice' }, { audience: GITHUB_AUDIENCE, issuer: githubIdp.issuer });
    expectUnauthenticated(await post(github.url, '{ viewer { login } }', `Bearer ${forged}`));
  });

  it('rejects an expired token and a token without a subject', async () => {
    const expired = await githubIdp.sign({ sub: 'alice' }, { expiresIn: -600 });
    expectUnauthenticated(await post(github.url, '{ viewer { login } }', `Bearer ${expired}`));
    const anonymous = await githubIdp.sign({});
    expectUnauthenticated(await post(github.url, '{ viewer { login } }', `Bearer ${anonymous}`));
  });

  it('rejects a request without a token, or with a non-bearer Authorization header', async () => {
    expectUnauthenticated(await post(github.url, '{ viewer { login } }'));
    expectUnauthenticated(await post(github.url, '{ viewer { login } }', 'Basic YWxpY2U6c2VjcmV0'));
  });

  it('answers the gateway health check (`__typename` only) without a token', async () => {
    const health = await post(github.url, HEALTH_CHECK_QUERY);
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ data: { __typename: 'Query' } });
    // Anything beyond __typename needs a token again.
    expectUnauthenticated(await post(github.url, '{ __typename viewer { login } }'));
    expectUnauthenticated(await post(github.url, '{ __typename ... on Query { viewer { login } } }'));
  });

  it('records the Authorization header of every request, in order', async () => {
    const token = await githubIdp.sign({ sub: 'dave' });
    github.seen.splice(0);
    await post(github.url, HEALTH_CHECK_QUERY);
    await post(github.url, '{ viewer { login } }', `Bearer ${token}`);
    expect(github.seen).toEqual([
      { authorization: null, traceparent: null },
      { authorization: `Bearer ${token}`, traceparent: null },
    ]);
  });
});

describe('graph subgraph', () => {
  it('serves the signed-in user’s profile and mail for a token of its own issuer and audience', async () => {
    const token = await graphIdp.sign({ sub: 'alice', client_id: 'gateway-app' });
    const { status, body } = await post(
      graph.url,
      '{ me { id profile { displayName mail jobTitle } mail(first: 2) { id subject from receivedAt } } graphTokenInfo { issuer audience subject clientId } }',
      `Bearer ${token}`,
    );
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(body.data?.['me'].id).toBe('alice');
    expect(body.data?.['me'].profile).toMatchObject({ displayName: 'Alice', mail: 'alice@example.com' });
    expect(body.data?.['me'].mail.map((m: { id: string }) => m.id)).toEqual(['alice-m1', 'alice-m2']);
    expect(body.data?.['graphTokenInfo']).toEqual({
      issuer: graphIdp.issuer,
      audience: [GRAPH_AUDIENCE],
      subject: 'alice',
      clientId: 'gateway-app',
    });
  });

  it("resolves the token's own User entity for the gateway (_entities), and refuses another user's with FORBIDDEN", async () => {
    const token = await graphIdp.sign({ sub: 'alice' });
    const { body } = await post(
      graph.url,
      'query ($representations: [_Any!]!) { _entities(representations: $representations) { ... on User { id profile { displayName mail } mail { subject } } } }',
      `Bearer ${token}`,
      {
        representations: [
          { __typename: 'User', id: 'alice' },
          { __typename: 'User', id: 'bob' },
        ],
      },
    );
    const entities = body.data?.['_entities'] as ({
      id: string;
      profile: { displayName: string };
      mail: { subject: string }[];
    } | null)[];
    expect(entities[0]).toMatchObject({ id: 'alice', profile: { displayName: 'Alice', mail: 'alice@example.com' } });
    expect(entities[0]?.mail).toHaveLength(3);
    expect(entities[1]).toBeNull();
    expect(body.errors?.map((e) => [e.extensions?.['code'], e.path])).toEqual([['FORBIDDEN', ['_entities', 1]]]);
    expect(JSON.stringify(body)).not.toContain('bob@example.com');
  });

  it('refuses a User entity of another subject on the github subgraph too', async () => {
    const token = await githubIdp.sign({ sub: 'bob' });
    const { body } = await post(
      github.url,
      'query ($representations: [_Any!]!) { _entities(representations: $representations) { ... on User { login repositories { id } } } }',
      `Bearer ${token}`,
      {
        representations: [
          { __typename: 'User', id: 'alice' },
          { __typename: 'User', id: 'bob' },
        ],
      },
    );
    expect(body.data?.['_entities']).toEqual([
      null,
      { login: 'bob', repositories: [{ id: 'bob/dotfiles' }, { id: 'bob/notes' }] },
    ]);
    expect(body.errors?.map((e) => e.extensions?.['code'])).toEqual(['FORBIDDEN']);
  });

  it('refuses a page size out of range with BAD_USER_INPUT', async () => {
    const token = await graphIdp.sign({ sub: 'alice' });
    const { body } = await post(graph.url, '{ me { mail(first: 500) { id } } }', `Bearer ${token}`);
    expect(body.errors?.map((e) => e.extensions?.['code'])).toEqual(['BAD_USER_INPUT']);
  });

  it('rejects the github subgraph’s token (other issuer, other audience)', async () => {
    const token = await githubIdp.sign({ sub: 'alice' });
    expectUnauthenticated(await post(graph.url, '{ me { id } }', `Bearer ${token}`));
    expect(graph.seen.at(-1)).toEqual({ authorization: `Bearer ${token}`, traceparent: null });
  });

  it('answers the health check without a token and nothing else', async () => {
    expect((await post(graph.url, HEALTH_CHECK_QUERY)).body).toEqual({ data: { __typename: 'Query' } });
    expectUnauthenticated(await post(graph.url, '{ me { id } }'));
  });
});

describe('subgraph command line', () => {
  it('starts from PORT, ISSUER, AUDIENCE and JWKS_URI and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'subgraphs/github/server.ts'], {
      env: {
        ...process.env,
        PORT: '0',
        ISSUER: githubIdp.issuer,
        AUDIENCE: GITHUB_AUDIENCE,
        JWKS_URI: githubIdp.jwksUri,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      let output = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const match = /listening at (\S+)/.exec(output);
          if (match) resolve(match[1]!);
        });
        child.once('exit', (code) => reject(new Error(`exited with ${code}: ${output}`)));
      });
      const token = await githubIdp.sign({ sub: 'erin' });
      const { body } = await post(url, '{ viewer { login } }', `Bearer ${token}`);
      expect(body.data).toEqual({ viewer: { login: 'erin' } });
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      expect((await exited)[0]).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('exits with status 1 and a usage line when ISSUER is missing', async () => {
    const { ISSUER: _, ...env } = process.env;
    const child = spawn(process.execPath, ['--import', 'tsx', 'subgraphs/graph/server.ts'], {
      env: { ...env, AUDIENCE: GRAPH_AUDIENCE },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(1);
    expect(stderr).toContain('graph: set ISSUER and AUDIENCE');
  });
});
