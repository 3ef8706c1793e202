import { cpSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ApolloGateway } from '@apollo/gateway';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError } from '../src/config/schema.js';
import type { GatewayError } from '../src/errors.js';
import { composeSupergraph } from '../src/gateway/compose.js';
import {
  loadSupergraphConfig,
  parseSupergraphConfig,
  renderConnectionId,
  type ConnectionBinding,
  type ConnectionTemplate,
  type SupergraphConfig,
} from '../src/gateway/supergraphConfig.js';
import { createSupergraphSource } from '../src/gateway/supergraphSource.js';
import { watchSupergraph, type SupergraphWatcher } from '../src/gateway/supergraphWatch.js';
import { createLogger } from '../src/log.js';
import { tempDir, type TempDir } from './support/tmp.js';

const REPO_SUPERGRAPH = resolve('supergraph.yaml');
const LINK = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key", "@shareable"])\n';
const SDL_A = `${LINK}type Query { a: String }\n`;
const SDL_B = `${LINK}type Query { b: String }\n`;
const DEBOUNCE_MS = 50;

let tmp: TempDir;
beforeEach(async () => {
  tmp = await tempDir('cg-supergraph-');
});
afterEach(async () => {
  await tmp.cleanup();
});

/** A supergraph.yaml in the temp dir with subgraphs a and b (`a.graphql`, `b.graphql`). */
function writeFixture(
  authorizationOfA: unknown = { provider: 'github-01', connection: '{jwt.sub}' },
  patch: (doc: any) => void = () => {},
): string {
  writeFileSync(tmp.file('a.graphql'), SDL_A);
  writeFileSync(tmp.file('b.graphql'), SDL_B);
  const doc: any = {
    federation_version: '=2.9.0',
    subgraphs: {
      a: {
        routing_url: 'http://127.0.0.1:4101/graphql',
        schema: { file: './a.graphql' },
        authorization: authorizationOfA,
      },
      b: { routing_url: 'https://b.example.com/graphql', schema: { file: './b.graphql' } },
    },
  };
  patch(doc);
  const file = tmp.file('supergraph.yaml');
  writeFileSync(file, stringify(doc));
  return file;
}

/** The problems of a ConfigError, each checked to name the file, then without that prefix. */
function problemsOf(run: () => unknown, file: string): string[] {
  try {
    run();
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems.map((p) => {
      expect(p.startsWith(`${file}: `)).toBe(true);
      return p.slice(file.length + 2);
    });
  }
  throw new Error('expected a ConfigError');
}

function parseProblems(authorizationOfA: unknown, patch?: (doc: any) => void): string[] {
  const file = writeFixture(authorizationOfA, patch);
  return problemsOf(() => parseSupergraphConfig(readFileSync(file, 'utf8'), file), file);
}

const binding = (extra: Record<string, unknown>) => ({ provider: 'github-01', connection: '{jwt.sub}', ...extra });

describe('supergraph.yaml of the repository', () => {
  it('parses into both subgraphs with their bindings', async () => {
    const config = await loadSupergraphConfig(REPO_SUPERGRAPH);
    expect(config.file).toBe(REPO_SUPERGRAPH);
    expect(config.federationVersion).toBe('=2.9.0');
    expect(config.subgraphs.map((s) => [s.name, s.routingUrl, s.schemaFile])).toEqual([
      ['github', 'http://127.0.0.1:4101/graphql', resolve('subgraphs/github/schema.graphql')],
      ['graph', 'http://127.0.0.1:4102/graphql', resolve('subgraphs/graph/schema.graphql')],
    ]);
    const sub: ConnectionTemplate = { kind: 'claims', template: '{jwt.sub}', parts: [{ claim: 'sub' }] };
    expect(config.subgraphs[0]?.authorization).toEqual({
      providerId: 'github-01',
      connection: sub,
      identity: 'jwt',
      ignoreError: false,
      header: 'Authorization',
    });
    expect(config.subgraphs[1]?.authorization).toEqual({
      providerId: 'graph-01',
      connection: sub,
      identity: 'jwt',
      ignoreError: false,
      header: 'Authorization',
    });
    expect(config.subgraphs[0]?.sdl).toBe(readFileSync('subgraphs/github/schema.graphql', 'utf8'));
  });

  it('composes, with a join__Graph entry per subgraph', async () => {
    const sdl = composeSupergraph(await loadSupergraphConfig(REPO_SUPERGRAPH));
    expect(sdl).toContain('GITHUB @join__graph(name: "github", url: "http://127.0.0.1:4101/graphql")');
    expect(sdl).toContain('GRAPH @join__graph(name: "graph", url: "http://127.0.0.1:4102/graphql")');
    // The shared User entity is resolvable from both subgraphs by id.
    expect(sdl).toMatch(/type User\s+@join__type\(graph: GITHUB, key: "id"\)\s+@join__type\(graph: GRAPH, key: "id"\)/);
  });
});

describe('parseSupergraphConfig', () => {
  it('applies defaults: identity jwt, ignore_error false, header Authorization; no binding means null', () => {
    const file = writeFixture({ provider: 'github-01', connection: 'shared-01' });
    const config = parseSupergraphConfig(readFileSync(file, 'utf8'), file);
    expect(config.subgraphs[0]?.authorization).toEqual({
      providerId: 'github-01',
      connection: { kind: 'fixed', id: 'shared-01' },
      identity: 'jwt',
      ignoreError: false,
      header: 'Authorization',
    });
    expect(config.subgraphs[1]?.authorization).toBeNull();
    expect(config.subgraphs[0]?.schemaFile).toBe(tmp.file('a.graphql'));
    expect(config.subgraphs[0]?.sdl).toBe(SDL_A);
  });

  it('reads a managed binding with a fixed connection, ignore_error and a custom header', () => {
    const file = writeFixture(
      binding({ connection: 'daemon-01', identity: 'managed', ignore_error: true, header: 'X-Api-Token' }),
    );
    const config = parseSupergraphConfig(readFileSync(file, 'utf8'), file);
    expect(config.subgraphs[0]?.authorization).toMatchObject({
      identity: 'managed',
      ignoreError: true,
      header: 'X-Api-Token',
    });
  });

  it('returns deeply frozen values', () => {
    const file = writeFixture(binding({ connection: 'user-{jwt.sub}' }));
    const config = parseSupergraphConfig(readFileSync(file, 'utf8'), file);
    const auth = config.subgraphs[0]!.authorization! as ConnectionBinding;
    for (const value of [config, config.subgraphs, config.subgraphs[0], auth, auth.connection])
      expect(Object.isFrozen(value)).toBe(true);
    expect(auth.connection.kind === 'claims' && Object.isFrozen(auth.connection.parts)).toBe(true);
  });

  it('resolves schema files against the yaml file’s directory, not the working directory', () => {
    mkdirSync(tmp.file('nested'));
    const file = writeFixture(null, (doc) => {
      doc.subgraphs.a.schema.file = '../a.graphql';
      doc.subgraphs.b.schema.file = tmp.file('b.graphql');
    });
    renameSync(file, tmp.file('nested', 'supergraph.yaml'));
    const moved = tmp.file('nested', 'supergraph.yaml');
    const config = parseSupergraphConfig(readFileSync(moved, 'utf8'), moved);
    expect(config.subgraphs.map((s) => s.schemaFile)).toEqual([tmp.file('a.graphql'), tmp.file('b.graphql')]);
  });

  it('refuses an identity other than jwt or managed', () => {
    expect(parseProblems(binding({ identity: 'user' }))).toEqual([
      'subgraphs.a.authorization.identity must be jwt, managed or exchange',
    ]);
  });

  it('refuses a routing_url that is not an http(s) URL', () => {
    expect(parseProblems(null, (doc) => (doc.subgraphs.b.routing_url = 'ftp://b.example.com/graphql'))).toEqual([
      'subgraphs.b.routing_url must be an http(s) URL',
    ]);
    expect(parseProblems(null, (doc) => (doc.subgraphs.b.routing_url = 'b:4102'))).toEqual([
      'subgraphs.b.routing_url must be an http(s) URL',
    ]);
    expect(parseProblems(null, (doc) => delete doc.subgraphs.b.routing_url)).toEqual([
      'subgraphs.b.routing_url must be an http(s) URL',
    ]);
  });

  it('refuses a schema file that cannot be read', () => {
    expect(parseProblems(null, (doc) => (doc.subgraphs.a.schema.file = './x.graphql'))).toEqual([
      'subgraphs.a.schema.file ./x.graphql cannot be read (ENOENT)',
    ]);
    expect(parseProblems(null, (doc) => (doc.subgraphs.a.schema = {}))).toEqual([
      "subgraphs.a.schema.file must name the subgraph's SDL file",
    ]);
  });

  it('refuses Rover schema sources the gateway cannot compose from', () => {
    expect(
      parseProblems(null, (doc) => (doc.subgraphs.a.schema = { subgraph_url: 'http://127.0.0.1:4101/graphql' })),
    ).toEqual(['subgraphs.a.schema.subgraph_url is not supported: the gateway composes from subgraphs.a.schema.file']);
  });

  it.each([
    ['{jwt}', 'has an unknown placeholder {jwt}: expected {jwt.<claim>} or {issuer}'],
    ['{env.X}', 'has an unknown placeholder {env.X}: expected {jwt.<claim>} or {issuer}'],
    ['user-{jwt.sub-id}', 'has an unknown placeholder {jwt.sub-id}: expected {jwt.<claim>} or {issuer}'],
    ['{}', 'has an unknown placeholder {}: expected {jwt.<claim>} or {issuer}'],
    ['user-{jwt.sub', 'has an unbalanced {'],
    ['{{jwt.sub}}', 'has an unbalanced {'],
    ['user-jwt.sub}', 'has an unbalanced }'],
    ['users/{jwt.sub}', 'would render invalid connection ids: ids have no * # & + : < > ? / or whitespace'],
  ])('refuses the connection template %s', (connection, problem) => {
    expect(parseProblems(binding({ connection }))).toEqual([`subgraphs.a.authorization.connection ${problem}`]);
  });

  it('refuses a fixed connection that is not a valid id', () => {
    expect(parseProblems(binding({ connection: 'a b' }))).toEqual([
      'subgraphs.a.authorization.connection must be 1-256 characters without * # & + : < > ? / or whitespace',
    ]);
    expect(parseProblems(binding({ connection: '' }))).toEqual([
      'subgraphs.a.authorization.connection must be a connection id or a template such as "{jwt.sub}"',
    ]);
  });

  it('refuses identity managed with a template over caller claims', () => {
    expect(parseProblems(binding({ identity: 'managed', connection: '{jwt.sub}' }))).toEqual([
      'subgraphs.a.authorization.connection must be a fixed connection id with identity managed (there are no caller claims)',
    ]);
  });

  it.each(['Authorization: Bearer', 'X Token', '', 'Ünicode'])('refuses the header name %j', (header) => {
    expect(parseProblems(binding({ header }))).toEqual([
      'subgraphs.a.authorization.header must be an HTTP header name',
    ]);
  });

  it('refuses an unknown key under authorization', () => {
    expect(parseProblems(binding({ scopes: 'repo' }))).toEqual(['subgraphs.a.authorization.scopes is not a known key']);
    // Exchange bindings' own keys mean nothing to a connection binding.
    expect(parseProblems(binding({ scope: 'repo' }))).toEqual([
      'subgraphs.a.authorization.scope is only used with identity exchange',
    ]);
  });

  it('refuses a missing or invalid provider id and a non-boolean ignore_error', () => {
    expect(parseProblems({ connection: '{jwt.sub}' })).toEqual(['subgraphs.a.authorization.provider is required']);
    expect(parseProblems(binding({ provider: 'a/b' }))).toEqual([
      'subgraphs.a.authorization.provider must be 1-256 characters without * # & + : < > ? / or whitespace',
    ]);
    expect(parseProblems(binding({ ignore_error: 'yes' }))).toEqual([
      'subgraphs.a.authorization.ignore_error must be true or false',
    ]);
    expect(parseProblems('github-01')).toEqual(['subgraphs.a.authorization must be a mapping']);
  });

  it('refuses keys neither Rover nor the gateway knows, at the top and in a subgraph', () => {
    expect(parseProblems(null, (doc) => (doc.subgraph = {}))).toEqual(['subgraph is not a known key']);
    expect(parseProblems(null, (doc) => (doc.subgraphs.b.routing_ur = 'x'))).toEqual([
      'subgraphs.b.routing_ur is not a known key',
    ]);
  });

  it('refuses a missing subgraph list, a bad subgraph name and a Federation 1 version', () => {
    expect(parseProblems(null, (doc) => (doc.subgraphs = {}))).toEqual([
      'subgraphs must map at least one subgraph name to its routing_url and schema',
    ]);
    expect(parseProblems(null, (doc) => (doc.subgraphs['my graph'] = doc.subgraphs.b))).toEqual([
      'subgraphs.my graph must be named with letters, digits, _ and -, starting with a letter or _',
    ]);
    expect(parseProblems(null, (doc) => (doc.federation_version = 1))).toEqual([
      'federation_version must be a Federation 2 version such as 2 or =2.9.0',
    ]);
  });

  it('reports every problem at once', () => {
    const problems = parseProblems(
      binding({ identity: 'robot', header: 'a b' }),
      (doc) => (doc.subgraphs.b.routing_url = 'nope'),
    );
    expect(problems).toEqual([
      'subgraphs.a.authorization.identity must be jwt, managed or exchange',
      'subgraphs.a.authorization.header must be an HTTP header name',
      'subgraphs.b.routing_url must be an http(s) URL',
    ]);
  });

  it('names the file on a YAML syntax error and on a missing file', async () => {
    const file = tmp.file('supergraph.yaml');
    expect(problemsOf(() => parseSupergraphConfig('subgraphs: [unclosed', file), file)).toEqual([
      expect.stringMatching(/^Flow sequence .* at line 1, column 21:$/),
    ]);
    await expect(loadSupergraphConfig(tmp.file('missing.yaml'))).rejects.toThrow(
      new ConfigError([`cannot read supergraph file ${tmp.file('missing.yaml')}: ENOENT`]),
    );
  });
});

describe('renderConnectionId', () => {
  const template = (text: string): ConnectionTemplate => {
    const file = writeFixture(binding({ connection: text }));
    return (parseSupergraphConfig(readFileSync(file, 'utf8'), file).subgraphs[0]!.authorization! as ConnectionBinding)
      .connection;
  };

  it('returns a fixed connection whatever the claims', () => {
    expect(renderConnectionId(template('shared-01'), {})).toBe('shared-01');
  });

  it('fills {jwt.sub} and keeps literal prefixes and suffixes', () => {
    expect(renderConnectionId(template('{jwt.sub}'), { sub: 'alice' })).toBe('alice');
    expect(renderConnectionId(template('user-{jwt.oid}-gh'), { oid: '0f3c' })).toBe('user-0f3c-gh');
    expect(renderConnectionId(template('{jwt.tid}.{jwt.oid}'), { tid: 't1', oid: 42 })).toBe('t1.42');
  });

  it('returns null when a claim is missing, empty or not a string or number', () => {
    const sub = template('{jwt.sub}');
    expect(renderConnectionId(sub, {})).toBeNull();
    expect(renderConnectionId(sub, { sub: '' })).toBeNull();
    expect(renderConnectionId(sub, { sub: ['alice'] })).toBeNull();
    expect(renderConnectionId(sub, { sub: { id: 'alice' } })).toBeNull();
    expect(renderConnectionId(sub, { sub: true })).toBeNull();
    expect(renderConnectionId(sub, { sub: Number.NaN })).toBeNull();
    // Inherited properties are not claims.
    expect(renderConnectionId(template('{jwt.constructor}'), {})).toBeNull();
  });

  it('refuses with ACCESS_DENIED, naming the rule and not the value, a claim that would make an invalid id', () => {
    const sub = template('{jwt.sub}');
    const refusal = (claim: string) => {
      try {
        renderConnectionId(sub, { sub: claim });
      } catch (e) {
        return { code: (e as GatewayError).code, message: (e as Error).message };
      }
      return null;
    };
    for (const claim of ['a/b', 'alice bob', 'x'.repeat(257), '..']) {
      const r = refusal(claim);
      expect(r?.code, claim).toBe('ACCESS_DENIED');
      expect(r?.message).toMatch(/^the connection id rendered from the caller's claims must /);
      if (claim !== '..') expect(r?.message).not.toContain(claim);
    }
    // An unpaired surrogate would be stored as U+FFFD: a connection no one could address again.
    expect(refusal('ali\ud800ce')).toEqual({
      code: 'ACCESS_DENIED',
      message:
        "the connection id rendered from the caller's claims must be well-formed Unicode (it holds an unpaired surrogate)",
    });
    expect(renderConnectionId(sub, { sub: 'ali\ud83d\ude00ce' })).toBe('ali\ud83d\ude00ce');
  });
});

describe('composeSupergraph', () => {
  const configOf = (sdlA: string, sdlB: string): SupergraphConfig => {
    const file = writeFixture(null);
    writeFileSync(tmp.file('a.graphql'), sdlA);
    writeFileSync(tmp.file('b.graphql'), sdlB);
    return parseSupergraphConfig(readFileSync(file, 'utf8'), file);
  };

  it('reports composition errors with their codes', () => {
    const config = configOf(`${LINK}type Query { a: String }`, `${LINK}type Query { a: Int }`);
    const problems = problemsOf(() => composeSupergraph(config), config.file);
    expect(problems).toContain(
      'composition failed: [INVALID_FIELD_SHARING] Non-shareable field "Query.a" is resolved from multiple subgraphs: it is resolved from subgraphs "a" and "b" and defined as non-shareable in all of them',
    );
    expect(
      problems.some((p) =>
        p.startsWith('composition failed: [FIELD_TYPE_MISMATCH] Type of field "Query.a" is incompatible'),
      ),
    ).toBe(true);
  });

  it('reports SDL syntax errors as INVALID_GRAPHQL naming the subgraph', () => {
    const config = configOf(`${LINK}type Query {`, SDL_B);
    expect(problemsOf(() => composeSupergraph(config), config.file)).toEqual([
      `composition failed: [INVALID_GRAPHQL] subgraph a (${tmp.file('a.graphql')}): Syntax Error: Expected Name, found <EOF>.`,
    ]);
  });
});

type WatchEvent = { kind: 'update'; config: SupergraphConfig; sdl: string } | { kind: 'error'; error: unknown };

/** Watch events in order; `next()` waits for the next one. */
function eventQueue() {
  const events: WatchEvent[] = [];
  const waiters: ((e: WatchEvent) => void)[] = [];
  const push = (e: WatchEvent): void => {
    const waiter = waiters.shift();
    if (waiter) waiter(e);
    else events.push(e);
  };
  return {
    onUpdate: (config: SupergraphConfig, sdl: string) => push({ kind: 'update', config, sdl }),
    onError: (error: unknown) => push({ kind: 'error', error }),
    next: (timeoutMs = 5_000): Promise<WatchEvent> => {
      const ready = events.shift();
      if (ready) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no watch event')), timeoutMs);
        waiters.push((e) => {
          clearTimeout(timer);
          resolve(e);
        });
      });
    },
    pending: () => events.length,
  };
}

/** A copy of the repository's supergraph.yaml and schemas in the temp dir. */
function copyRepoSupergraph(): string {
  cpSync('supergraph.yaml', tmp.file('supergraph.yaml'));
  for (const name of ['github', 'graph']) {
    mkdirSync(tmp.file('subgraphs', name), { recursive: true });
    cpSync(`subgraphs/${name}/schema.graphql`, tmp.file('subgraphs', name, 'schema.graphql'));
  }
  return tmp.file('supergraph.yaml');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('watchSupergraph', () => {
  let watcher: SupergraphWatcher | null = null;
  afterEach(() => {
    watcher?.close();
    watcher = null;
  });

  it('reports the first load, then follows schema edits; a broken edit keeps the last good supergraph', async () => {
    const file = copyRepoSupergraph();
    const githubSchema = tmp.file('subgraphs', 'github', 'schema.graphql');
    const original = readFileSync(githubSchema, 'utf8');
    const events = eventQueue();
    watcher = watchSupergraph(file, { ...events, debounceMs: DEBOUNCE_MS });

    const first = await events.next();
    expect(first.kind).toBe('update');
    expect(first.kind === 'update' && first.config.subgraphs.map((s) => s.name)).toEqual(['github', 'graph']);

    writeFileSync(githubSchema, original.replace('viewer: User', 'viewer: User\n  rateLimit: Int!'));
    const edited = await events.next();
    expect(edited.kind === 'update' && edited.sdl).toContain('rateLimit: Int!');

    writeFileSync(githubSchema, 'type Query {');
    const broken = await events.next();
    expect(broken.kind).toBe('error');
    expect(broken.kind === 'error' && broken.error instanceof ConfigError && broken.error.message).toContain(
      '[INVALID_GRAPHQL] subgraph github',
    );

    writeFileSync(githubSchema, original.replace('viewer: User', 'viewer: User\n  octocat: String'));
    const recovered = await events.next();
    expect(recovered.kind === 'update' && recovered.sdl).toContain('octocat: String');
    expect(recovered.kind === 'update' && recovered.sdl).not.toContain('rateLimit');
  });

  it('follows an editor’s rename-on-save and reports a binding-only change of the yaml', async () => {
    const file = copyRepoSupergraph();
    const graphSchema = tmp.file('subgraphs', 'graph', 'schema.graphql');
    const events = eventQueue();
    watcher = watchSupergraph(file, { ...events, debounceMs: DEBOUNCE_MS });
    expect((await events.next()).kind).toBe('update');

    for (const field of ['presence: String', 'calendar: String']) {
      const swap = `${graphSchema}.swp`;
      writeFileSync(swap, readFileSync(graphSchema, 'utf8').replace('me: User', `me: User\n  ${field}`));
      renameSync(swap, graphSchema);
      const update = await events.next();
      expect(update.kind === 'update' && update.sdl).toContain(field);
    }

    writeFileSync(file, readFileSync(file, 'utf8').replace('provider: graph-01', 'provider: entra-01'));
    const rebound = await events.next();
    expect(rebound.kind === 'update' && rebound.config.subgraphs[1]?.authorization?.providerId).toBe('entra-01');
  });

  it('reports nothing for an unchanged initial supergraph, and nothing after close', async () => {
    const file = copyRepoSupergraph();
    const config = await loadSupergraphConfig(file);
    const events = eventQueue();
    watcher = watchSupergraph(file, {
      ...events,
      debounceMs: DEBOUNCE_MS,
      initial: { config, supergraphSdl: composeSupergraph(config) },
    });
    writeFileSync(tmp.file('unrelated.txt'), 'not watched');
    await sleep(DEBOUNCE_MS * 6);
    expect(events.pending()).toBe(0);

    watcher.close();
    writeFileSync(file, readFileSync(file, 'utf8').replace('provider: graph-01', 'provider: entra-01'));
    await sleep(DEBOUNCE_MS * 6);
    expect(events.pending()).toBe(0);
  });

  it('reports a broken yaml, then recovers when it is fixed', async () => {
    const file = copyRepoSupergraph();
    const good = readFileSync(file, 'utf8');
    const events = eventQueue();
    watcher = watchSupergraph(file, { ...events, debounceMs: DEBOUNCE_MS });
    expect((await events.next()).kind).toBe('update');

    writeFileSync(file, good.replace('identity: jwt', 'identity: robot'));
    const broken = await events.next();
    expect(broken.kind === 'error' && (broken.error as ConfigError).problems).toEqual([
      `${file}: subgraphs.github.authorization.identity must be jwt, managed or exchange`,
    ]);

    writeFileSync(file, good.replace('ignore_error: false', 'ignore_error: true'));
    const fixed = await events.next();
    expect(fixed.kind === 'update' && fixed.config.subgraphs[0]?.authorization?.ignoreError).toBe(true);
  });
});

describe('createSupergraphSource with ApolloGateway', () => {
  it('serves the composed supergraph, hot-swaps edits, keeps the last good one on a broken edit, stops watching on stop', async () => {
    const file = copyRepoSupergraph();
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line)) });
    const source = await createSupergraphSource(file, logger, { debounceMs: DEBOUNCE_MS });
    const gateway = new ApolloGateway({ supergraphSdl: source, logger: createLogger('silent') });
    try {
      const { schema } = await gateway.load();
      expect(Object.keys(schema.getQueryType()!.getFields())).toEqual(
        expect.arrayContaining(['viewer', 'repository', 'githubTokenInfo', 'me', 'graphTokenInfo']),
      );
      expect(source.binding('github')?.providerId).toBe('github-01');
      expect(source.binding('nope')).toBeNull();

      const swapped = new Promise<string[]>((resolve) =>
        gateway.onSchemaLoadOrUpdate(({ apiSchema }) => resolve(Object.keys(apiSchema.getQueryType()!.getFields()))),
      );
      const githubSchema = tmp.file('subgraphs', 'github', 'schema.graphql');
      const original = readFileSync(githubSchema, 'utf8');
      writeFileSync(githubSchema, original.replace('viewer: User', 'viewer: User\n  rateLimit: Int!'));
      expect(await swapped).toContain('rateLimit');
      expect(source.currentSdl()).toContain('rateLimit');
      expect(lines.some((l) => l['msg'] === 'supergraph updated')).toBe(true);

      writeFileSync(
        file,
        readFileSync(file, 'utf8').replace('routing_url: http://127.0.0.1:4102/graphql', 'routing_url: nope'),
      );
      await waitFor(() =>
        lines.some((l) => l['msg'] === 'supergraph reload failed; the last good supergraph stays in use'),
      );
      expect(source.current().subgraphs[1]?.routingUrl).toBe('http://127.0.0.1:4102/graphql');
      expect(source.currentSdl()).toContain('rateLimit');
    } finally {
      await gateway.stop();
    }
    const logged = lines.length;
    writeFileSync(tmp.file('subgraphs', 'github', 'schema.graphql'), 'type Query {');
    await sleep(DEBOUNCE_MS * 6);
    expect(lines.length).toBe(logged);
  });

  it('fails to start on an invalid supergraph', async () => {
    const file = writeFixture(binding({ identity: 'robot' }));
    await expect(createSupergraphSource(file, createLogger('silent'))).rejects.toThrow(ConfigError);
  });
});

async function waitFor(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}
