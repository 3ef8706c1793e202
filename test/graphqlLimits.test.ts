/** The document limits on their own: what each counts, through fragments, and at what cost. */
import { buildSchema, getIntrospectionQuery, parse, specifiedRules, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import {
  documentLimitProblems,
  GRAPHQL_PARSE_OPTIONS,
  graphqlLimitRules,
  MAX_ALIASES_PER_OPERATION,
  MAX_DOCUMENT_BYTES,
  MAX_DOCUMENT_TOKENS,
  MAX_NESTING_LEVELS,
  MAX_OPERATIONS_PER_DOCUMENT,
  MAX_QUERY_DEPTH,
  MAX_ROOT_FIELDS_PER_OPERATION,
  MAX_VARIABLE_DEPTH,
  MAX_VARIABLE_VALUES,
  variablesProblem,
} from '../src/graphql/limits.js';
import { JsonShapeMeter } from '../src/server/jsonShape.js';

const problems = (query: string) => documentLimitProblems(parse(query));
/** `levels` nested `a { … }` selections ending in `b`: that many field levels. */
const nested = (levels: number) => `${'a { '.repeat(levels - 1)}b${' }'.repeat(levels - 1)}`;
const aliases = (n: number, field = 'b') => Array.from({ length: n }, (_, i) => `x${i}: ${field}`).join(' ');

describe('GraphQL document limits', () => {
  it('uses limits with their units in their names', () => {
    expect({
      MAX_DOCUMENT_BYTES,
      MAX_DOCUMENT_TOKENS,
      MAX_QUERY_DEPTH,
      MAX_NESTING_LEVELS,
      MAX_ALIASES_PER_OPERATION,
      MAX_ROOT_FIELDS_PER_OPERATION,
      MAX_OPERATIONS_PER_DOCUMENT,
    }).toEqual({
      MAX_DOCUMENT_BYTES: 65_536,
      MAX_DOCUMENT_TOKENS: 10_000,
      MAX_QUERY_DEPTH: 20,
      MAX_NESTING_LEVELS: 40,
      MAX_ALIASES_PER_OPERATION: 30,
      MAX_ROOT_FIELDS_PER_OPERATION: 20,
      MAX_OPERATIONS_PER_DOCUMENT: 20,
    });
    expect(Object.isFrozen(GRAPHQL_PARSE_OPTIONS)).toBe(true);
  });

  it('counts field levels: exactly MAX_QUERY_DEPTH passes, one more is refused', () => {
    expect(problems(`{ ${nested(MAX_QUERY_DEPTH)} }`)).toEqual([]);
    expect(problems(`{ ${nested(MAX_QUERY_DEPTH + 1)} }`)).toEqual([
      'the operation is more than 20 field levels deep (MAX_QUERY_DEPTH)',
    ]);
  });

  it('counts depth through fragment spreads and inline fragments, which add no level of their own', () => {
    const q = `query Q { a { ...F } } fragment F on T { ... on T { ${nested(MAX_QUERY_DEPTH - 1)} } }`;
    expect(problems(q)).toEqual([]);
    expect(
      problems(`query Q { a { a { ...F } } } fragment F on T { ... on T { ${nested(MAX_QUERY_DEPTH - 1)} } }`),
    ).toEqual(['operation Q is more than 20 field levels deep (MAX_QUERY_DEPTH)']);
  });

  it('passes the full introspection query, every option on (15 field levels)', () => {
    const query = getIntrospectionQuery({
      descriptions: true,
      specifiedByUrl: true,
      directiveIsRepeatable: true,
      schemaDescription: true,
      inputValueDeprecation: true,
      oneOf: true,
    });
    expect(problems(query)).toEqual([]);
    // Exactly 15: five more levels above __schema still pass, six do not.
    const deeper = (n: number) => {
      const at = query.indexOf('fragment FullType');
      const operation = query.slice(0, at);
      const end = operation.lastIndexOf('}');
      return `${operation.slice(0, end).replace('__schema {', `${'a { '.repeat(n)}__schema {`)}${' }'.repeat(n)}${operation.slice(end)}${query.slice(at)}`;
    };
    expect(problems(deeper(MAX_QUERY_DEPTH - 15))).toEqual([]);
    expect(problems(deeper(MAX_QUERY_DEPTH - 14))).toEqual([
      'operation IntrospectionQuery is more than 20 field levels deep (MAX_QUERY_DEPTH)',
    ]);
  });

  it('counts aliases as executed: a fragment spread twice counts twice', () => {
    expect(problems(`{ a { ${aliases(MAX_ALIASES_PER_OPERATION)} } }`)).toEqual([]);
    expect(problems(`{ a { ${aliases(MAX_ALIASES_PER_OPERATION + 1)} } }`)).toEqual([
      'the operation uses more than 30 aliases, fragments expanded (MAX_ALIASES_PER_OPERATION)',
    ]);
    expect(problems(`{ a { ...F } c { ...F } } fragment F on T { ${aliases(16)} }`)).toEqual([
      'the operation uses more than 30 aliases, fragments expanded (MAX_ALIASES_PER_OPERATION)',
    ]);
    expect(problems(`{ a { ...F } } fragment F on T { ${aliases(16)} }`)).toEqual([]);
  });

  it('counts root fields through fragments, aliases included', () => {
    expect(problems(`{ ${'b '.repeat(MAX_ROOT_FIELDS_PER_OPERATION)} }`)).toEqual([]);
    expect(problems(`{ ${'b '.repeat(MAX_ROOT_FIELDS_PER_OPERATION + 1)} }`)).toEqual([
      'the operation selects more than 20 root fields (MAX_ROOT_FIELDS_PER_OPERATION)',
    ]);
    expect(problems(`{ ...R ... on Query { ...R } } fragment R on Query { ${'b '.repeat(11)} }`)).toEqual([
      'the operation selects more than 20 root fields (MAX_ROOT_FIELDS_PER_OPERATION)',
    ]);
    // Fields below the root are not root fields.
    expect(problems(`{ a { ${'b '.repeat(50)} } }`)).toEqual([]);
  });

  it('counts operations per document', () => {
    const ops = (n: number) => Array.from({ length: n }, (_, i) => `query Q${i} { b }`).join(' ');
    expect(problems(ops(MAX_OPERATIONS_PER_DOCUMENT))).toEqual([]);
    expect(problems(ops(MAX_OPERATIONS_PER_DOCUMENT + 1))).toEqual([
      'the document has more than 20 operations (MAX_OPERATIONS_PER_DOCUMENT)',
    ]);
  });

  it('measures the document in UTF-8 bytes, comments included', () => {
    expect(problems(`{ b }\n#${'x'.repeat(MAX_DOCUMENT_BYTES - 10)}`)).toEqual([]);
    expect(problems(`{ b }\n#${'x'.repeat(MAX_DOCUMENT_BYTES)}`)).toEqual([
      'the document is larger than 65536 bytes (MAX_DOCUMENT_BYTES)',
    ]);
    // 22,000 characters, 66,000 bytes.
    expect(problems(`{ b }\n#${'€'.repeat(22_000)}`)).toEqual([
      'the document is larger than 65536 bytes (MAX_DOCUMENT_BYTES)',
    ]);
  });

  it('refuses more than MAX_DOCUMENT_TOKENS tokens while parsing', () => {
    expect(() => parse(`{ ${'b '.repeat(MAX_DOCUMENT_TOKENS - 2)} }`, GRAPHQL_PARSE_OPTIONS)).not.toThrow();
    expect(() => parse(`{ ${'b '.repeat(MAX_DOCUMENT_TOKENS)} }`, GRAPHQL_PARSE_OPTIONS)).toThrow(
      /more th.. 10000 tokens/,
    );
  });

  it('refuses selections nested past MAX_NESTING_LEVELS, counting fragments, without overflowing the stack', () => {
    const inline = (n: number) => `{ ${'... on Query { '.repeat(n)}b${' }'.repeat(n)} }`;
    expect(problems(inline(MAX_NESTING_LEVELS - 1))).toEqual([]);
    expect(problems(inline(MAX_NESTING_LEVELS))).toEqual([
      'the operation nests fields and fragments more than 40 levels deep (MAX_NESTING_LEVELS)',
    ]);
    const chain = (n: number) =>
      `query C { ...F0 } ${Array.from({ length: n }, (_, i) => `fragment F${i} on Query { ...F${i + 1} }`).join(' ')} fragment F${n} on Query { b }`;
    expect(problems(chain(1000))).toEqual([
      'operation C nests fields and fragments more than 40 levels deep (MAX_NESTING_LEVELS)',
    ]);
  });

  it('measures each fragment once: a doubling chain costs linear time, not 2^n', () => {
    const doubling = `query D { a { ...F0 } } ${Array.from({ length: 35 }, (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`).join(' ')} fragment F35 on Query { x: b }`;
    const started = performance.now();
    expect(problems(doubling)).toEqual([
      'operation D uses more than 30 aliases, fragments expanded (MAX_ALIASES_PER_OPERATION)',
    ]);
    expect(performance.now() - started).toBeLessThan(200);
  });

  it('leaves fragment cycles and unknown fragments to graphql-js, without looping', () => {
    expect(problems('query { ...A } fragment A on Query { ...B } fragment B on Query { ...A b }')).toEqual([]);
    expect(problems('query { ...Nowhere }')).toEqual([]);
  });

  it("as a validation rule, reports its problem next to graphql-js's own and hides none of them", () => {
    const schema = buildSchema('type Query { a: Query b: Int }');
    const run = (q: string) =>
      validate(schema, parse(q), [...specifiedRules, ...graphqlLimitRules()]).map((e) => e.message);
    expect(run(`{ ${nested(5)} }`)).toEqual([]);
    expect(run(`{ ${nested(MAX_QUERY_DEPTH + 1)} nope }`)).toEqual([
      'the operation is more than 20 field levels deep (MAX_QUERY_DEPTH)',
      'Cannot query field "nope" on type "Query".',
    ]);
    expect(run('{ nope }')).toEqual(['Cannot query field "nope" on type "Query".']);
  });
});

describe('variable limits', () => {
  /** The public message of the refusal, or null. */
  const problem = (variables: Record<string, unknown>, declared: readonly string[]) =>
    variablesProblem(variables, declared)?.message ?? null;
  const nestedList = (levels: number): unknown => {
    let v: unknown = 'leaf';
    for (let i = 0; i < levels; i++) v = [v];
    return v;
  };

  it('uses limits with their units in their names', () => {
    expect({ MAX_VARIABLE_DEPTH, MAX_VARIABLE_VALUES }).toEqual({
      MAX_VARIABLE_DEPTH: 32,
      MAX_VARIABLE_VALUES: 10_000,
    });
  });

  it('never reads a variable the operation does not declare (execution ignores it too)', () => {
    const variables = { a: 'fine' } as Record<string, unknown>;
    Object.defineProperty(variables, 'junk', {
      enumerable: true,
      get: () => {
        throw new Error('an undeclared variable was read');
      },
    });
    expect(problem(variables, ['a'])).toBeNull();
    expect(problem({ junk: 'x\ud800', deep: nestedList(10 * MAX_VARIABLE_DEPTH) }, ['a'])).toBeNull();
  });

  it('counts levels of lists and objects: exactly MAX_VARIABLE_DEPTH passes, one more is refused naming the variable', () => {
    expect(problem({ v: nestedList(MAX_VARIABLE_DEPTH) }, ['v'])).toBeNull();
    expect(problem({ v: nestedList(MAX_VARIABLE_DEPTH + 1) }, ['v'])).toBe(
      '$v nests lists and input objects more than 32 levels deep (MAX_VARIABLE_DEPTH)',
    );
    let o: unknown = 1;
    for (let i = 0; i < MAX_VARIABLE_DEPTH + 1; i++) o = { k: o };
    expect(problem({ w: o }, ['w'])).toBe(
      '$w nests lists and input objects more than 32 levels deep (MAX_VARIABLE_DEPTH)',
    );
  });

  it('counts values across every declared variable: MAX_VARIABLE_VALUES pass, one more is refused', () => {
    const half = MAX_VARIABLE_VALUES / 2;
    // Each variable is a value too: two roots, and their items.
    expect(problem({ a: Array(half - 1).fill(0), b: Array(half - 1).fill(0) }, ['a', 'b'])).toBeNull();
    expect(problem({ a: Array(half - 1).fill(0), b: Array(half).fill(0) }, ['a', 'b'])).toMatch(
      /^\$[ab] holds more than 10000 values, counting every list item and object member \(MAX_VARIABLE_VALUES\)$/,
    );
    const members = Object.fromEntries(Array.from({ length: MAX_VARIABLE_VALUES }, (_, i) => [`k${i}`, i]));
    expect(problem({ o: members }, ['o'])).toBe(
      '$o holds more than 10000 values, counting every list item and object member (MAX_VARIABLE_VALUES)',
    );
  });

  it('stops at the limit: a list of a million items is refused without visiting them', () => {
    const huge = new Proxy(Array(1_000_000).fill(0), {
      get: (t, k) => {
        if (typeof k === 'string' && /^\d+$/.test(k)) throw new Error('an item was visited');
        return Reflect.get(t, k);
      },
    });
    expect(problem({ v: huge }, ['v'])).toMatch(/MAX_VARIABLE_VALUES/);
  });

  it('names the path of an unstorable string or key, built only for the refusal', () => {
    const input = {
      parameters: [
        { name: 'a', value: 'ok' },
        { name: 'b', value: 'x\u0000y' },
      ],
    };
    expect(problem({ input }, ['input'])).toBe(
      '$input.parameters[1].value contains U+0000 or an unpaired surrogate, which no text field accepts',
    );
    expect(problem({ input: { ['k\udc00']: 1 } }, ['input'])).toBe(
      '$input contains U+0000 or an unpaired surrogate, which no text field accepts',
    );
    expect(problem({ s: 'a\ud83d\ude00b' }, ['s'])).toBeNull();
  });
});

describe('JsonShapeMeter (before a body is decoded)', () => {
  /** Feeds `text` as UTF-8 in chunks of `size` bytes; the first problem, or null. */
  const shape = (text: string, maxDepth: number, maxValues: number, size = Infinity) => {
    const meter = new JsonShapeMeter(maxDepth, maxValues);
    const bytes = Buffer.from(text);
    for (let at = 0; at < bytes.length; at += Math.min(size, bytes.length)) {
      const problem = meter.feed(bytes.subarray(at, at + size));
      if (problem !== null) return problem;
    }
    return null;
  };

  it('measures depth and values of well-formed JSON like JSON.parse would read it', () => {
    expect(shape('[[[1]]]', 3, 100)).toBeNull();
    expect(shape('[[[[1]]]]', 3, 100)).toBe('too-deep');
    // One per list or object, one per comma: 6 here (the root object, a, b, 1, 2, 3).
    expect(shape('{"a":[1,2,3],"b":{}}', 10, 6)).toBeNull();
    expect(shape('{"a":[1,2,3],"b":{},"c":1}', 10, 6)).toBe('too-many-values');
  });

  it('skips strings, escaped quotes and backslashes included, in any chunking', () => {
    const text = JSON.stringify({ query: '[[[[{{{{,,,,', v: 'a\\"[[[[', w: '\\', x: '"]]]]', y: '€"[[' });
    const deeper = `${text.slice(0, -1)},"z":[[1]]}`;
    for (const size of [1, 2, 3, 5, 7, Infinity]) {
      expect(shape(text, 1, 6, size), `chunks of ${size}`).toBeNull();
      expect(shape(deeper, 1, 10, size), `chunks of ${size}`).toBe('too-deep');
    }
  });

  it('skips long strings (past the byte-by-byte scan) with escapes anywhere, in any chunking', () => {
    const long = `${'a'.repeat(70)}\\"[[[${'\\\\'.repeat(40)}{{{\\"${'é'.repeat(50)}\\\\`;
    const text = `{"a":"${long}","b":[1]}`;
    expect(JSON.parse(text).b).toEqual([1]);
    for (const size of [1, 2, 3, 64, 65, 66, 67, 100, Infinity]) {
      expect(shape(text, 2, 10, size), `chunks of ${size}`).toBeNull();
      expect(shape(`[${text}]`, 2, 10, size), `chunks of ${size}`).toBe('too-deep');
    }
  });

  it('refuses in the first chunk that shows the problem', () => {
    const meter = new JsonShapeMeter(34, 10_064);
    expect(meter.feed(Buffer.from(`{"query":"{ __typename }","variables":{"v":${'['.repeat(40)}`))).toBe('too-deep');
  });

  it('leaves malformed JSON to JSON.parse', () => {
    expect(shape('{"a": "never closed [[[[[[', 1, 1)).toBeNull();
    expect(shape(']]]]', 1, 1)).toBeNull();
  });
});
