/**
 * `supergraph.yaml` (docs/design.md "The runtime step"): Rover's subgraph list plus our per-subgraph
 * `authorization` binding. Parsed once into a frozen value; every problem is reported with its
 * key path, all at once, as a ConfigError.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseConfigText } from '../config/load.js';
import { ConfigError } from '../config/schema.js';
import { isRecord } from '../values.js';
import { GatewayError, isGatewayError } from '../errors.js';
import { validateId } from '../domain/ids.js';

/** `{jwt.<claim>}` is a claim of the caller's token; `{issuer}` the configured name of its issuer. */
export type TemplatePart = { readonly literal: string } | { readonly claim: string } | { readonly issuer: true };

export type ConnectionTemplate =
  | { readonly kind: 'fixed'; readonly id: string }
  | { readonly kind: 'claims'; readonly template: string; readonly parts: readonly TemplatePart[] };

interface BindingBase {
  readonly providerId: string;
  /** true: when no token can be had, call the subgraph without one instead of failing its fields. */
  readonly ignoreError: boolean;
  /** Request header carrying `Bearer <access token>`. */
  readonly header: string;
}

/** A connection's token: the caller's own or a shared one, under the connection's access policies. */
export interface ConnectionBinding extends BindingBase {
  readonly connection: ConnectionTemplate;
  /** jwt: access checked for the caller's verified JWT; managed: for the gateway's own identity. */
  readonly identity: 'jwt' | 'managed';
}

/**
 * RFC 8693 token exchange: the caller's verified JWT is exchanged at the provider's token endpoint
 * for a token of the subgraph's own `audience`; no connection, the authorization server decides.
 */
export interface ExchangeBinding extends BindingBase {
  readonly identity: 'exchange';
  readonly audience: string;
  /** Space-separated scopes to ask for; null asks for none. */
  readonly scope: string | null;
}

export type SubgraphBinding = ConnectionBinding | ExchangeBinding;

export interface SubgraphConfig {
  readonly name: string;
  readonly routingUrl: string;
  /** Absolute path of the subgraph's SDL. */
  readonly schemaFile: string;
  readonly sdl: string;
  /** null: the subgraph is called without a token. */
  readonly authorization: SubgraphBinding | null;
}

export interface SupergraphConfig {
  /** Absolute path of the yaml file. */
  readonly file: string;
  /** As written (`=2.9.0`, `2`); informational, for Rover. */
  readonly federationVersion: string | null;
  readonly subgraphs: readonly SubgraphConfig[];
}

export const DEFAULT_AUTHORIZATION_HEADER = 'Authorization';

const TOP_KEYS = ['federation_version', 'subgraphs'];
const SUBGRAPH_KEYS = ['routing_url', 'schema', 'authorization'];
const AUTHORIZATION_KEYS = [
  'provider',
  'connection',
  'identity',
  'ignore_error',
  'header',
  'allow_mutable_claims',
  'audience',
  'scope',
];
const MAX_EXCHANGE_PARAMETER_CHARS = 1024;
// A scope list or an audience: printable, no control characters (they go into a form body as they are).
const EXCHANGE_AUDIENCE = /^[\x21-\x7e]+$/;
const EXCHANGE_SCOPE = /^[\x21-\x7e]+( [\x21-\x7e]+)*$/;
/**
 * Claims a user (or a directory admin) can change, or reuse after someone else gave them up: a
 * connection named after one would pass to whoever holds the value next.
 */
export const MUTABLE_CLAIMS: readonly string[] = Object.freeze([
  'email',
  'preferred_username',
  'upn',
  'unique_name',
  'name',
  'given_name',
  'family_name',
  'middle_name',
  'nickname',
  'phone_number',
]);
/** Rover's other schema sources need Apollo's registry or a running subgraph; we compose from files. */
const ROVER_SCHEMA_SOURCES = ['subgraph_url', 'introspection_headers', 'graphref', 'subgraph', 'sdl'];
/** Names become enum values of the supergraph (`join__Graph`). */
const SUBGRAPH_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CLAIM_PLACEHOLDER = /^jwt\.([A-Za-z0-9_]+)$/;
const ISSUER_PLACEHOLDER = 'issuer';
const FEDERATION_VERSION = /^=?2(\.\d+){0,2}$/;

function unknownKeys(value: Record<string, unknown>, known: readonly string[], path: string, problems: string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) problems.push(`${path ? `${path}.` : ''}${key} is not a known key`);
  }
}

/** The message of validateId, which already names the path. */
function idProblem(value: unknown, path: string): string | null {
  try {
    validateId(value, path);
    return null;
  } catch (e) {
    if (isGatewayError(e)) return e.message;
    throw e;
  }
}

/**
 * `github-01` is a fixed connection; `{jwt.sub}`, `user-{jwt.oid}` are templates over the caller's
 * claims. Returns the template or a problem naming `path`.
 */
export function parseConnectionTemplate(text: string, path: string): ConnectionTemplate | string {
  const parts: TemplatePart[] = [];
  let literal = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '}') return `${path} has an unbalanced }`;
    if (ch !== '{') {
      literal += ch;
      continue;
    }
    const end = text.indexOf('}', i + 1);
    const open = text.indexOf('{', i + 1);
    if (end < 0 || (open >= 0 && open < end)) return `${path} has an unbalanced {`;
    const inner = text.slice(i + 1, end);
    const claim = CLAIM_PLACEHOLDER.exec(inner)?.[1];
    if (claim === undefined && inner !== ISSUER_PLACEHOLDER)
      return `${path} has an unknown placeholder {${inner}}: expected {jwt.<claim>} or {issuer}`;
    if (literal) parts.push(Object.freeze({ literal }));
    literal = '';
    parts.push(Object.freeze(claim === undefined ? { issuer: true as const } : { claim }));
    i = end;
  }
  if (literal) parts.push(Object.freeze({ literal }));
  if (parts.every((p) => 'literal' in p)) return idProblem(text, path) ?? Object.freeze({ kind: 'fixed', id: text });
  // The literals alone must not make every rendered id invalid (`users/{jwt.sub}`).
  const sample = parts.map((p) => ('literal' in p ? p.literal : 'x')).join('');
  if (idProblem(sample, path) !== null)
    return `${path} would render invalid connection ids: ids have no * # & + : < > ? / or whitespace`;
  return Object.freeze({ kind: 'claims', template: text, parts: Object.freeze(parts) });
}

/** Whether the template names the caller's issuer (`{issuer}`). */
export function usesIssuer(template: ConnectionTemplate): boolean {
  return template.kind === 'claims' && template.parts.some((p) => 'issuer' in p);
}

/**
 * The connection id for a caller's claims and issuer name; null when a claim is missing or is not
 * a string or a number, or the template needs an issuer and has none. A result that breaks the id
 * rule (too long, a forbidden character, an unpaired surrogate) is refused as ACCESS_DENIED, before
 * anything looks it up or stores it: a caller must not steer the id outside its own, nor create a
 * connection no one could address again.
 */
export function renderConnectionId(
  template: ConnectionTemplate,
  claims: Readonly<Record<string, unknown>>,
  issuerName: string | null = null,
): string | null {
  if (template.kind === 'fixed') return template.id;
  let id = '';
  for (const part of template.parts) {
    if ('literal' in part) {
      id += part.literal;
      continue;
    }
    if ('issuer' in part) {
      if (issuerName === null || issuerName === '') return null;
      id += issuerName;
      continue;
    }
    const value = Object.hasOwn(claims, part.claim) ? claims[part.claim] : undefined;
    if (typeof value === 'number' && Number.isFinite(value)) id += String(value);
    else if (typeof value === 'string' && value !== '') id += value;
    else return null;
  }
  const problem = idProblem(id, "the connection id rendered from the caller's claims");
  if (problem !== null) throw new GatewayError('ACCESS_DENIED', problem);
  return id;
}

function mutableClaimProblem(template: ConnectionTemplate, path: string): string | null {
  if (template.kind !== 'claims') return null;
  const mutable = template.parts.flatMap((p) => ('claim' in p && MUTABLE_CLAIMS.includes(p.claim) ? [p.claim] : []));
  if (mutable.length === 0) return null;
  return (
    `${path} uses ${mutable.map((c) => `{jwt.${c}}`).join(', ')}, a claim its holder can change or reuse: the connection would pass to the next holder; ` +
    'name connections after an immutable claim such as {jwt.sub} or {jwt.oid}, or set allow_mutable_claims: true'
  );
}

/** `audience` (required) and `scope` of an exchange binding; it names no connection: the caller is the subject. */
function parseExchange(
  raw: Record<string, unknown>,
  path: string,
  problems: string[],
): Pick<ExchangeBinding, 'audience' | 'scope'> | null {
  const before = problems.length;
  if (raw['connection'] !== undefined)
    problems.push(
      `${path}.connection is not used with identity exchange (the caller's JWT is exchanged, no connection is involved)`,
    );
  if (raw['allow_mutable_claims'] !== undefined)
    problems.push(`${path}.allow_mutable_claims is not used with identity exchange`);
  const audience = raw['audience'];
  if (
    typeof audience !== 'string' ||
    audience.length > MAX_EXCHANGE_PARAMETER_CHARS ||
    !EXCHANGE_AUDIENCE.test(audience)
  )
    problems.push(
      `${path}.audience must be the subgraph's audience (identity exchange asks for a token for it): printable characters, no spaces`,
    );
  const scope = raw['scope'] ?? null;
  if (
    scope !== null &&
    (typeof scope !== 'string' || scope.length > MAX_EXCHANGE_PARAMETER_CHARS || !EXCHANGE_SCOPE.test(scope))
  )
    problems.push(`${path}.scope must be space-separated scopes`);
  if (problems.length > before) return null;
  return { audience: audience as string, scope: scope as string | null };
}

function parseBinding(raw: unknown, path: string, problems: string[]): SubgraphBinding | null {
  if (raw === undefined || raw === null) return null;
  if (!isRecord(raw)) {
    problems.push(`${path} must be a mapping`);
    return null;
  }
  const before = problems.length;
  unknownKeys(raw, AUTHORIZATION_KEYS, path, problems);

  const providerProblem = idProblem(raw['provider'], `${path}.provider`);
  if (providerProblem !== null) problems.push(providerProblem);

  const identity = raw['identity'] ?? 'jwt';
  if (identity !== 'jwt' && identity !== 'managed' && identity !== 'exchange')
    problems.push(`${path}.identity must be jwt, managed or exchange`);
  const ignoreError = raw['ignore_error'] ?? false;
  if (typeof ignoreError !== 'boolean') problems.push(`${path}.ignore_error must be true or false`);
  const header = raw['header'] ?? DEFAULT_AUTHORIZATION_HEADER;
  if (typeof header !== 'string' || !HTTP_TOKEN.test(header))
    problems.push(`${path}.header must be an HTTP header name`);
  if (identity === 'exchange') {
    const exchange = parseExchange(raw, path, problems);
    if (problems.length > before || exchange === null) return null;
    return Object.freeze({
      providerId: raw['provider'] as string,
      identity,
      ...exchange,
      ignoreError: ignoreError as boolean,
      header: header as string,
    });
  }
  for (const key of ['audience', 'scope'])
    if (raw[key] !== undefined) problems.push(`${path}.${key} is only used with identity exchange`);

  let connection: ConnectionTemplate | null = null;
  const rawConnection = raw['connection'];
  if (typeof rawConnection !== 'string' || rawConnection === '') {
    problems.push(`${path}.connection must be a connection id or a template such as "{jwt.sub}"`);
  } else {
    const parsed = parseConnectionTemplate(rawConnection, `${path}.connection`);
    if (typeof parsed === 'string') problems.push(parsed);
    else connection = parsed;
  }
  if (identity === 'managed' && connection?.kind === 'claims') {
    problems.push(
      `${path}.connection must be a fixed connection id with identity managed (there are no caller claims)`,
    );
  }
  const allowMutableClaims = raw['allow_mutable_claims'] ?? false;
  if (typeof allowMutableClaims !== 'boolean') problems.push(`${path}.allow_mutable_claims must be true or false`);
  else if (!allowMutableClaims && connection !== null) {
    const problem = mutableClaimProblem(connection, `${path}.connection`);
    if (problem !== null) problems.push(problem);
  }

  if (problems.length > before || connection === null) return null;
  return Object.freeze({
    providerId: raw['provider'] as string,
    connection,
    identity: identity as 'jwt' | 'managed',
    ignoreError: ignoreError as boolean,
    header: header as string,
  });
}

function parseRoutingUrl(raw: unknown, path: string, problems: string[]): string | null {
  let url: URL | null = null;
  try {
    if (typeof raw === 'string') url = new URL(raw);
  } catch {
    url = null;
  }
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    problems.push(`${path} must be an http(s) URL`);
    return null;
  }
  return raw as string;
}

function parseSchema(
  raw: unknown,
  path: string,
  base: string,
  problems: string[],
): { schemaFile: string; sdl: string } | null {
  if (!isRecord(raw)) {
    problems.push(`${path}.file must name the subgraph's SDL file`);
    return null;
  }
  for (const key of Object.keys(raw)) {
    if (ROVER_SCHEMA_SOURCES.includes(key))
      problems.push(`${path}.${key} is not supported: the gateway composes from ${path}.file`);
    else if (key !== 'file') problems.push(`${path}.${key} is not a known key`);
  }
  const file = raw['file'];
  if (typeof file !== 'string' || file === '') {
    if (!Object.keys(raw).some((k) => ROVER_SCHEMA_SOURCES.includes(k)))
      problems.push(`${path}.file must name the subgraph's SDL file`);
    return null;
  }
  const schemaFile = resolve(base, file);
  try {
    return { schemaFile, sdl: readFileSync(schemaFile, 'utf8') };
  } catch (e) {
    problems.push(`${path}.file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    return null;
  }
}

function parseSubgraph(name: string, raw: unknown, base: string, problems: string[]): SubgraphConfig | null {
  const path = `subgraphs.${name}`;
  if (!SUBGRAPH_NAME.test(name)) {
    problems.push(`${path} must be named with letters, digits, _ and -, starting with a letter or _`);
    return null;
  }
  if (!isRecord(raw)) {
    problems.push(`${path} must be a mapping with routing_url and schema`);
    return null;
  }
  const before = problems.length;
  unknownKeys(raw, SUBGRAPH_KEYS, path, problems);
  const routingUrl = parseRoutingUrl(raw['routing_url'], `${path}.routing_url`, problems);
  const schema = parseSchema(raw['schema'], `${path}.schema`, base, problems);
  const authorization = parseBinding(raw['authorization'], `${path}.authorization`, problems);
  if (problems.length > before || routingUrl === null || schema === null) return null;
  return Object.freeze({ name, routingUrl, ...schema, authorization });
}

function parseFederationVersion(raw: unknown, problems: string[]): string | null {
  if (raw === undefined || raw === null) return null;
  const text = typeof raw === 'number' ? String(raw) : raw;
  if (typeof text !== 'string' || !FEDERATION_VERSION.test(text)) {
    problems.push('federation_version must be a Federation 2 version such as 2 or =2.9.0');
    return null;
  }
  return text;
}

/**
 * Parses and validates supergraph.yaml text; `file` names it in messages and anchors relative
 * schema paths. Reads each schema file. Throws ConfigError listing every problem.
 */
export function parseSupergraphConfig(text: string, file: string): SupergraphConfig {
  const absolute = resolve(file);
  const raw = parseConfigText(text, absolute);
  const problems: string[] = [];
  const subgraphs: SubgraphConfig[] = [];
  let federationVersion: string | null = null;
  if (!isRecord(raw)) {
    problems.push('the file must be a mapping with subgraphs');
  } else {
    unknownKeys(raw, TOP_KEYS, '', problems);
    federationVersion = parseFederationVersion(raw['federation_version'], problems);
    const list = raw['subgraphs'];
    if (!isRecord(list) || Object.keys(list).length === 0) {
      problems.push('subgraphs must map at least one subgraph name to its routing_url and schema');
    } else {
      for (const [name, value] of Object.entries(list)) {
        const subgraph = parseSubgraph(name, value, dirname(absolute), problems);
        if (subgraph !== null) subgraphs.push(subgraph);
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `${absolute}: ${p}`));
  return Object.freeze({ file: absolute, federationVersion, subgraphs: Object.freeze(subgraphs) });
}

export async function loadSupergraphConfig(file: string): Promise<SupergraphConfig> {
  const absolute = resolve(file);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (e) {
    throw new ConfigError([`cannot read supergraph file ${absolute}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`]);
  }
  return parseSupergraphConfig(text, absolute);
}

/**
 * Subgraphs whose connection ids are rendered from claims without `{issuer}`: with more than one
 * trusted issuer, two users with the same `sub` render the same id. Never a leak (the connection's
 * owner policy names its issuer), but the second user is refused the connection named after them.
 */
export function issuerlessTemplates(
  config: SupergraphConfig,
): readonly { readonly subgraph: string; readonly connection: string }[] {
  return config.subgraphs.flatMap(({ name, authorization: b }) =>
    b?.identity === 'jwt' && b.connection.kind === 'claims' && !usesIssuer(b.connection)
      ? [{ subgraph: name, connection: b.connection.template }]
      : [],
  );
}

/** The subgraph of that name, if the supergraph has one. */
export function findSubgraph(config: SupergraphConfig, name: string): SubgraphConfig | undefined {
  return config.subgraphs.find((s) => s.name === name);
}
