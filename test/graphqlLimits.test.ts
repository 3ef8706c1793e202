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
} from '../src/graphql/limits.js';

const problems = (query: string) => documentLimitProblems(parse(query));
/** `levels` nested `a { … }` selections ending in `b`: that many field levels. */
const nested = (levels: number) => `${'a { '.repeat(levels - 1)}b${' }'.repeat(levels - 1)}`;
const aliases = (n: number, field = 'b') => Array.from({ length: n }, (_, i) => `x${i}: ${field}`).join(' ');

describe('GraphQL document limits', () => {
  it('uses limits with their units in their names', () => {
    expect({ MAX_DOCUMENT_BYTES, MAX_DOCUMENT_TOKENS, MAX_QUERY_DEPTH, MAX_NESTING_LEVELS, MAX_ALIASES_PER_OPERATION, MAX_ROOT_FIELDS_PER_OPERATION, MAX_OPERATIONS_PER_DOCUMENT }).toEqual({
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
    expect(problems(`{ ${nested(MAX_QUERY_DEPTH + 1)} }`)).toEqual(['the operation is more than 20 field levels deep (MAX_QUERY_DEPTH)']);
  });

  it('counts depth through fragment spreads and inline fragments, which add no level of their own', () => {
    const q = `query Q { a { ...F } } fragment F on T { ... on T { ${nested(MAX_QUERY_DEPTH - 1)} } }`;
    expect(problems(q)).toEqual([]);
    expect(problems(`query Q { a { a { ...F } } } fragment F on T { ... on T { ${nested(MAX_QUERY_DEPTH - 1)} } }`)).toEqual([
      'operation Q is more than 20 field levels deep (MAX_QUERY_DEPTH)',
    ]);
  });

  it('passes the full introspection query, every option on (15 field levels)', () => {
    const query = getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true, oneOf: true });
    expect(problems(query)).toEqual([]);
    // Exactly 15: five more levels above __schema still pass, six do not.
    const deeper = (n: number) => {
      const at = query.indexOf('fragment FullType');
      const operation = query.slice(0, at);
      const end = operation.lastIndexOf('}');
      return `${operation.slice(0, end).replace('__schema {', `${'a { '.repeat(n)}__schema {`)}${' }'.repeat(n)}${operation.slice(end)}${query.slice(at)}`;
    };
    expect(problems(deeper(MAX_QUERY_DEPTH - 15))).toEqual([]);
    expect(problems(deeper(MAX_QUERY_DEPTH - 14))).toEqual(['operation IntrospectionQuery is more than 20 field levels deep (MAX_QUERY_DEPTH)']);
  });

  it('counts aliases as executed: a fragment spread twice counts twice', () => {
    expect(problems(`{ a { ${aliases(MAX_ALIASES_PER_OPERATION)} } }`)).toEqual([]);
    expect(problems(`{ a { ${aliases(MAX_ALIASES_PER_OPERATION + 1)} } }`)).toEqual(['the operation uses more than 30 aliases, fragments expanded (MAX_ALIASES_PER_OPERATION)']);
    expect(problems(`{ a { ...F } c { ...F } } fragment F on T { ${aliases(16)} }`)).toEqual(['the operation uses more than 30 aliases, fragments expanded (MAX_ALIASES_PER_OPERATION)']);
    expect(problems(`{ a { ...F } } fragment F on T { ${aliases(16)} }`)).toEqual([]);
  });

  it('counts root fields through fragments, aliases included', () => {
    expect(problems(`{ ${'b '.repeat(MAX_ROOT_FIELDS_PER_OPERATION)} }`)).toEqual([]);
    expect(problems(`{ ${'b '.repeat(MAX_ROOT_FIELDS_PER_OPERATION + 1)} }`)).toEqual(['the operation selects more than 20 root fields (MAX_ROOT_FIELDS_PER_OPERATION)']);
    expect(problems(`{ ...R ... on Query { ...R } } fragment R on Query { ${'b '.repeat(11)} }`)).toEqual([
      'the operation selects more than 20 root fields (MAX_ROOT_FIELDS_PER_OPERATION)',
    ]);
    // Fields below the root are not root fields.
    expect(problems(`{ a { ${'b '.repeat(50)} } }`)).toEqual([]);
  });

  it('counts operations per document', () => {
    const ops = (n: number) => Array.from({ length: n }, (_, i) => `query Q${i} { b }`).join(' ');
    expect(problems(ops(MAX_OPERATIONS_PER_DOCUMENT))).toEqual([]);
    expect(problems(ops(MAX_OPERATIONS_PER_DOCUMENT + 1))).toEqual(['the document has more than 20 operations (MAX_OPERATIONS_PER_DOCUMENT)']);
  });

  it('measures the document in UTF-8 bytes, comments included', () => {
    expect(problems(`{ b }\n#${'x'.repeat(MAX_DOCUMENT_BYTES - 10)}`)).toEqual([]);
    expect(problems(`{ b }\n#${'x'.repeat(MAX_DOCUMENT_BYTES)}`)).toEqual(['the document is larger than 65536 bytes (MAX_DOCUMENT_BYTES)']);
    // 22,000 characters, 66,000 bytes.
    expect(problems(`{ b }\n#${'€'.repeat(22_000)}`)).toEqual(['the document is larger than 65536 bytes (MAX_DOCUMENT_BYTES)']);
  });

  it('refuses more than MAX_DOCUMENT_TOKENS tokens while parsing', () => {
    expect(() => parse(`{ ${'b '.repeat(MAX_DOCUMENT_TOKENS - 2)} }`, GRAPHQL_PARSE_OPTIONS)).not.toThrow();
    expect(() => parse(`{ ${'b '.repeat(MAX_DOCUMENT_TOKENS)} }`, GRAPHQL_PARSE_OPTIONS)).toThrow(/more th.. 10000 tokens/);
  });

  it('refuses selections nested past MAX_NESTING_LEVELS, counting fragments, without overflowing the stack', () => {
    const inline = (n: number) => `{ ${'... on Query { '.repeat(n)}b${' }'.repeat(n)} }`;
    expect(problems(inline(MAX_NESTING_LEVELS - 1))).toEqual([]);
    expect(problems(inline(MAX_NESTING_LEVELS))).toEqual(['the operation nests fields and fragments more than 40 levels deep (MAX_NESTING_LEVELS)']);
    const chain = (n: number) => `query C { ...F0 } ${Array.from({ length: n }, (_, i) => `fragment F${i} on Query { ...F${i + 1} }`).join(' ')} fragment F${n} on Query { b }`;
    expect(problems(chain(1000))).toEqual(['operation C nests fields and fragments more than 40 levels deep (MAX_NESTING_LEVELS)']);
  });

  it('measures each fragment once: a doubling chain costs linear time, not 2^n', () => {
    const doubling = `query D { a { ...F0 } } ${Array.from({ length: 35 }, (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`).join(' ')} fragment F35 on Query { x: b }`;
    const started = performance.now();
    expect(problems(doubling)).toEqual(['operation D uses more than 30 aliases, fragments expanded (MAX_ALIASES_PER_OPERATION)']);
    expect(performance.now() - started).toBeLessThan(200);
  });

  it('leaves fragment cycles and unknown fragments to graphql-js, without looping', () => {
    expect(problems('query { ...A } fragment A on Query { ...B } fragment B on Query { ...A b }')).toEqual([]);
    expect(problems('query { ...Nowhere }')).toEqual([]);
  });

  it('as a validation rule, reports its problem next to graphql-js\'s own and hides none of them', () => {
    const schema = buildSchema('type Query { a: Query b: Int }');
    const run = (q: string) => validate(schema, parse(q), [...specifiedRules, ...graphqlLimitRules()]).map((e) => e.message);
    expect(run(`{ ${nested(5)} }`)).toEqual([]);
    expect(run(`{ ${nested(MAX_QUERY_DEPTH + 1)} nope }`)).toEqual(['the operation is more than 20 field levels deep (MAX_QUERY_DEPTH)', 'Cannot query field "nope" on type "Query".']);
    expect(run('{ nope }')).toEqual(['Cannot query field "nope" on type "Query".']);
  });
});
