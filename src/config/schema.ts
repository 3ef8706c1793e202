/**
 * The configuration contract (docs/configuration.md): one typed, frozen value, validated once
 * at start with messages that name the key path. Every key has a default, so no file is needed.
 */
import { deepFreeze, isRecord, webUrl } from '../values.js';
import { isForbiddenJwsAlgorithm } from '../identity/algorithms.js';
import { parseKeyEntry } from '../crypto/keySpec.js';
import { STORE_URL_RULE, storeDialectOf } from '../store/url.js';

export interface IssuerConfig {
  /**
   * Short name (`[a-z0-9-]`) for `{issuer}` in connection templates. validateConfig always sets
   * it (default: derived from the issuer URL, see issuerNameOf); absent only in hand-built configs.
   */
  readonly name?: string;
  readonly issuer: string;
  readonly audience: string;
  readonly jwksUri: string | null;
  readonly algorithms: readonly string[];
}

export interface Config {
  readonly server: {
    readonly host: string;
    readonly port: number;
    /** Base of every URL the gateway hands out (callback, login links); null: `http://host:port` once listening. */
    readonly publicUrl: string | null;
    /** Introspection and the Sandbox landing page on both graphs. */
    readonly exploration: boolean;
    /** Origins (or `*`) whose scripts may call /graphql, /tokens/... and /oauth/confirm; null: see corsOriginsOf. */
    readonly cors: { readonly origins: readonly string[] | null };
    /** On SIGTERM, how long in-flight requests may take before their connections are closed. */
    readonly drainTimeoutSeconds: number;
    /** Repeated operations run their stored plan without Apollo Server's request pipeline (docs/prepared-pipeline.md). */
    readonly preparedPipeline: boolean;
  };
  readonly supergraph: string | null;
  readonly store: { readonly url: string };
  readonly keys: { readonly keyringFile: string; readonly key: string | null };
  readonly identity: {
    readonly issuers: readonly IssuerConfig[];
    readonly managedObjectId: string;
    readonly clockToleranceSeconds: number;
  };
  readonly admin: { readonly apiKeys: readonly string[]; readonly roleClaim: string; readonly role: string };
  readonly consent: { readonly allowedRedirectOrigins: readonly string[]; readonly stateTtlSeconds: number };
  readonly cache: {
    readonly enabled: boolean;
    readonly refreshSkewSeconds: number;
    readonly maxEntries: number;
    /** Renew tokens in use in the background before they enter the refresh window. */
    readonly proactiveRefresh: boolean;
  };
  readonly limits: {
    readonly providersPerInstance: number;
    readonly connectionsPerProvider: number;
    /** Connections created on first use and still unconsented are deleted after this long. */
    readonly unconsentedConnectionTtlSeconds: number;
    readonly accessPoliciesPerConnection: number;
    readonly tokenAcquisitionsPerMinute: number;
  };
  readonly oauth: {
    readonly allowInsecureHttp: boolean;
    readonly allowPrivateNetworks: boolean;
    readonly timeoutMs: number;
  };
  /** Lifecycle webhooks' delivery (URLs follow `oauth.allowInsecureHttp` and `oauth.allowPrivateNetworks`). */
  readonly webhooks: {
    readonly timeoutMs: number;
    readonly maxAttempts: number;
    readonly retryBaseMs: number;
    readonly pollIntervalMs: number;
  };
  /** The admin console at `/console`. */
  readonly console: { readonly enabled: boolean };
  readonly log: { readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
}

type Kind =
  | 'string'
  | 'nullableString'
  | 'int'
  | 'bool'
  | 'stringList'
  | 'corsOrigins'
  | 'issuers'
  | 'url'
  | 'logLevel';

interface KeySpec {
  readonly path: string;
  readonly kind: Kind;
  readonly default: unknown;
  readonly doc: string;
  readonly min?: number;
  readonly max?: number;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Every key, its default and its meaning; test/readme.test.ts checks that docs/configuration.md lists each. */
export const CONFIG_KEYS: readonly KeySpec[] = Object.freeze([
  { path: 'server.host', kind: 'string', default: '127.0.0.1', doc: 'Interface the HTTP server listens on.' },
  { path: 'server.port', kind: 'int', default: 4000, min: 0, max: 65535, doc: 'TCP port (0 picks a free one).' },
  {
    path: 'server.publicUrl',
    kind: 'nullableString',
    default: null,
    doc: 'Base URL users reach the gateway at; the OAuth callback is `<publicUrl>/oauth/callback`. Default `http://<host>:<port>`.',
  },
  {
    path: 'server.exploration',
    kind: 'bool',
    default: true,
    doc: 'Introspection and the Apollo Sandbox landing page on both graphs; turn off in production.',
  },
  {
    path: 'server.cors.origins',
    kind: 'corsOrigins',
    default: null,
    doc: 'Exact origins (or `"*"`) whose browser scripts may call `/graphql`, `/tokens/...` and `/oauth/confirm` (CORS); other origins get no CORS headers. Default: Apollo Studio (`https://studio.apollographql.com`) when `server.exploration` is on, else none.',
  },
  {
    path: 'server.preparedPipeline',
    kind: 'bool',
    default: true,
    doc: "Run a repeated operation's stored plan without Apollo Server's request pipeline (docs/prepared-pipeline.md); off: every operation takes the full pipeline.",
  },
  {
    path: 'server.drainTimeoutSeconds',
    kind: 'int',
    default: 20,
    min: 0,
    max: 3600,
    doc: "On SIGTERM: stop accepting connections, let in-flight requests finish for at most this long, then close. Keep it below the orchestrator's grace period (Kubernetes: 30 s).",
  },
  {
    path: 'supergraph',
    kind: 'nullableString',
    default: null,
    doc: 'Path to `supergraph.yaml`; none means the management API only.',
  },
  {
    path: 'store.url',
    kind: 'string',
    default: 'sqlite:./data/credentials.db',
    doc: '`sqlite:<file>` or `postgres://…`.',
  },
  {
    path: 'keys.keyringFile',
    kind: 'string',
    default: './data/keyring.json',
    doc: 'Keyring file, created with mode 0600 on first start (used when `keys.key` is unset).',
  },
  {
    path: 'keys.key',
    kind: 'nullableString',
    default: null,
    doc: 'Key-encryption keys from the environment instead of a file: `kid:base64key[,kid:base64key…]`, the first is primary.',
  },
  {
    path: 'identity.issuers',
    kind: 'issuers',
    default: [],
    doc:
      'Trusted JWT issuers: list of `{issuer, audience, jwksUri?, algorithms?, name?}`. `name` (`[a-z0-9-]`, at most 64) is what `{issuer}` renders to in connection templates; ' +
      "default: the issuer URL's host and path in lower case, every other run of characters as `-` (`https://login.example.com/t1` → `login-example-com-t1`).",
  },
  {
    path: 'identity.managedObjectId',
    kind: 'string',
    default: 'credential-gateway',
    doc: "The gateway's own principal (MANAGED_IDENTITY policies).",
  },
  {
    path: 'identity.clockToleranceSeconds',
    kind: 'int',
    default: 30,
    min: 0,
    max: 300,
    doc: 'Clock skew allowed when checking `exp`/`nbf`.',
  },
  {
    path: 'admin.apiKeys',
    kind: 'stringList',
    default: [],
    doc: 'Admin API keys (header `x-api-key`). None: one is generated on first start and printed once.',
  },
  { path: 'admin.roleClaim', kind: 'string', default: 'roles', doc: 'JWT claim holding roles (string or array).' },
  { path: 'admin.role', kind: 'string', default: 'credential-admin', doc: 'Role that grants the management API.' },
  {
    path: 'consent.allowedRedirectOrigins',
    kind: 'stringList',
    default: [],
    doc: "Exact origins allowed as post-login redirect URLs. Default: the gateway's own origin.",
  },
  {
    path: 'consent.stateTtlSeconds',
    kind: 'int',
    default: 600,
    min: 30,
    max: 3600,
    doc: 'Lifetime of a login link and its `state`.',
  },
  { path: 'cache.enabled', kind: 'bool', default: true, doc: 'In-memory cache of decrypted access tokens.' },
  {
    path: 'cache.refreshSkewSeconds',
    kind: 'int',
    default: 180,
    min: 0,
    max: 3600,
    doc: 'Tokens are cached and used until this long before expiry, then refreshed.',
  },
  {
    path: 'cache.maxEntries',
    kind: 'int',
    default: 100_000,
    min: 1,
    max: 10_000_000,
    doc: 'Most tokens held in memory.',
  },
  {
    path: 'cache.proactiveRefresh',
    kind: 'bool',
    default: true,
    doc: 'Renew tokens in use in the background shortly before they enter the refresh window (with jitter), so requests do not wait on identity providers; connections idle for two token lifetimes are left alone.',
  },
  {
    path: 'limits.providersPerInstance',
    kind: 'int',
    default: 1000,
    min: 1,
    max: 1_000_000,
    doc: 'Credential providers per instance.',
  },
  {
    path: 'limits.connectionsPerProvider',
    kind: 'int',
    default: 10_000,
    min: 1,
    max: 10_000_000,
    doc: 'Connections per provider.',
  },
  {
    path: 'limits.unconsentedConnectionTtlSeconds',
    kind: 'int',
    default: 86_400,
    min: 3600,
    max: 31_536_000,
    doc: 'Connections the gateway created for a user on first use that are still `NOT_CONNECTED` after this long are deleted (so self-registered callers cannot fill `connectionsPerProvider`); connections an admin created are kept.',
  },
  {
    path: 'limits.accessPoliciesPerConnection',
    kind: 'int',
    default: 100,
    min: 1,
    max: 100_000,
    doc: 'Access policies per connection.',
  },
  {
    path: 'limits.tokenAcquisitionsPerMinute',
    kind: 'int',
    default: 250,
    min: 1,
    max: 1_000_000,
    doc: 'Token acquisitions per connection per minute that reach the store or the provider (cache hits are free).',
  },
  {
    path: 'oauth.allowInsecureHttp',
    kind: 'bool',
    default: false,
    doc: 'Allow `http:` identity provider URLs (local development and tests only).',
  },
  {
    path: 'oauth.allowPrivateNetworks',
    kind: 'bool',
    default: false,
    doc: 'Allow identity provider endpoints on loopback, private and link-local addresses (local development and tests only); checked when connecting.',
  },
  {
    path: 'oauth.timeoutMs',
    kind: 'int',
    default: 10_000,
    min: 100,
    max: 120_000,
    doc: 'Timeout of every call to an identity provider.',
  },
  {
    path: 'webhooks.timeoutMs',
    kind: 'int',
    default: 10_000,
    min: 100,
    max: 120_000,
    doc: 'Timeout of one webhook delivery attempt; anything but a 2xx answer within it is retried.',
  },
  {
    path: 'webhooks.maxAttempts',
    kind: 'int',
    default: 12,
    min: 1,
    max: 100,
    doc: 'Delivery attempts per event before it is dead-lettered (status `DEAD` in `webhooks { deliveries }`).',
  },
  {
    path: 'webhooks.retryBaseMs',
    kind: 'int',
    default: 2_000,
    min: 10,
    max: 3_600_000,
    doc: 'Wait before the first retry; each further one waits twice as long (at most an hour), with jitter.',
  },
  {
    path: 'webhooks.pollIntervalMs',
    kind: 'int',
    default: 1_000,
    min: 10,
    max: 60_000,
    doc: 'How often each replica looks for due webhook deliveries (besides right after a change it hears of).',
  },
  {
    path: 'console.enabled',
    kind: 'bool',
    default: true,
    doc: 'Serve the admin console at `/console` (it signs in with an admin API key or JWT and uses `/admin/graphql`).',
  },
  { path: 'log.level', kind: 'logLevel', default: 'info', doc: 'JSON log level.' },
] satisfies KeySpec[]);

/** `server.publicUrl` → `CG_SERVER_PUBLIC_URL`. */
export function envNameOf(path: string): string {
  return (
    'CG_' +
    path
      .replace(/\./g, '_')
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .toUpperCase()
  );
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

function getPath(obj: Record<string, unknown>, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (!isRecord(cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

/** Sets a dotted key path, creating (or replacing non-object) parents on the way. */
export function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = obj;
  for (const part of parts.slice(0, -1)) {
    if (!isRecord(cur[part])) cur[part] = {};
    cur = cur[part] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

function checkValue(spec: KeySpec, raw: unknown, problems: string[]): unknown {
  const p = spec.path;
  switch (spec.kind) {
    case 'string':
      if (typeof raw !== 'string' || raw.length === 0) return void problems.push(`${p} must be a non-empty string`);
      return raw;
    case 'nullableString':
    case 'url':
      if (raw === null) return null;
      if (typeof raw !== 'string' || raw.length === 0)
        return void problems.push(`${p} must be a non-empty string or null`);
      return raw;
    case 'int': {
      const n = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n)) return void problems.push(`${p} must be an integer`);
      if (spec.min !== undefined && n < spec.min) return void problems.push(`${p} must be at least ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) return void problems.push(`${p} must be at most ${spec.max}`);
      return n;
    }
    case 'bool':
      if (raw === 'true' || raw === true) return true;
      if (raw === 'false' || raw === false) return false;
      return void problems.push(`${p} must be true or false`);
    case 'logLevel':
      if (typeof raw !== 'string' || !(LOG_LEVELS as readonly string[]).includes(raw))
        return void problems.push(`${p} must be one of ${LOG_LEVELS.join(', ')}`);
      return raw;
    case 'corsOrigins':
      if (raw === null) return null;
      return checkValue({ ...spec, kind: 'stringList' }, raw, problems);
    case 'stringList': {
      const list =
        typeof raw === 'string'
          ? raw
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : raw;
      if (!Array.isArray(list) || list.some((s) => typeof s !== 'string' || s.length === 0))
        return void problems.push(`${p} must be a list of non-empty strings`);
      return Object.freeze([...list]);
    }
    case 'issuers':
      return checkIssuers(p, raw, problems);
  }
}

/** `identity.issuers`: a list of `{issuer, audience, jwksUri?, algorithms?, name?}` (JSON from the environment). */
function checkIssuers(p: string, raw: unknown, problems: string[]): unknown {
  let list = raw;
  if (typeof raw === 'string') {
    try {
      list = JSON.parse(raw);
    } catch {
      return void problems.push(`${p} must be a JSON list when set from the environment`);
    }
  }
  if (!Array.isArray(list)) return void problems.push(`${p} must be a list`);
  return Object.freeze(
    list.map((item, i) => {
      const at = `${p}[${i}]`;
      if (!isRecord(item)) return void problems.push(`${at} must be an object`);
      const issuer = item['issuer'];
      const audience = item['audience'];
      const jwksUri = item['jwksUri'] ?? null;
      const algorithms = item['algorithms'] ?? ['RS256', 'ES256', 'PS256', 'EdDSA'];
      if (typeof issuer !== 'string' || !issuer) problems.push(`${at}.issuer must be a non-empty string`);
      if (typeof audience !== 'string' || !audience) problems.push(`${at}.audience must be a non-empty string`);
      if (jwksUri !== null && (typeof jwksUri !== 'string' || !webUrl(jwksUri, true)))
        problems.push(`${at}.jwksUri must be an http(s) URL`);
      if (
        !Array.isArray(algorithms) ||
        algorithms.length === 0 ||
        algorithms.some((a) => typeof a !== 'string' || isForbiddenJwsAlgorithm(a))
      )
        problems.push(`${at}.algorithms must be a non-empty list of asymmetric JWS algorithms`);
      for (const k of Object.keys(item))
        if (!['issuer', 'audience', 'jwksUri', 'algorithms', 'name'].includes(k))
          problems.push(`${at}.${k} is not a known key`);
      const name = item['name'] ?? (typeof issuer === 'string' ? issuerNameOf({ issuer }) : '');
      if (item['name'] !== undefined && (typeof name !== 'string' || !ISSUER_NAME.test(name)))
        problems.push(`${at}.name must be 1-64 characters of a-z, 0-9 and -`);
      return Object.freeze({
        name,
        issuer,
        audience,
        jwksUri,
        algorithms: Object.freeze(Array.isArray(algorithms) ? [...algorithms] : []),
      });
    }),
  );
}

function knownKeyProblems(input: Record<string, unknown>, prefix = ''): string[] {
  const problems: string[] = [];
  for (const [k, v] of Object.entries(input)) {
    const path = prefix ? `${prefix}.${k}` : k;
    const exact = CONFIG_KEYS.some((s) => s.path === path);
    const parent = CONFIG_KEYS.some((s) => s.path.startsWith(`${path}.`));
    if (exact) continue;
    if (parent && isRecord(v)) problems.push(...knownKeyProblems(v, path));
    else problems.push(`${path} is not a known configuration key`);
  }
  return problems;
}

/**
 * Validates a raw configuration object (from YAML, with environment overrides already merged)
 * and returns a frozen `Config`. Throws `ConfigError` listing every problem with its key path.
 */
export function validateConfig(input: unknown): Config {
  if (input !== undefined && input !== null && !isRecord(input))
    throw new ConfigError(['the configuration must be a mapping']);
  const raw = (input ?? {}) as Record<string, unknown>;
  const problems = knownKeyProblems(raw);
  const out: Record<string, unknown> = {};
  for (const spec of CONFIG_KEYS) {
    const given = getPath(raw, spec.path);
    setPath(out, spec.path, given === undefined ? spec.default : checkValue(spec, given, problems));
  }
  if (problems.length === 0) crossCheck(out, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(out) as unknown as Config;
}

/** An explicit `identity.issuers[].name`. */
const ISSUER_NAME = /^[a-z0-9-]{1,64}$/;

/**
 * The name `{issuer}` renders to: the configured one, else derived from the issuer (a URL's host
 * and path, lower-cased, every other run of characters as `-`), so that it stays the same as long
 * as the issuer does.
 */
export function issuerNameOf(config: Pick<IssuerConfig, 'issuer' | 'name'>): string {
  if (config.name !== undefined) return config.name;
  let text = config.issuer;
  try {
    const url = new URL(config.issuer);
    if (url.host !== '') text = url.host + url.pathname;
  } catch {
    // Not a URL: the whole string.
  }
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** Two issuers with one name would render the same connection ids for their users. */
function issuerNameProblems(issuers: readonly IssuerConfig[], problems: string[]): void {
  const seen = new Map<string, number>();
  issuers.forEach((config, i) => {
    const name = issuerNameOf(config);
    const first = seen.get(name);
    if (name === '') problems.push(`identity.issuers[${i}].name must be set: no name can be derived from its issuer`);
    else if (first !== undefined)
      problems.push(
        `identity.issuers[${i}].name ${name} is also the name of identity.issuers[${first}]: set distinct names`,
      );
    else seen.set(name, i);
  });
}

function crossCheck(out: Record<string, unknown>, problems: string[]): void {
  issuerNameProblems((out['identity'] as { issuers: readonly IssuerConfig[] }).issuers, problems);
  const server = out['server'] as { host: string; port: number; publicUrl: string | null };
  if (server.publicUrl !== null) {
    const u = webUrl(server.publicUrl, true);
    if (!u) problems.push('server.publicUrl must be an http(s) URL');
    else server.publicUrl = u.href.replace(/\/+$/, '');
  }
  const consent = out['consent'] as { allowedRedirectOrigins: readonly string[] };
  consent.allowedRedirectOrigins.forEach((o, i) => {
    const u = webUrl(o, true);
    if (!u || u.origin !== o.replace(/\/$/, ''))
      problems.push(`consent.allowedRedirectOrigins[${i}] must be an origin like https://app.example.com`);
  });
  corsOriginProblems((out['server'] as { cors: { origins: readonly string[] | null } }).cors.origins, problems);
  const storeUrl = (out['store'] as { url: string }).url;
  if (storeDialectOf(storeUrl) === null) problems.push(STORE_URL_RULE);
  const key = (out['keys'] as { key: string | null }).key;
  if (key !== null) {
    key.split(',').forEach((entry, i) => {
      if (!parseKeyEntry(entry.trim()).ok)
        problems.push(`keys.key[${i}] must be kid:base64 of 32 bytes (kid of a-z, 0-9, -)`);
    });
  }
}

function corsOriginProblems(origins: readonly string[] | null, problems: string[]): void {
  origins?.forEach((o, i) => {
    const u = webUrl(o, true);
    if (o !== '*' && (!u || u.origin !== o))
      problems.push(
        `server.cors.origins[${i}] must be "*" or an origin like https://app.example.com (scheme, host, port; no path or trailing slash)`,
      );
  });
}

/** Apollo Studio's Explorer calls the gateway from this origin. */
export const APOLLO_STUDIO_ORIGIN = 'https://studio.apollographql.com';

/** The CORS origins in force: the configured ones, else Apollo Studio while exploration is on. */
export function corsOriginsOf(server: Config['server']): readonly string[] {
  return server.cors.origins ?? (server.exploration ? [APOLLO_STUDIO_ORIGIN] : []);
}
