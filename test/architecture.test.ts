/**
 * The dependency rules of the codebase, checked: imports point one way through the layers, and
 * there are no import cycles. A new top-level directory must be placed in a layer here.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(new URL('../src', import.meta.url).pathname);

/** Lower layers never import higher ones (type-only imports included). */
const LAYERS: Readonly<Record<string, number>> = {
  'errors.ts': 0,
  'values.ts': 0,
  domain: 0,
  'log.ts': 0,
  'crypto/sealed.ts': 0,
  // The browser kit (credential-gateway/client): a leaf that runs in browsers; see the test below.
  client: 0,
  'identity/algorithms.ts': 0,
  'crypto/keySpec.ts': 0,
  'store/url.ts': 0,
  config: 1,
  tracing: 1,
  crypto: 2,
  store: 2,
  providers: 3,
  oauth: 3,
  identity: 3,
  registry: 4,
  keys: 4,
  tokens: 5,
  consent: 6,
  graphql: 6,
  observability: 7,
  admin: 7,
  gateway: 7,
  server: 8,
  demo: 9,
  'main.ts': 10,
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

function layerOf(file: string): number {
  const rel = relative(SRC, file);
  const key = Object.keys(LAYERS)
    .filter((k) => rel === k || rel.startsWith(`${k}/`))
    .sort((a, b) => b.length - a.length)[0];
  if (key === undefined) throw new Error(`${rel} belongs to no layer: add its directory to LAYERS`);
  return LAYERS[key]!;
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/g),
    ...text.matchAll(/import\('(\.[^']+)'\)/g),
  ].map((m) => m[1]!);
  return specs.map((s) => resolve(dirname(file), s.replace(/\.js$/, '.ts')));
}

const ALL = files(SRC);
const GRAPH = new Map(ALL.map((f) => [f, importsOf(f).filter((i) => i.startsWith(SRC))]));

describe('architecture', () => {
  it('places every source file in a layer', () => {
    for (const f of ALL) expect(() => layerOf(f)).not.toThrow();
  });

  it('points every import down or sideways through the layers', () => {
    const violations = ALL.flatMap((f) =>
      GRAPH.get(f)!
        .filter((i) => layerOf(i) > layerOf(f))
        .map((i) => `${relative(SRC, f)} → ${relative(SRC, i)}`),
    );
    expect(violations).toEqual([]);
  });

  it('has no import cycles', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string): void => {
      state.set(f, 'visiting');
      stack.push(f);
      for (const dep of GRAPH.get(f) ?? []) {
        if (state.get(dep) === 'visiting')
          cycles.push([...stack.slice(stack.indexOf(dep)), dep].map((x) => relative(SRC, x)).join(' → '));
        else if (!state.has(dep)) visit(dep);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of ALL) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it('keeps the browser kit (src/client) to itself, @apollo/client and rxjs: nothing of the server, nothing of Node', () => {
    const kit = ALL.filter((f) => relative(SRC, f).startsWith('client/'));
    expect(kit.length).toBeGreaterThan(0);
    const foreign = kit.flatMap((f) =>
      [...readFileSync(f, 'utf8').matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/g)]
        .map((m) => m[1]!)
        .filter((spec) =>
          spec.startsWith('.')
            ? !resolve(dirname(f), spec).startsWith(join(SRC, 'client'))
            : !/^(@apollo\/client|rxjs)(\/|$)/.test(spec),
        )
        .map((spec) => `${relative(SRC, f)} → ${spec}`),
    );
    expect(foreign).toEqual([]);
  });

  it('has no default exports', () => {
    const offenders = ALL.filter((f) => /^export default /m.test(readFileSync(f, 'utf8'))).map((f) => relative(SRC, f));
    expect(offenders).toEqual([]);
  });
});
