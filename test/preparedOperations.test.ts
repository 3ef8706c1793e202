/**
 * The prepared pipeline: an operation Apollo has accepted and planned once is answered the next
 * time without Apollo Server's request pipeline. It must answer exactly as the full pipeline does,
 * refuse what the full pipeline refuses, and forget its plans when the schema changes.
 *
 * An operation's first sight always takes the full pipeline; its "twin" below (the same text with a
 * trailing space, so a different cache key) shows what the full pipeline answers a request.
 */
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consentToAll } from './support/backends.js';
import { startStage, type Stage } from './support/federation.js';
import { tempDir, type TempDir } from './support/tmp.js';

const REPO = new URL('../', import.meta.url).pathname;
const BOTH = `{ viewer { login profile { displayName } } githubTokenInfo { subject } graphTokenInfo { subject } }`;
const REPOSITORY = `query Repo($owner: String!, $name: String!) { repository(owner: $owner, name: $name) { name stars } }`;

interface Answer {
  readonly status: number;
  readonly contentType: string | null;
  readonly cacheControl: string | null;
  readonly body: any;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('prepared operations', () => {
  let s: Stage;
  let dir: TempDir;
  let githubSchema: string;
  let alice: string;

  async function post(body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await fetch(`${s.t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    return {
      status: res.status,
      contentType: res.headers.get('content-type'),
      cacheControl: res.headers.get('cache-control'),
      body: await res.json(),
    };
  }

  const asAlice = () => ({ authorization: `Bearer ${alice}` });

  async function operations(): Promise<{ prepared: number; full: number }> {
    const text = await (await fetch(`${s.t.url}/metrics`)).text();
    const count = (pipeline: string) =>
      Number(new RegExp(`^cg_graphql_operations_total\\{pipeline="${pipeline}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    return { prepared: count('prepared'), full: count('full') };
  }

  /** Runs `send` and returns what it did to the pipeline counters. */
  async function counted<T>(send: () => Promise<T>): Promise<{ result: T; prepared: number; full: number }> {
    const before = await operations();
    const result = await send();
    const after = await operations();
    return { result, prepared: after.prepared - before.prepared, full: after.full - before.full };
  }

  beforeAll(async () => {
    dir = await tempDir('cg-prepared-');
    githubSchema = dir.file('github.graphql');
    cpSync(join(REPO, 'subgraphs/github/schema.graphql'), githubSchema);
    s = await startStage({
      editSupergraph: (yaml) => yaml.replace(join(REPO, 'subgraphs/github/schema.graphql'), githubSchema),
    });
    alice = await s.jwtFor('alice');
    const first = await s.query(BOTH, alice);
    expect(await consentToAll(first.body.errors, 'alice', alice)).toBe(2);
  }, 60_000);

  afterAll(async () => {
    await s?.close();
    await dir?.cleanup();
  });

  it('answers a repeated operation without the full pipeline, exactly as the full pipeline did', async () => {
    const query = `${BOTH} # first sight`;
    const first = await counted(() => post({ query }, asAlice()));
    expect(first).toMatchObject({ full: 1, prepared: 0 });
    expect(first.result.body.data.viewer.login).toBe('alice');
    s.github.seen.length = 0;
    s.graph.seen.length = 0;
    const repeat = await counted(() => post({ query, variables: {}, operationName: null }, asAlice()));
    expect(repeat).toMatchObject({ full: 0, prepared: 1 });
    expect(repeat.result).toEqual(first.result);
    expect(repeat.result).toMatchObject({
      status: 200,
      contentType: 'application/json; charset=utf-8',
      cacheControl: 'no-store',
    });
    // Each subgraph still got its own provider's token, and never the caller's JWT.
    const sent = [...s.github.seen, ...s.graph.seen].map((x) => x.authorization);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent).not.toContain(`Bearer ${alice}`);
    expect(new Set(s.github.seen.map((x) => x.authorization)).size).toBe(1);
    expect(s.github.seen[0]!.authorization).not.toBe(s.graph.seen[0]!.authorization);
  });

  it('answers per-subgraph errors as the full pipeline does, login links included, and counts them in the metrics', async () => {
    const bob = await s.jwtFor('bob');
    const query = `{ githubTokenInfo { subject } graphTokenInfo { subject } }`;
    // The first answer creates bob's connections; then the full pipeline's answer, then the prepared one.
    await post({ query }, { authorization: `Bearer ${bob}` });
    const twin = await post({ query: `${query} ` }, { authorization: `Bearer ${bob}` });
    const repeat = await counted(() => post({ query }, { authorization: `Bearer ${bob}` }));
    expect(repeat.prepared).toBe(1);
    // Login links are single-use, minted per answer: compared by shape.
    const links = (a: Answer) => a.body.errors.map((e: any) => e.extensions.loginUrl);
    for (const link of [...links(twin), ...links(repeat.result)])
      expect(link).toMatch(new RegExp(`^${s.t.url}/oauth/login/[\\w-]{40,}$`));
    const withoutLinks = (a: Answer) => ({
      ...a,
      body: {
        ...a.body,
        errors: a.body.errors.map((e: any) => ({ ...e, extensions: { ...e.extensions, loginUrl: 'link' } })),
      },
    });
    expect(withoutLinks(repeat.result)).toEqual(withoutLinks(twin));
    expect(repeat.result.body.errors.map((e: any) => [e.extensions.serviceName, e.extensions.code])).toEqual([
      ['github', 'CONNECTION_NOT_CONNECTED'],
      ['graph', 'CONNECTION_NOT_CONNECTED'],
    ]);
    const metrics = await (await fetch(`${s.t.url}/metrics`)).text();
    expect(metrics).toMatch(/^cg_subgraph_errors_total\{subgraph="github",code="CONNECTION_NOT_CONNECTED"\} [3-9]$/m);
  });

  it('passes variables through, and refuses the variables the full pipeline refuses, as it does', async () => {
    const vars = { owner: 'alice', name: 'notes' };
    await post({ query: REPOSITORY, variables: vars }, asAlice());
    const good = await counted(() =>
      post({ query: REPOSITORY, variables: { owner: 'alice', name: 'nothing-here' } }, asAlice()),
    );
    expect(good.prepared).toBe(1);
    expect(good.result.body).toEqual({ data: { repository: null } });

    // A variable the operation does not declare is ignored by both, whatever it holds.
    const undeclared = { owner: 'alice', name: 'nothing-here', extra: { deep: ['\ud800'] } };
    const undeclaredTwin = await post({ query: `${REPOSITORY} `, variables: undeclared }, asAlice());
    const undeclaredRepeat = await counted(() => post({ query: REPOSITORY, variables: undeclared }, asAlice()));
    expect(undeclaredRepeat).toMatchObject({ prepared: 1, full: 0 });
    expect(undeclaredRepeat.result).toEqual(undeclaredTwin);
    expect(undeclaredTwin.body).toEqual({ data: { repository: null } });

    for (const bad of [{ owner: 'alice' }, { owner: 'alice', name: 42 }, { owner: 'alice', name: 'a\u0000b' }]) {
      const twin = await post({ query: `${REPOSITORY} `, variables: bad }, asAlice());
      const repeat = await counted(() => post({ query: REPOSITORY, variables: bad }, asAlice()));
      expect(repeat).toMatchObject({ prepared: 0, full: 1 });
      expect(repeat.result).toEqual(twin);
      expect(repeat.result.status).toBe(400);
      expect(repeat.result.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    }
  });

  it('refuses a caller the full pipeline refuses, as it does', async () => {
    const query = `{ githubTokenInfo { subject } }`;
    await post({ query }, asAlice());
    for (const authorization of ['Bearer not.a.jwt', `Bearer ${alice.slice(0, -4)}AAAA`, 'Basic YWxpY2U6c2VjcmV0']) {
      const twin = await post({ query: `${query} ` }, { authorization });
      const repeat = await counted(() => post({ query }, { authorization }));
      expect(repeat).toMatchObject({ prepared: 0, full: 1 });
      expect(repeat.result).toEqual(twin);
      expect(repeat.result.status).toBe(401);
      expect(repeat.result.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    }
  });

  it('runs the operation the request names, and refuses a name the document lacks', async () => {
    const doc = `query Login { viewer { login } } query Subject { githubTokenInfo { subject } }`;
    await post({ query: doc, operationName: 'Login' }, asAlice());
    const other = await counted(() => post({ query: doc, operationName: 'Subject' }, asAlice()));
    expect(other).toMatchObject({ prepared: 0, full: 1 });
    expect(other.result.body).toEqual({ data: { githubTokenInfo: { subject: 'alice' } } });
    const again = await counted(() => post({ query: doc, operationName: 'Subject' }, asAlice()));
    expect(again.prepared).toBe(1);
    expect(again.result.body).toEqual(other.result.body);
    for (const operationName of [null, 'Nope', '', 'Login\n']) {
      const twin = await post({ query: `${doc} `, operationName }, asAlice());
      const repeat = await counted(() => post({ query: doc, operationName }, asAlice()));
      expect(repeat).toMatchObject({ prepared: 0, full: 1 });
      expect(repeat.result).toEqual(twin);
      expect(repeat.result.status).toBe(400);
    }
  });

  it('answers in the media type the full pipeline negotiated for the same Accept header, once it has', async () => {
    const query = `{ viewer { login } }`;
    await post({ query }, asAlice());
    for (const [accept, contentType] of [
      ['application/graphql-response+json', 'application/graphql-response+json; charset=utf-8'],
      ['application/graphql-response+json,application/json;q=0.9', 'application/graphql-response+json; charset=utf-8'],
      [
        'application/json;q=0.5, application/graphql-response+json;q=0.7',
        'application/graphql-response+json; charset=utf-8',
      ],
      ['application/json, */*', 'application/json; charset=utf-8'],
    ]) {
      const first = await counted(() => post({ query }, { ...asAlice(), accept: accept! }));
      expect(first).toMatchObject({ prepared: 0, full: 1, result: { status: 200, contentType } });
      const repeat = await counted(() => post({ query }, { ...asAlice(), accept: accept! }));
      expect(repeat).toMatchObject({ prepared: 1, full: 0 });
      expect(repeat.result).toEqual(first.result);
    }
    // Nothing acceptable: Apollo refuses every time, and the short path learns nothing from its error answers.
    for (const accept of ['text/html', 'application/json;q=0']) {
      // Apollo's error answers come back as JSON even so: nothing may be learned from them.
      const error = await post({ query: '{ nope }' }, { ...asAlice(), accept });
      expect(error).toMatchObject({ status: 406, contentType: 'application/json; charset=utf-8' });
      for (let i = 0; i < 2; i++) {
        const refused = await counted(() => post({ query }, { ...asAlice(), accept }));
        expect(refused).toMatchObject({ prepared: 0, full: 1, result: { status: 406 } });
      }
    }
  });

  it('never shows a query plan, whichever pipeline answers and whatever NODE_ENV says', async () => {
    const query = `{ viewer { login profile { displayName } } } # plan`;
    const headers = {
      ...asAlice(),
      'apollo-query-plan-experimental': '1',
      'apollo-query-plan-experimental-format': 'internal',
    };
    for (let i = 0; i < 2; i++) {
      const res = await post({ query }, headers);
      expect(res.body).toEqual({ data: { viewer: { login: 'alice', profile: { displayName: expect.any(String) } } } });
    }
  });

  it('leaves persisted-query extensions and GET to the full pipeline', async () => {
    const query = `{ viewer { login } }`;
    await post({ query }, asAlice());
    const sha256Hash = createHash('sha256').update(query).digest('hex');
    const apq = await counted(() =>
      post({ query, extensions: { persistedQuery: { version: 1, sha256Hash } } }, asAlice()),
    );
    expect(apq).toMatchObject({ prepared: 0, full: 1 });
    expect(apq.result.body).toEqual({ data: { viewer: { login: 'alice' } } });
    const wrongHash = await post(
      { query, extensions: { persistedQuery: { version: 1, sha256Hash: '0'.repeat(64) } } },
      asAlice(),
    );
    expect(wrongHash).toMatchObject({
      status: 400,
      body: { errors: [{ message: 'provided sha does not match query', extensions: { code: 'BAD_REQUEST' } }] },
    });
    const get = await counted(() =>
      fetch(`${s.t.url}/graphql?query=${encodeURIComponent(query)}`, {
        headers: { ...asAlice(), 'apollo-require-preflight': '1' },
      }),
    );
    expect(get).toMatchObject({ prepared: 0, full: 1 });
    expect(await get.result.json()).toEqual({ data: { viewer: { login: 'alice' } } });
  });

  it('forgets every plan when the supergraph changes: a field removed by a reload is refused, not served from an old plan', async () => {
    const query = `{ viewer { id login } }`;
    await post({ query }, asAlice());
    expect((await counted(() => post({ query }, asAlice()))).prepared).toBe(1);
    writeFileSync(githubSchema, readFileSync(githubSchema, 'utf8').replace('  login: String!\n', ''));
    let answer: Answer | null = null;
    for (let waited = 0; waited < 10_000; waited += 100) {
      answer = await post({ query }, asAlice());
      if (answer.status !== 200) break;
      await sleep(100);
    }
    expect(answer!.status).toBe(400);
    expect(answer!.body.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    // What stays valid is planned afresh against the new schema, then prepared again.
    const kept = `{ viewer { id } }`;
    expect((await counted(() => post({ query: kept }, asAlice()))).full).toBe(1);
    const repeat = await counted(() => post({ query: kept }, asAlice()));
    expect(repeat).toMatchObject({ prepared: 1, full: 0 });
    expect(repeat.result.body).toEqual({ data: { viewer: { id: 'alice' } } });
  });
});

describe('prepared operations switched off (server.preparedPipeline: false)', () => {
  it('sends every operation through the full pipeline, repeats included, with the same answer', async () => {
    const stage = await startStage({ config: { server: { preparedPipeline: false } } });
    try {
      const jwt = await stage.jwtFor('alice');
      const metric = async (pipeline: string) =>
        Number(
          new RegExp(`^cg_graphql_operations_total\\{pipeline="${pipeline}"\\} (\\d+)$`, 'm').exec(
            await (await fetch(`${stage.t.url}/metrics`)).text(),
          )?.[1] ?? 0,
        );
      const query = '{ githubTokenInfo { subject } }';
      const first = await stage.query(query, jwt);
      for (let i = 0; i < 3; i++) expect((await stage.query(query, jwt)).body).toEqual(first.body);
      expect(await metric('prepared')).toBe(0);
      expect(await metric('full')).toBe(4);
    } finally {
      await stage.close();
    }
  }, 60_000);
});
