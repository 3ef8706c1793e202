/**
 * `allowAnonymous` of the sample subgraphs (used by bench/ for gateways that send no tokens): a
 * request without a token is served as the configured subject; a token that is sent is still checked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGithubSubgraph } from '../subgraphs/github/server.js';
import type { RunningSubgraph } from '../subgraphs/shared/serve.js';
import { startJwtIssuer, type JwtIssuer } from './support/jwtIssuer.js';

const AUDIENCE = 'api://github';
const VIEWER = '{ viewer { login } githubTokenInfo { issuer subject } }';

async function post(url: string, query: string, authorization?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, body: await res.json() };
}

let idp: JwtIssuer;
let open: RunningSubgraph;
let strict: RunningSubgraph;

beforeAll(async () => {
  idp = await startJwtIssuer({ audience: AUDIENCE });
  open = await startGithubSubgraph({ issuer: idp.issuer, audience: AUDIENCE, allowAnonymous: { subject: 'alice' } });
  strict = await startGithubSubgraph({ issuer: idp.issuer, audience: AUDIENCE });
});

afterAll(async () => {
  await Promise.all([open?.close(), strict?.close()]);
  await idp?.close();
});

describe('sample subgraph with allowAnonymous', () => {
  it('serves a request without a token as the configured subject', async () => {
    const res = await post(open.url, VIEWER);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      data: { viewer: { login: 'alice' }, githubTokenInfo: { issuer: '', subject: 'alice' } },
    });
  });

  it('still verifies a token that is sent, and serves its own subject', async () => {
    const res = await post(open.url, VIEWER, `Bearer ${await idp.sign({ sub: 'bob' })}`);
    expect(res.body.data).toEqual({
      viewer: { login: 'bob' },
      githubTokenInfo: { issuer: idp.issuer, subject: 'bob' },
    });
  });

  it('rejects an invalid token instead of falling back to the anonymous subject', async () => {
    const res = await post(open.url, VIEWER, `Bearer ${await idp.sign({ sub: 'bob' }, { audience: 'api://other' })}`);
    expect(res.status).toBe(401);
    expect(res.body.errors.map((e: any) => e.extensions.code)).toEqual(['UNAUTHENTICATED']);
  });

  it('answers 401 to a request without a token when the option is off', async () => {
    const res = await post(strict.url, VIEWER);
    expect(res.status).toBe(401);
    expect(res.body.errors.map((e: any) => e.extensions.code)).toEqual(['UNAUTHENTICATED']);
  });
});
