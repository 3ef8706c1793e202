/**
 * Limits on GraphQL requests, the same on both graphs, checked before anything runs.
 *
 * - While parsing: graphql-js's own token limit (`GRAPHQL_PARSE_OPTIONS`). It is what bounds the
 *   work of parsing and validation: without it, a long chain of fragments (`fragment F1 on Query
 *   { ...F2 }` × 4,000, well within the HTTP body limit) overflows the stack in graphql-js's
 *   NoFragmentCycles rule, which Apollo Server does not catch (HTTP 500). Refused as
 *   `GRAPHQL_PARSE_FAILED`.
 * - While validating (`graphqlLimitRules`): document bytes, operations per document, and per
 *   operation its depth, nesting, aliases and root fields, fragments expanded. Refused as
 *   `GRAPHQL_VALIDATION_FAILED`, Apollo's code for "this document cannot run", with a message
 *   naming the limit.
 * - Once the operation is known (`storableTextPlugin`): the variables it declares (the others are
 *   ignored) nested at most MAX_VARIABLE_DEPTH levels and holding at most MAX_VARIABLE_VALUES
 *   values; strings no store keeps as given (U+0000, unpaired surrogates), in variables or
 *   literals. Refused as `BAD_USER_INPUT`, naming the variable path.
 * - On the federated graph (`plannerRefusalPlugin`): an operation the query planner cannot plan is
 *   the client's fault (400), not the server's.
 *
 * All are HTTP 400 and go through Apollo's normal error path (plugins see them). Apollo's hooks
 * before validation cannot refuse a request cleanly (an error thrown there becomes a 500), hence
 * a validation rule rather than a plugin. Batched HTTP requests (a JSON array of operations) stay
 * off, Apollo Server's default: one request is one operation, so these limits and the HTTP body
 * limit bound every request.
 */
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import {
  BREAK,
  GraphQLError,
  Kind,
  visit,
  type ASTVisitor,
  type DocumentNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type ParseOptions,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { badInput, type GatewayError } from '../errors.js';
import { toRequestError } from './errors.js';

/** Lexical tokens of a document (comments excluded); enforced by graphql-js while parsing. */
export const MAX_DOCUMENT_TOKENS = 10_000;
/** UTF-8 bytes of the document text (the HTTP body limit is larger: it also carries variables). */
export const MAX_DOCUMENT_BYTES = 64 * 1024;
/** Operations in one document: only one runs, all of them cost validation. */
export const MAX_OPERATIONS_PER_DOCUMENT = 20;
/** Field levels of an operation, fragments expanded. The full introspection query needs 15. */
export const MAX_QUERY_DEPTH = 20;
/** Fields, fragment spreads and inline fragments nested along one path of an operation. */
export const MAX_NESTING_LEVELS = 2 * MAX_QUERY_DEPTH;
/** Aliased fields of an operation as executed: a fragment spread twice counts twice. */
export const MAX_ALIASES_PER_OPERATION = 30;
/** Fields selected at the root of an operation (through fragments too), aliases included. */
export const MAX_ROOT_FIELDS_PER_OPERATION = 20;

/** For ApolloServer's `parseOptions`. */
export const GRAPHQL_PARSE_OPTIONS: ParseOptions = Object.freeze({ maxTokens: MAX_DOCUMENT_TOKENS });

/** What a selection set (an operation's, or a fragment's relative to where it is spread) amounts to. */
interface Shape {
  /** Field levels. */
  readonly depth: number;
  /** Fields, fragment spreads and inline fragments on the longest path. */
  readonly nesting: number;
  readonly aliases: number;
  /** Fields selected at this level, through fragments and inline fragments. */
  readonly fields: number;
}

const EMPTY: Shape = Object.freeze({ depth: 0, nesting: 0, aliases: 0, fields: 0 });
/** Fragment expansions grow exponentially; past a limit only "too many" matters. */
const cap = (n: number, limit: number): number => Math.min(n, limit + 1);

class TooDeep extends Error {}

/** Measures each fragment once, so a document costs time linear in its size, however it spreads. */
class ShapeMeter {
  readonly #fragments: ReadonlyMap<string, FragmentDefinitionNode>;
  readonly #memo = new Map<string, Shape>();
  readonly #measuring = new Set<string>();

  constructor(document: DocumentNode) {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const def of document.definitions)
      if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
    this.#fragments = fragments;
  }

  /** `stack`: selections enclosing this set on the path being measured. */
  measure(set: SelectionSetNode, stack: number): Shape {
    // Memoized fragments do not recurse, so this is reached only on a path really this deep.
    if (stack > MAX_NESTING_LEVELS) throw new TooDeep();
    let depth = 0;
    let nesting = 0;
    let aliases = 0;
    let fields = 0;
    for (const selection of set.selections) {
      let inner: Shape;
      if (selection.kind === Kind.FIELD) {
        inner = selection.selectionSet ? this.measure(selection.selectionSet, stack + 1) : EMPTY;
        depth = Math.max(depth, 1 + inner.depth);
        fields++;
        if (selection.alias) aliases++;
      } else {
        inner =
          selection.kind === Kind.INLINE_FRAGMENT
            ? this.measure(selection.selectionSet, stack + 1)
            : this.#fragment(selection.name.value, stack + 1);
        depth = Math.max(depth, inner.depth);
        fields += inner.fields;
      }
      nesting = Math.max(nesting, 1 + inner.nesting);
      aliases += inner.aliases;
    }
    return {
      depth: cap(depth, MAX_QUERY_DEPTH),
      nesting: cap(nesting, MAX_NESTING_LEVELS),
      aliases: cap(aliases, MAX_ALIASES_PER_OPERATION),
      fields: cap(fields, MAX_ROOT_FIELDS_PER_OPERATION),
    };
  }

  #fragment(name: string, stack: number): Shape {
    const known = this.#memo.get(name);
    if (known) return known;
    const fragment = this.#fragments.get(name);
    // Unknown fragments and cycles are for graphql's own rules to report.
    if (!fragment || this.#measuring.has(name)) return EMPTY;
    this.#measuring.add(name);
    const shape = this.measure(fragment.selectionSet, stack);
    this.#measuring.delete(name);
    this.#memo.set(name, shape);
    return shape;
  }
}

function operationProblem(meter: ShapeMeter, operation: OperationDefinitionNode): string | null {
  const name = operation.name ? `operation ${operation.name.value}` : 'the operation';
  let shape: Shape;
  try {
    shape = meter.measure(operation.selectionSet, 0);
  } catch (e) {
    if (!(e instanceof TooDeep)) throw e;
    shape = { ...EMPTY, nesting: MAX_NESTING_LEVELS + 1 };
  }
  if (shape.nesting > MAX_NESTING_LEVELS)
    return `${name} nests fields and fragments more than ${MAX_NESTING_LEVELS} levels deep (MAX_NESTING_LEVELS)`;
  if (shape.depth > MAX_QUERY_DEPTH)
    return `${name} is more than ${MAX_QUERY_DEPTH} field levels deep (MAX_QUERY_DEPTH)`;
  if (shape.fields > MAX_ROOT_FIELDS_PER_OPERATION)
    return `${name} selects more than ${MAX_ROOT_FIELDS_PER_OPERATION} root fields (MAX_ROOT_FIELDS_PER_OPERATION)`;
  if (shape.aliases > MAX_ALIASES_PER_OPERATION)
    return `${name} uses more than ${MAX_ALIASES_PER_OPERATION} aliases, fragments expanded (MAX_ALIASES_PER_OPERATION)`;
  return null;
}

/** Every limit a parsed document exceeds, as public messages; empty when it is within all of them. */
export function documentLimitProblems(document: DocumentNode): string[] {
  const source = document.loc?.source.body;
  // A UTF-16 code unit is at most 3 UTF-8 bytes: most documents skip the exact count.
  if (
    source !== undefined &&
    source.length * 3 > MAX_DOCUMENT_BYTES &&
    Buffer.byteLength(source, 'utf8') > MAX_DOCUMENT_BYTES
  )
    return [`the document is larger than ${MAX_DOCUMENT_BYTES} bytes (MAX_DOCUMENT_BYTES)`];
  const operations = document.definitions.filter(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
  );
  if (operations.length > MAX_OPERATIONS_PER_DOCUMENT)
    return [`the document has more than ${MAX_OPERATIONS_PER_DOCUMENT} operations (MAX_OPERATIONS_PER_DOCUMENT)`];
  const meter = new ShapeMeter(document);
  return operations.map((operation) => operationProblem(meter, operation)).filter((p): p is string => p !== null);
}

/** The document-wide checks run once, on entering the document; then this rule is done. */
function DocumentLimitsRule(context: ValidationContext): ASTVisitor {
  return {
    Document(node) {
      for (const problem of documentLimitProblems(node)) context.reportError(new GraphQLError(problem));
      // `false` skips the document for this rule alone. Not BREAK: with two copies of graphql-js
      // loaded (vitest), another copy's BREAK is an edit that empties the document for every rule.
      return false;
    },
  };
}

/** For ApolloServer's `validationRules` (a fresh array: Apollo's option type is mutable). */
export function graphqlLimitRules(): ValidationRule[] {
  return [DocumentLimitsRule];
}

/**
 * U+0000 (PostgreSQL text cannot hold it: the store fails) and unpaired surrogates (UTF-8 cannot
 * carry them: SQLite keeps three U+FFFD instead). Refused in every string a request brings.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: U+0000 is what this rule looks for.
const UNSTORABLE_TEXT = /\u0000|\p{Cs}/u;
const UNSTORABLE_MESSAGE = 'contains U+0000 or an unpaired surrogate, which no text field accepts';

/** Levels of lists and input objects in one variable's value (a list of strings is one). */
export const MAX_VARIABLE_DEPTH = 32;
/** Values in the declared variables of one request: scalars, lists, objects and object members. */
export const MAX_VARIABLE_VALUES = 10_000;

/** A value met on the walk; its path is spelled out only for an error message. */
interface Visit {
  readonly value: unknown;
  /** Lists and objects enclosing it within its variable. */
  readonly depth: number;
  readonly parent: Visit | null;
  /** `$name` for a variable, an index in a list, a key in an object. */
  readonly key: string | number;
}

function pathOf(visit: Visit): string {
  let path = '';
  for (let v: Visit | null = visit; v !== null; v = v.parent)
    path = typeof v.key === 'number' ? `[${v.key}]${path}` : v.parent ? `.${v.key}${path}` : `${v.key}${path}`;
  return path;
}

function variableOf(visit: Visit): string {
  let v = visit;
  while (v.parent !== null) v = v.parent;
  return String(v.key);
}

/**
 * Why the declared variables of a request cannot be taken, or null: nested deeper than
 * MAX_VARIABLE_DEPTH, more than MAX_VARIABLE_VALUES values, or a string (or key) no store keeps as
 * given. Variables the operation does not declare are not looked at: execution ignores them too,
 * and they may be anything up to the body limit. Walked without recursion, counting as it goes:
 * a hostile value costs at most MAX_VARIABLE_VALUES steps.
 */
export function variablesProblem(
  variables: Readonly<Record<string, unknown>>,
  declared: readonly string[],
): GatewayError | null {
  const pending: Visit[] = [];
  for (const name of declared)
    if (Object.hasOwn(variables, name))
      pending.push({ value: variables[name], depth: 0, parent: null, key: `$${name}` });
  let values = pending.length;
  const tooMany = (at: Visit) =>
    badInput(
      variableOf(at),
      `holds more than ${MAX_VARIABLE_VALUES} values, counting every list item and object member (MAX_VARIABLE_VALUES)`,
    );
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { value, depth } = next;
    if (typeof value === 'string') {
      if (UNSTORABLE_TEXT.test(value)) return badInput(pathOf(next), UNSTORABLE_MESSAGE);
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_VARIABLE_DEPTH)
      return badInput(
        variableOf(next),
        `nests lists and input objects more than ${MAX_VARIABLE_DEPTH} levels deep (MAX_VARIABLE_DEPTH)`,
      );
    if (Array.isArray(value)) {
      values += value.length;
      if (values > MAX_VARIABLE_VALUES) return tooMany(next);
      for (let i = 0; i < value.length; i++) pending.push({ value: value[i], depth: depth + 1, parent: next, key: i });
      continue;
    }
    for (const key in value) {
      if (++values > MAX_VARIABLE_VALUES) return tooMany(next);
      if (UNSTORABLE_TEXT.test(key)) return badInput(pathOf(next), UNSTORABLE_MESSAGE);
      pending.push({ value: (value as Record<string, unknown>)[key], depth: depth + 1, parent: next, key });
    }
  }
  return null;
}

function hasUnstorableLiteral(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    StringValue(node) {
      if (!UNSTORABLE_TEXT.test(node.value)) return undefined;
      found = true;
      return BREAK;
    },
  });
  return found;
}

/** The names of the variables an operation declares. */
export function declaredVariables(operation: OperationDefinitionNode | undefined): string[] {
  return operation?.variableDefinitions?.map((d) => d.variable.name.value) ?? [];
}

/**
 * Refuses (400 BAD_USER_INPUT) variables over their limits, and strings no store can keep as given, in variables or in the
 * document. Runs once the operation is known, where Apollo turns a thrown error into a response.
 */
export function storableTextPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  // Apollo hands back the same parsed document for a repeated query: check each document once.
  const literalVerdicts = new WeakMap<DocumentNode, boolean>();
  const unstorableLiteral = (document: DocumentNode): boolean => {
    let verdict = literalVerdicts.get(document);
    if (verdict === undefined) {
      verdict = hasUnstorableLiteral(document);
      literalVerdicts.set(document, verdict);
    }
    return verdict;
  };
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request, document, operation }) {
          const problem = request.variables ? variablesProblem(request.variables, declaredVariables(operation)) : null;
          if (problem !== null) throw toRequestError(problem);
          if (unstorableLiteral(document))
            throw toRequestError(badInput('a string in the document', UNSTORABLE_MESSAGE));
        },
      };
    },
  };
}

/** What the federation query planner calls an operation it cannot plan. */
const PLANNER_REFUSAL_CODE = 'INVALID_GRAPHQL';

/**
 * The federated graph checks an operation twice: graphql-js against the API schema, then the
 * query planner against its own copy of it, which lags behind graphql-js (it has no
 * `__Type.isOneOf`, so `getIntrospectionQuery({ oneOf: true })` fails there). Apollo reports the
 * planner's refusal as a failed execution, HTTP 500, though the document is at fault: a 400.
 */
export function plannerRefusalPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response, errors }) {
          if (
            response.http.status === 500 &&
            errors?.length &&
            errors.every((e) => e.extensions['code'] === PLANNER_REFUSAL_CODE)
          )
            response.http.status = 400;
        },
      };
    },
  };
}
