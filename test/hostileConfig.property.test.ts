/**
 * Hostile configuration: arbitrary values, YAML text and environment overlays through
 * validateConfig / loadConfig, and arbitrary supergraph.yaml text through parseSupergraphConfig.
 * Each ends as a frozen value or a ConfigError whose every problem names where it is; never
 * another exception.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config/load.js';
import { CONFIG_KEYS, ConfigError, envNameOf, validateConfig, type Config } from '../src/config/schema.js';
import { parseSupergraphConfig, type SupergraphConfig } from '../src/gateway/supergraphConfig.js';
import { validateId } from '../src/domain/ids.js';
import { hostileString, runProperty } from './support/fuzz.js';
import { tempDir, type TempDir } from './support/tmp.js';

const KEY_PATHS = CONFIG_KEYS.map((k) => k.path);
const SECTIONS = [...new Set(KEY_PATHS.filter((p) => p.includes('.')).map((p) => p.split('.')[0]!))];
const GITHUB_SDL = resolve('subgraphs/github/schema.graphql');
const GRAPH_SDL = resolve('subgraphs/graph/schema.graphql');

/** YAML that has hurt parsers: nesting, alias bombs, self-reference, odd tags, BOM, NUL. */
const HOSTILE_YAML = [
  `server: ${'['.repeat(3000)}${']'.repeat(3000)}`,
  `identity: ${'{a: '.repeat(3000)}1${'}'.repeat(3000)}`,
  `${Array.from({ length: 1500 }, (_, i) => `${' '.repeat(i)}a:`).join('\n')} 1`,
  [
    'a: &a [x,x,x,x,x,x,x,x,x]',
    'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
    'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
    'd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
  ].join('\n'),
  'server: &s {host: x, self: *s}',
  'identity: {issuers: &i [{issuer: a, audience: b, algorithms: *i}]}',
  'identity: {issuers: [{issuer: a, audience: b, algorithms: 42}]}',
  'identity: {issuers: [{issuer: a, audience: b, algorithms: {RS256: true}}]}',
  'server: !!binary aGVsbG8=',
  'server: !!set {a, b}',
  'subgraphs: !!omap [a: 1]',
  'server: {port: 123456789012345678901234567890}',
  'server: {port: .nan}',
  '__proto__: {server: {port: 1}}\nserver: {__proto__: {port: 99999}}',
  '\ufeffserver: {port: 1}',
  'server:\u0000 {port: 1}',
  'server: {host: "\\ud800"}',
  'subgraphs:\r\n  a:\r\n    routing_url: http://x\r\n    schema: {file: /dev/null}',
  '? [a, b]\n: c',
  '--- 1\n--- 2',
  '%YAML 9.9\n---\na: 1',
  'a: !<tag:yaml.org,2002:js/function> "function(){}"',
];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function expectDeepFrozen(value: unknown, path = 'config'): void {
  if (typeof value !== 'object' || value === null) return;
  expect(Object.isFrozen(value), `${path} is frozen`).toBe(true);
  for (const [k, v] of Object.entries(value)) expectDeepFrozen(v, `${path}.${k}`);
}

/** Dotted paths of every mapping key in `input` (the shapes knownKeyProblems can report). */
function keyPathsOf(input: unknown, prefix = '', out = new Set<string>(), depth = 0): Set<string> {
  if (!isRecord(input) || depth > 3) return out;
  for (const [k, v] of Object.entries(input)) {
    const path = prefix ? `${prefix}.${k}` : k;
    out.add(path);
    keyPathsOf(v, path, out, depth + 1);
  }
  return out;
}

/** A problem names a configuration key path (known, or the unknown one it refuses). */
function namesKeyPath(problem: string, input: unknown): boolean {
  if (KEY_PATHS.some((p) => problem.startsWith(p) && [' ', '[', '.'].includes(problem[p.length] ?? ''))) return true;
  // The empty key is a key too (the message then starts with a space).
  const unknown = /^([\s\S]*) is not a known configuration key$/.exec(problem);
  if (unknown) return keyPathsOf(input).has(unknown[1]!);
  return problem === 'the configuration must be a mapping' && !isRecord(input) && input !== undefined && input !== null;
}

/** Either a deep-frozen Config or a ConfigError whose problems all pass `named`; anything else fails. */
function expectConfigOrNamedProblems(run: () => Config, named: (problem: string) => boolean): 'accepted' | 'refused' {
  let config: Config;
  try {
    config = run();
  } catch (e) {
    if (!(e instanceof ConfigError))
      throw new Error(`expected a Config or a ConfigError, got ${String(e)}`, { cause: e });
    expect(e.problems.length).toBeGreaterThan(0);
    for (const problem of e.problems)
      expect(named(problem), `problem names a key path: ${JSON.stringify(problem)}`).toBe(true);
    return 'refused';
  }
  expectDeepFrozen(config);
  expect(Number.isInteger(config.server.port)).toBe(true);
  expect(typeof config.store.url).toBe('string');
  return 'accepted';
}

/** How often each outcome happened: a property that never reaches one of them tests less than it claims. */
function tally() {
  const counts = { accepted: 0, refused: 0 };
  return {
    counts,
    add(outcome: 'accepted' | 'refused') {
      counts[outcome]++;
    },
  };
}

// Values a configuration key might be given: right and wrong types, edge numbers, URLs, anything.
const scalar = fc.oneof(
  hostileString(40),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(
    0,
    -1,
    65_535,
    65_536,
    2 ** 53,
    '4000',
    ' 80 ',
    '0x10',
    'true',
    'false',
    'RS256',
    'none',
    'HS256',
    'info',
  ),
  fc.constantFrom(
    'https://app.example.com',
    'https://app.example.com/',
    'http://[::1',
    'sqlite:',
    'sqlite:/tmp/x.db',
    'postgres://x',
    'ftp://x',
  ),
  fc.constantFrom(`k1:${'A'.repeat(43)}=`, 'k1:AAAA', ':', 'a,b,,c'),
);
const issuer = fc.record(
  {
    issuer: fc.oneof(scalar, fc.constant('https://idp.example.com')),
    audience: fc.oneof(scalar, fc.constant('api://x')),
    jwksUri: fc.oneof(scalar, fc.constant('https://idp.example.com/jwks')),
    algorithms: fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }), fc.anything({ maxDepth: 2 })),
    extra: scalar,
  },
  { requiredKeys: [] },
);
const configValue = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 2, arbitrary: fc.array(scalar, { maxLength: 4 }) },
  { weight: 2, arbitrary: fc.array(issuer, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(hostileString(12), scalar, { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 3 }) },
);
/** A raw configuration: some known key paths set, sections replaced, unknown keys, all with hostile values. */
const rawConfig = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom(...KEY_PATHS, ...SECTIONS),
        hostileString(12),
        fc.constantFrom('server.prot', 'stroe', '__proto__', 'server.__proto__'),
      ),
      configValue,
    ),
    {
      maxLength: 8,
    },
  )
  .map((entries) => {
    const out: Record<string, unknown> = {};
    for (const [path, value] of entries) {
      const parts = path.split('.');
      let cur = out;
      for (const part of parts.slice(0, -1)) {
        if (!isRecord(cur[part]))
          Object.defineProperty(cur, part, { value: {}, enumerable: true, writable: true, configurable: true });
        cur = cur[part] as Record<string, unknown>;
      }
      Object.defineProperty(cur, parts[parts.length - 1]!, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  });
const rawInput = fc.oneof(
  { weight: 8, arbitrary: rawConfig },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.constantFrom(undefined, null, [], 'server: 1', 42) },
);

/** YAML text: stringified structures, the same with characters spliced in, raw strings (HOSTILE_YAML has its own test). */
function yamlText(structure: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  const stringified = structure.map((v) => {
    try {
      return stringify(v) ?? '';
    } catch {
      return String(v);
    }
  });
  const spliced = fc
    .tuple(stringified, fc.nat(), hostileString(8))
    .map(([text, at, junk]) => text.slice(0, at % (text.length + 1)) + junk + text.slice(at % (text.length + 1)));
  return fc.oneof(
    { weight: 5, arbitrary: stringified },
    { weight: 3, arbitrary: spliced },
    { weight: 1, arbitrary: hostileString(200) },
  );
}

const envOverlay = fc.dictionary(
  fc.constantFrom(...KEY_PATHS.map(envNameOf)),
  fc.oneof(
    hostileString(40),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc.constantFrom('[{"issuer":"a","audience":"b","algorithms":5}]', '[null]', '{}', '1e999'),
  ),
  { maxKeys: 4 },
);

let tmp: TempDir;
beforeAll(async () => {
  tmp = await tempDir('cg-hostile-config-');
});
afterAll(() => tmp?.cleanup());

describe('hostile configuration input', () => {
  it('validateConfig turns any object into a frozen Config or key-path problems', async () => {
    const outcomes = tally();
    await runProperty(
      'validateConfig(arbitrary object)',
      fc.property(rawInput, (input) =>
        outcomes.add(
          expectConfigOrNamedProblems(
            () => validateConfig(input),
            (p) => namesKeyPath(p, input),
          ),
        ),
      ),
      2000,
    );
    expect(outcomes.counts.accepted).toBeGreaterThan(0);
    expect(outcomes.counts.refused).toBeGreaterThan(0);
  });

  it('loadConfig turns any YAML file and environment into a frozen Config or named problems', async () => {
    const file = tmp.file('config.yaml');
    const outcomes = tally();
    await runProperty(
      'loadConfig(arbitrary YAML file, arbitrary CG_* environment)',
      fc.property(yamlText(rawConfig), envOverlay, (text, env) => {
        writeFileSync(file, text);
        // Key-path problems name keys of the merged input; the file's own problems name the file.
        outcomes.add(
          expectConfigOrNamedProblems(
            () => loadConfig(['--config', file], env),
            (p) =>
              p.startsWith(`${file}: `) ||
              KEY_PATHS.some((k) => p.startsWith(k)) ||
              / is not a known configuration key$/.test(p),
          ),
        );
      }),
      500,
    );
    expect(outcomes.counts.accepted).toBeGreaterThan(0);
    expect(outcomes.counts.refused).toBeGreaterThan(0);
  });

  it('keeps the problems of known-hostile YAML samples to ConfigErrors (regression: algorithms: 42 threw a TypeError)', () => {
    const file = tmp.file('sample.yaml');
    for (const text of HOSTILE_YAML) {
      writeFileSync(file, text);
      try {
        loadConfig(['--config', file], {});
      } catch (e) {
        expect(e, text.slice(0, 60)).toBeInstanceOf(ConfigError);
      }
    }
    expect(() => validateConfig({ identity: { issuers: [{ issuer: 'a', audience: 'b', algorithms: 42 }] } })).toThrow(
      new ConfigError(['identity.issuers[0].algorithms must be a non-empty list of asymmetric JWS algorithms']),
    );
  });
});

describe('hostile supergraph.yaml', () => {
  let dir: string;
  beforeAll(() => {
    dir = tmp.file('supergraph');
    mkdirSync(dir, { recursive: true });
    mkdirSync(tmp.file('supergraph', 'a-directory.graphql'), { recursive: true });
    writeFileSync(
      tmp.file('supergraph', 'a.graphql'),
      'extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])\ntype Query { a: String }\n',
    );
  });

  /** Mostly the good value, so that whole documents are often valid; otherwise anything. */
  const valueOr = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<unknown> = fc.constant(undefined)) =>
    fc.oneof(
      { weight: 12, arbitrary: good },
      { weight: 1, arbitrary: bad },
      { weight: 1, arbitrary: scalar },
      { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) },
    );
  const connectionText = fc.oneof(
    fc.constantFrom('{jwt.sub}', 'user-{jwt.oid}', 'fixed-01'),
    fc.constantFrom(
      '{jwt.}',
      '{jwt.sub',
      'jwt.sub}',
      '{{jwt.sub}}',
      '{env.HOME}',
      'a/{jwt.sub}',
      '{jwt.sub}{jwt.tid}',
      '',
    ),
    fc
      .tuple(hostileString(6), fc.constantFrom('{', '}', '{jwt.sub}', '{jwt.__proto__}'), hostileString(6))
      .map((parts) => parts.join('')),
  );
  const binding = fc.record(
    {
      provider: valueOr(fc.constantFrom('github-01', 'graph-01'), fc.constantFrom('a/b', '..', '', 'x y')),
      connection: valueOr(connectionText),
      identity: valueOr(fc.constantFrom('jwt', 'managed'), fc.constantFrom('JWT', '')),
      ignore_error: valueOr(fc.boolean()),
      header: valueOr(fc.constantFrom('Authorization', 'X-Token'), fc.constantFrom('Bad Header', 'a:b', '')),
    },
    { requiredKeys: ['provider', 'connection'] },
  );
  const schemaSource = fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        file: valueOr(
          fc.constantFrom('./a.graphql', GITHUB_SDL, GRAPH_SDL),
          fc.constantFrom(
            './missing.graphql',
            './a-directory.graphql',
            '/dev/null',
            'a\u0000b',
            `${'../'.repeat(20)}etc/hostname`,
            '',
          ),
        ),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ subgraph_url: scalar, sdl: scalar, graphref: scalar, file: scalar }, { requiredKeys: [] }),
    },
  );
  const subgraph = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record(
        {
          routing_url: valueOr(
            fc.constantFrom('http://127.0.0.1:4101/graphql', 'https://b.example.com/graphql'),
            fc.constantFrom('ftp://x', 'javascript:alert(1)', 'http://[::1'),
          ),
          schema: valueOr(schemaSource),
          authorization: fc.oneof(binding, fc.constant(null)),
        },
        { requiredKeys: ['routing_url', 'schema'] },
      ),
    },
    {
      weight: 1,
      arbitrary: fc.record(
        { routing_url: scalar, schema: scalar, authorization: fc.oneof(binding, scalar), extra: scalar },
        { requiredKeys: [] },
      ),
    },
  );
  const subgraphName = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('github', 'graph', '_x', 'a-b') },
    {
      weight: 1,
      arbitrary: fc.oneof(fc.constantFrom('1bad', 'has space', '__proto__', 'constructor'), hostileString(10)),
    },
  );
  const document = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record(
        {
          federation_version: valueOr(
            fc.constantFrom('=2.9.0', '2', 2, 2.9),
            fc.constantFrom('1', '=3.0.0', '2.9.0.1'),
          ),
          subgraphs: valueOr(fc.dictionary(subgraphName, subgraph, { minKeys: 1, maxKeys: 3 })),
        },
        { requiredKeys: ['subgraphs'] },
      ),
    },
    {
      weight: 1,
      arbitrary: fc.record(
        { federation_version: scalar, subgraphs: fc.dictionary(subgraphName, subgraph, { maxKeys: 3 }), extra: scalar },
        { requiredKeys: [] },
      ),
    },
  );

  function expectSupergraphOrProblems(text: string, structured: boolean): 'accepted' | 'refused' {
    const file = resolve(dir, 'supergraph.yaml');
    let parsed: SupergraphConfig;
    try {
      parsed = parseSupergraphConfig(text, file);
    } catch (e) {
      if (!(e instanceof ConfigError))
        throw new Error(`expected a SupergraphConfig or a ConfigError, got ${String(e)}`, { cause: e });
      expect(e.problems.length).toBeGreaterThan(0);
      for (const problem of e.problems) {
        expect(problem.startsWith(`${file}: `), `problem names the file: ${JSON.stringify(problem)}`).toBe(true);
        // Text that parses as YAML gets problems that name the key path.
        if (structured)
          expect(problem.slice(file.length + 2), 'problem names a key path').toMatch(
            /^(subgraphs|federation_version|the file must be a mapping)|[\s\S]+ is not a known key$/,
          );
      }
      return 'refused';
    }
    expectDeepFrozen(parsed, 'supergraph');
    expect(parsed.subgraphs.length).toBeGreaterThan(0);
    for (const s of parsed.subgraphs) {
      expect(['http:', 'https:']).toContain(new URL(s.routingUrl).protocol);
      expect(typeof s.sdl).toBe('string');
      if (s.authorization) expect(validateId(s.authorization.providerId, 'provider')).toBe(s.authorization.providerId);
    }
    return 'accepted';
  }

  it('parseSupergraphConfig turns any YAML document into a frozen SupergraphConfig or named problems', async () => {
    const outcomes = tally();
    await runProperty(
      'parseSupergraphConfig(arbitrary YAML document)',
      fc.property(document, (doc) => outcomes.add(expectSupergraphOrProblems(stringify(doc), true))),
      800,
    );
    expect(outcomes.counts.accepted).toBeGreaterThan(0);
    expect(outcomes.counts.refused).toBeGreaterThan(0);
  });

  it('parseSupergraphConfig turns any text into a SupergraphConfig or a ConfigError naming the file', async () => {
    await runProperty(
      'parseSupergraphConfig(arbitrary text)',
      fc.property(yamlText(document), (text) => void expectSupergraphOrProblems(text, false)),
      600,
    );
  });
});
