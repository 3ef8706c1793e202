/**
 * Observability: /metrics in the Prometheus text format with exact counter deltas after real
 * traffic through the gateway, one audit line per token use (and no secret anywhere in the log),
 * /readyz over the store and the supergraph, and the log's redaction of secret-bearing keys.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Envelope } from '../src/crypto/envelope.js';
import { openFileKeyring } from '../src/crypto/fileKeyring.js';
import { GatewayError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { AUDIT_TOKEN_USE_EVENT, createAuditLog } from '../src/observability/audit.js';
import { createGatewayMetrics } from '../src/observability/gatewayMetrics.js';
import { escapeLabelValue, MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from '../src/observability/metrics.js';
import { countSubgraphErrors, OTHER_ERROR_CODE } from '../src/observability/subgraphErrors.js';
import { openTokenSet } from '../src/tokens/tokenSet.js';
import { startTestApp, type TestApp } from './support/app.js';
import { consentOverHttp } from './support/authServer.js';
import { confirmConsent } from './support/consent.js';
import { startStage, type Stage } from './support/federation.js';
import { freshPgSchema, pgUrl, requirePgOrSkip } from './support/pg.js';
import { tempDir, type TempDir } from './support/tmp.js';

// ---- a strict parser of the text exposition format 0.0.4 ---------------------------------------

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const HELP_LINE = new RegExp(`^# HELP (${NAME}) (.*)$`);
const TYPE_LINE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const SAMPLE_LINE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`);
const LABEL_PAIR = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/;

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest.length > 0) {
    const m = LABEL_PAIR.exec(rest);
    if (!m) throw new Error(`bad labels: {${text}}`);
    if (m[1]! in labels) throw new Error(`duplicate label ${m[1]}`);
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    rest = rest.slice(m[0].length);
    if (m[3] === ',' && rest.length === 0) throw new Error(`trailing comma: {${text}}`);
  }
  return labels;
}

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(text)) throw new Error(`bad value ${text}`);
  return Number(text);
}

/** Parses and checks the rules a scraper relies on; throws on anything off. */
function parseExposition(text: string): Sample[] {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('exposition must end with a line feed');
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: Sample[] = [];
  let family: string | null = null;
  for (const line of text.split('\n').slice(0, -1)) {
    let m = HELP_LINE.exec(line);
    if (m) {
      if (helps.has(m[1]!)) throw new Error(`second HELP for ${m[1]}`);
      helps.add(m[1]!);
      continue;
    }
    m = TYPE_LINE.exec(line);
    if (m) {
      if (types.has(m[1]!)) throw new Error(`second TYPE for ${m[1]}`);
      types.set(m[1]!, m[2]!);
      family = m[1]!;
      continue;
    }
    m = SAMPLE_LINE.exec(line);
    if (!m) throw new Error(`not a valid exposition line: ${JSON.stringify(line)}`);
    const name = m[1]!;
    const type = family === null ? undefined : types.get(family);
    const belongs =
      name === family ||
      (type === 'histogram' && [`${family}_bucket`, `${family}_sum`, `${family}_count`].includes(name));
    if (!belongs) throw new Error(`sample ${name} outside its family (current: ${family})`);
    samples.push({ name, labels: parseLabels(m[2] ?? ''), value: parseValue(m[3]!) });
  }
  for (const [name, type] of types) if (type === 'histogram') checkHistogram(name, samples);
  return samples;
}

function checkHistogram(name: string, samples: readonly Sample[]): void {
  const seriesKey = (labels: Readonly<Record<string, string>>) =>
    JSON.stringify(Object.entries(labels).filter(([k]) => k !== 'le'));
  const buckets = new Map<string, Sample[]>();
  for (const s of samples.filter((x) => x.name === `${name}_bucket`)) {
    if (!('le' in s.labels)) throw new Error(`${name}_bucket without le`);
    buckets.set(seriesKey(s.labels), [...(buckets.get(seriesKey(s.labels)) ?? []), s]);
  }
  for (const [key, list] of buckets) {
    const les = list.map((s) => parseValue(s.labels['le']!));
    if (les.at(-1) !== Infinity) throw new Error(`${name}{${key}} lacks the +Inf bucket`);
    for (let i = 1; i < list.length; i += 1) {
      if (les[i]! <= les[i - 1]!) throw new Error(`${name}{${key}} buckets out of order`);
      if (list[i]!.value < list[i - 1]!.value) throw new Error(`${name}{${key}} buckets are not cumulative`);
    }
    const count = samples.find((s) => s.name === `${name}_count` && seriesKey(s.labels) === key);
    if (count?.value !== list.at(-1)!.value) throw new Error(`${name}{${key}} +Inf bucket differs from _count`);
    if (!samples.some((s) => s.name === `${name}_sum` && seriesKey(s.labels) === key))
      throw new Error(`${name}{${key}} lacks _sum`);
  }
}

/** The value of one series (0 when absent); labels must match exactly. */
function seriesValue(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  const want = JSON.stringify(Object.entries(labels).sort());
  return samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want)?.value ?? 0;
}

async function scrape(baseUrl: string): Promise<{ text: string; samples: Sample[] }> {
  const res = await fetch(`${baseUrl}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE);
  const text = await res.text();
  return { text, samples: parseExposition(text) };
}

async function readyz(baseUrl: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${baseUrl}/readyz`);
  return { status: res.status, body: await res.json() };
}

async function waitFor<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > until) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const REPO = new URL('../', import.meta.url).pathname;

// ---- the registry on its own ----------------------------------------------------------------------

describe('metrics registry (text exposition format 0.0.4)', () => {
  it('renders counters, labelled series and a cumulative histogram exactly', () => {
    const registry = new MetricsRegistry();
    const plain = registry.counter('t_plain_total', 'Plain.');
    const byKind = registry.counter('t_calls_total', 'Calls.', ['kind', 'outcome']);
    const latency = registry.histogram('t_latency_seconds', 'Latency.', ['kind'], [0.1, 1]);
    byKind.inc({ kind: 'a', outcome: 'ok' });
    byKind.inc({ kind: 'a', outcome: 'ok' }, 2);
    byKind.inc({ outcome: 'failed', kind: 'b' });
    latency.observe({ kind: 'a' }, 0.1); // on a bound: counted in that bucket (le is inclusive)
    latency.observe({ kind: 'a' }, 0.5);
    latency.observe({ kind: 'a' }, 7);
    expect(registry.expose()).toBe(
      [
        '# HELP t_plain_total Plain.',
        '# TYPE t_plain_total counter',
        't_plain_total 0',
        '# HELP t_calls_total Calls.',
        '# TYPE t_calls_total counter',
        't_calls_total{kind="a",outcome="ok"} 3',
        't_calls_total{kind="b",outcome="failed"} 1',
        '# HELP t_latency_seconds Latency.',
        '# TYPE t_latency_seconds histogram',
        't_latency_seconds_bucket{kind="a",le="0.1"} 1',
        't_latency_seconds_bucket{kind="a",le="1"} 2',
        't_latency_seconds_bucket{kind="a",le="+Inf"} 3',
        't_latency_seconds_sum{kind="a"} 7.6',
        't_latency_seconds_count{kind="a"} 3',
        '',
      ].join('\n'),
    );
    expect(plain.get()).toBe(0);
    expect(byKind.get({ kind: 'a', outcome: 'ok' })).toBe(3);
    expect(() => parseExposition(registry.expose())).not.toThrow();
  });

  it('escapes label values and help text so that every line still parses back to the same value', () => {
    const registry = new MetricsRegistry();
    const c = registry.counter('t_escape_total', 'Line one\nline two with a \\ backslash.', ['v']);
    const nasty = 'quote " backslash \\ newline \n end } {x="y"}';
    c.inc({ v: nasty });
    const text = registry.expose();
    expect(text).toContain('# HELP t_escape_total Line one\\nline two with a \\\\ backslash.\n');
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    const [sample] = parseExposition(text);
    expect(sample).toEqual({ name: 't_escape_total', labels: { v: nasty }, value: 1 });
  });

  it('reads gauges at scrape time', () => {
    const registry = new MetricsRegistry();
    let n = 1;
    registry.gauge('t_gauge', 'A gauge.', () => n);
    expect(registry.expose()).toContain('\nt_gauge 1\n');
    n = 4;
    expect(registry.expose()).toContain('\nt_gauge 4\n');
  });

  it('refuses invalid names, reserved labels, duplicates and bad buckets at registration', () => {
    const registry = new MetricsRegistry();
    registry.counter('t_once_total', 'Once.');
    expect(() => registry.counter('t_once_total', 'Again.')).toThrow(TypeError);
    expect(() => registry.counter('1starts_with_digit', 'x')).toThrow(TypeError);
    expect(() => registry.counter('has-dash', 'x')).toThrow(TypeError);
    expect(() => registry.counter('t_bad_label_total', 'x', ['bad-label'])).toThrow(TypeError);
    expect(() => registry.counter('t_reserved_total', 'x', ['__name'])).toThrow(TypeError);
    expect(() => registry.counter('t_dup_label_total', 'x', ['a', 'a'])).toThrow(TypeError);
    expect(() => registry.histogram('t_le_seconds', 'x', ['le'])).toThrow(TypeError);
    expect(() => registry.histogram('t_unsorted_seconds', 'x', [], [1, 0.5])).toThrow(TypeError);
    expect(() => registry.histogram('t_empty_seconds', 'x', [], [])).toThrow(TypeError);
    expect(() => registry.histogram('t_inf_seconds', 'x', [], [1, Infinity])).toThrow(TypeError);
  });

  it('refuses a wrong label set, a decrement and a NaN observation without changing anything', () => {
    const registry = new MetricsRegistry();
    const c = registry.counter('t_misuse_total', 'x', ['outcome']);
    const h = registry.histogram('t_misuse_seconds', 'x', ['kind']);
    expect(() => c.inc()).toThrow(TypeError);
    expect(() => c.inc({ outcome: 'ok', extra: 'x' })).toThrow(TypeError);
    expect(() => c.inc({ kind: 'ok' })).toThrow(TypeError);
    expect(() => c.inc({ outcome: 'ok' }, -1)).toThrow(RangeError);
    expect(() => c.inc({ outcome: 'ok' }, Infinity)).toThrow(RangeError);
    expect(() => h.observe({ kind: 'a' }, NaN)).toThrow(RangeError);
    expect(() => h.observe({}, 1)).toThrow(TypeError);
    expect(registry.expose()).toBe(
      '# HELP t_misuse_total x\n# TYPE t_misuse_total counter\n# HELP t_misuse_seconds x\n# TYPE t_misuse_seconds histogram\n',
    );
  });
});

describe('subgraph error counting', () => {
  it('counts by subgraph and code, folds unknown codes into OTHER, and skips errors of no known subgraph', () => {
    const metrics = createGatewayMetrics();
    countSubgraphErrors(
      [
        { message: 'a', extensions: { serviceName: 'github', code: 'REAUTHORIZATION_REQUIRED' } },
        { message: 'b', extensions: { serviceName: 'github', code: 'REAUTHORIZATION_REQUIRED' } },
        { message: 'c', extensions: { serviceName: 'github', code: 'SOME_CUSTOM_CODE_OF_A_SUBGRAPH' } },
        { message: 'd', extensions: { serviceName: 'github' } },
        { message: 'e', extensions: { serviceName: 'invented-by-someone', code: 'BAD_USER_INPUT' } },
        { message: 'f', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } },
      ],
      { counter: metrics.subgraphErrors, isSubgraph: (name) => name === 'github' },
    );
    const samples = parseExposition(metrics.registry.expose()).filter((s) => s.name === 'cg_subgraph_errors_total');
    expect(samples).toEqual([
      { name: 'cg_subgraph_errors_total', labels: { subgraph: 'github', code: 'REAUTHORIZATION_REQUIRED' }, value: 2 },
      { name: 'cg_subgraph_errors_total', labels: { subgraph: 'github', code: OTHER_ERROR_CODE }, value: 2 },
    ]);
  });
});

describe('audit log', () => {
  const use = {
    providerId: 'github-01',
    connectionId: 'alice',
    principal: 'https://idp.example#alice',
    outcome: 'granted' as const,
  };

  it.each(['trace', 'info', 'warn', 'error'])('keeps the audit trail when the log level is %s', (level) => {
    const lines: string[] = [];
    createAuditLog(createLogger(level, { write: (l: string) => void lines.push(l) })).tokenUse(use);
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({
        audit: true,
        event: AUDIT_TOKEN_USE_EVENT,
        principal: use.principal,
        provider: 'github-01',
        connection: 'alice',
        subgraph: null,
        outcome: 'granted',
      }),
    ]);
  });

  it('writes nothing when the log is silent', () => {
    const lines: string[] = [];
    createAuditLog(createLogger('silent', { write: (l: string) => void lines.push(l) })).tokenUse({
      ...use,
      subgraph: 'github',
    });
    expect(lines).toEqual([]);
  });
});

// ---- redaction of the JSON log ------------------------------------------------------------------

describe('log redaction', () => {
  function logged(write: (log: ReturnType<typeof createLogger>) => void): string {
    const lines: string[] = [];
    write(createLogger('info', { write: (l: string) => void lines.push(l) }));
    expect(lines).toHaveLength(1);
    return lines[0]!;
  }

  it.each([
    ['top-level refresh_token', { refresh_token: 'SECRET-R1' }, ['refresh_token']],
    ['err.clientSecret', { err: { clientSecret: 'SECRET-C1' } }, ['err', 'clientSecret']],
    ['headers.authorization', { headers: { authorization: 'Bearer SECRET-H1' } }, ['headers', 'authorization']],
    [
      'req.headers.authorization and cookie',
      { req: { headers: { authorization: 'Bearer SECRET-H2', cookie: 'sid=SECRET-K' } } },
      ['req', 'headers', 'cookie'],
    ],
    ['x-api-key header', { headers: { 'x-api-key': 'SECRET-API' } }, ['headers', 'x-api-key']],
    ['err.body.access_token', { err: { body: { access_token: 'SECRET-A1' } } }, ['err', 'body', 'access_token']],
    [
      'err.response.headers.authorization (four deep)',
      { err: { response: { headers: { authorization: 'Bearer SECRET-H3' } } } },
      ['err', 'response', 'headers', 'authorization'],
    ],
    ['tokens in an array', { list: [{ refresh_token: 'SECRET-R2' }] }, ['list', '0', 'refresh_token']],
    ['a.b.c.id_token (four deep)', { a: { b: { c: { id_token: 'SECRET-I1' } } } }, ['a', 'b', 'c', 'id_token']],
  ])('hides %s', (_what, object, path) => {
    const line = logged((log) => log.info(object, 'something'));
    expect(line).not.toMatch(/SECRET-/);
    let at: any = JSON.parse(line);
    for (const step of path) at = at[step];
    expect(at).toBe('[redacted]');
  });

  it('hides secret properties of a logged Error, and keeps its message', () => {
    const err = Object.assign(new Error('token endpoint refused'), {
      client_secret: 'SECRET-E1',
      response: { headers: { authorization: 'Basic SECRET-E2' } },
    });
    const line = logged((log) => log.error({ err }, 'refresh failed'));
    expect(line).not.toMatch(/SECRET-/);
    const parsed = JSON.parse(line);
    expect(parsed.err.message).toBe('token endpoint refused');
    expect(parsed.err.client_secret).toBe('[redacted]');
  });

  it('never shows the internal cause of a GatewayError beyond its message', () => {
    const cause = Object.assign(new Error('upstream said no'), { refreshToken: 'SECRET-G1' });
    const line = logged((log) =>
      log.error(
        { err: new GatewayError('PROVIDER_UNAVAILABLE', 'the identity provider is unavailable', { cause }) },
        'x',
      ),
    );
    expect(line).not.toMatch(/SECRET-/);
  });
});

// ---- end to end: metrics and audit after real traffic ---------------------------------------------

const TOKEN_INFO = `{ githubTokenInfo { subject } graphTokenInfo { subject } }`;

function errorsByService(errors: any[] | undefined): Record<string, any> {
  return Object.fromEntries((errors ?? []).map((e) => [e.extensions?.serviceName, e]));
}

describe('metrics and audit after real traffic through the gateway', () => {
  const logLines: string[] = [];
  let s: Stage;
  let alice: string;
  let bob: string;
  /** Every secret the test saw; none may reach the log or /metrics. */
  const secrets = new Set<string>();
  let before: Sample[];
  let graphqlRequests = 0;

  const audits = () => logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['audit'] === true);

  async function query(q: string, jwt: string) {
    graphqlRequests += 1;
    return s.query(q, jwt);
  }

  beforeAll(async () => {
    s = await startStage({ accessTokenTtlSeconds: 4, config: { cache: { refreshSkewSeconds: 1 } }, logLines });
    alice = await s.jwtFor('alice');
    bob = await s.jwtFor('bob');
    for (const secret of [alice, bob, s.authGithub.clients.web.clientSecret, s.authGraph.clients.web.clientSecret])
      secrets.add(secret);
    before = (await scrape(s.t.url)).samples;
  }, 60_000);

  afterAll(() => s?.close());

  const delta = async (name: string, labels: Record<string, string> = {}) =>
    seriesValue((await scrape(s.t.url)).samples, name, labels) - seriesValue(before, name, labels);

  it('counts a first use that needs consent: two misses, two refusals, one error per subgraph', async () => {
    const res = await query(TOKEN_INFO, alice);
    const errors = errorsByService(res.body.errors);
    expect(errors['github'].extensions.code).toBe('CONNECTION_NOT_CONNECTED');
    expect(errors['graph'].extensions.code).toBe('CONNECTION_NOT_CONNECTED');
    expect(await delta('cg_token_cache_misses_total')).toBe(2);
    expect(await delta('cg_token_cache_hits_total')).toBe(0);
    expect(await delta('cg_token_uses_total', { outcome: 'CONNECTION_NOT_CONNECTED' })).toBe(2);
    expect(await delta('cg_subgraph_errors_total', { subgraph: 'github', code: 'CONNECTION_NOT_CONNECTED' })).toBe(1);
    expect(await delta('cg_subgraph_errors_total', { subgraph: 'graph', code: 'CONNECTION_NOT_CONNECTED' })).toBe(1);
    expect(await delta('cg_provider_calls_total', { kind: 'refresh', outcome: 'success' })).toBe(0);

    for (const [name, link] of [
      ['github', errors['github'].extensions.loginUrl],
      ['graph', errors['graph'].extensions.loginUrl],
    ]) {
      const final = await consentOverHttp(link, { login: 'alice' });
      expect((await confirmConsent(s.t.url, final, alice)).status, name).toBe(200);
    }
  });

  it('counts a cache miss (store read) and then a cache hit', async () => {
    before = (await scrape(s.t.url)).samples;
    expect((await query(TOKEN_INFO, alice)).body.errors).toBeUndefined();
    expect(await delta('cg_token_cache_misses_total')).toBe(2);
    expect(await delta('cg_token_cache_hits_total')).toBe(0);
    expect((await query(TOKEN_INFO, alice)).body.errors).toBeUndefined();
    expect(await delta('cg_token_cache_misses_total')).toBe(2);
    expect(await delta('cg_token_cache_hits_total')).toBe(2);
    expect(await delta('cg_token_uses_total', { outcome: 'granted' })).toBe(4);
    // Fresh tokens from consent: no identity provider was called.
    expect(await delta('cg_provider_calls_total', { kind: 'refresh', outcome: 'success' })).toBe(0);
    for (const seen of [...s.github.seen, ...s.graph.seen])
      if (seen.authorization) secrets.add(seen.authorization.replace(/^Bearer /, ''));
  });

  it('counts a refresh that succeeds and one the provider refuses (reauthorization_required), with their latency', async () => {
    // The github grant is revoked: its refresh token now fails with invalid_grant.
    expect(s.authGithub.revokeGrantsOf('alice')).toBeGreaterThan(0);
    // Counted from before the wait: a proactive refresh in the background, if any, falls inside it.
    before = (await scrape(s.t.url)).samples;
    await sleep(3_200); // past expiry minus the 1 s skew
    const res = await query(TOKEN_INFO, alice);
    const errors = errorsByService(res.body.errors);
    expect(Object.keys(errors)).toEqual(['github']);
    expect(errors['github'].extensions.code).toBe('REAUTHORIZATION_REQUIRED');
    expect(res.body.data.graphTokenInfo).toEqual({ subject: 'alice' });

    expect(await delta('cg_provider_calls_total', { kind: 'refresh', outcome: 'success' })).toBe(1);
    expect(await delta('cg_provider_calls_total', { kind: 'refresh', outcome: 'reauthorization_required' })).toBe(1);
    expect(await delta('cg_provider_calls_total', { kind: 'refresh', outcome: 'provider_unavailable' })).toBe(0);
    expect(await delta('cg_provider_call_duration_seconds_count', { kind: 'refresh' })).toBe(2);
    expect(await delta('cg_provider_call_duration_seconds_bucket', { kind: 'refresh', le: '+Inf' })).toBe(2);
    expect(await delta('cg_provider_call_duration_seconds_sum', { kind: 'refresh' })).toBeGreaterThan(0);
    expect(await delta('cg_token_uses_total', { outcome: 'granted' })).toBe(1);
    expect(await delta('cg_token_uses_total', { outcome: 'REAUTHORIZATION_REQUIRED' })).toBe(1);
    expect(await delta('cg_subgraph_errors_total', { subgraph: 'github', code: 'REAUTHORIZATION_REQUIRED' })).toBe(1);
    for (const seen of s.graph.seen) if (seen.authorization) secrets.add(seen.authorization.replace(/^Bearer /, ''));
  });

  it('counts an error a subgraph itself returns, under that subgraph and its code', async () => {
    before = (await scrape(s.t.url)).samples;
    const res = await query(`{ me { mail(first: 100000) { id } } }`, alice);
    expect(errorsByService(res.body.errors)['graph'].extensions.code).toBe('BAD_USER_INPUT');
    expect(await delta('cg_subgraph_errors_total', { subgraph: 'graph', code: 'BAD_USER_INPUT' })).toBe(1);
    expect(await delta('cg_token_cache_hits_total')).toBe(1);
  });

  it('counts token endpoint uses, granted and denied, and HTTP requests by route pattern', async () => {
    before = (await scrape(s.t.url)).samples;
    const granted = await fetch(`${s.t.url}/tokens/graph-01/alice`, { headers: { authorization: `Bearer ${alice}` } });
    expect(granted.status).toBe(200);
    secrets.add(((await granted.json()) as { access_token: string }).access_token);
    const denied = await fetch(`${s.t.url}/tokens/graph-01/alice`, { headers: { authorization: `Bearer ${bob}` } });
    expect(denied.status).toBe(403);
    expect(await delta('cg_token_uses_total', { outcome: 'granted' })).toBe(1);
    expect(await delta('cg_token_uses_total', { outcome: 'ACCESS_DENIED' })).toBe(1);
    expect(await delta('cg_http_requests_total', { route: '/tokens/:providerId/:connectionId', status: '200' })).toBe(
      1,
    );
    expect(await delta('cg_http_requests_total', { route: '/tokens/:providerId/:connectionId', status: '403' })).toBe(
      1,
    );
    const all = (await scrape(s.t.url)).samples;
    expect(seriesValue(all, 'cg_http_requests_total', { route: '/graphql', status: '200' })).toBe(graphqlRequests);
  });

  it('is ready, with the supergraph loaded', async () => {
    expect(await readyz(s.t.url)).toEqual({ status: 200, body: { status: 'ready', store: 'ok', supergraph: 'ok' } });
  });

  it('writes exactly one audit line per token use, with who, what and the outcome', async () => {
    const { samples } = await scrape(s.t.url);
    const uses = samples.filter((x) => x.name === 'cg_token_uses_total').reduce((sum, x) => sum + x.value, 0);
    const lines = audits();
    expect(lines).toHaveLength(uses);
    for (const line of lines) {
      expect(Object.keys(line).sort()).toEqual([
        'audit',
        'connection',
        'event',
        'level',
        'msg',
        'outcome',
        'principal',
        'provider',
        'service',
        'subgraph',
        'time',
      ]);
      expect(line).toMatchObject({ audit: true, event: 'token.use', level: 30, msg: 'token use' });
    }
    const summary = lines.map(
      (l) => `${l['principal']} ${l['provider']}/${l['connection']} ${l['subgraph']} ${l['outcome']}`,
    );
    const a = `${s.idp.issuer}#alice`;
    const b = `${s.idp.issuer}#bob`;
    // Subgraphs of one operation resolve concurrently: compare without order.
    expect([...summary].sort()).toEqual(
      [
        `${a} github-01/alice github CONNECTION_NOT_CONNECTED`,
        `${a} graph-01/alice graph CONNECTION_NOT_CONNECTED`,
        ...Array(2).fill(`${a} github-01/alice github granted`),
        ...Array(2).fill(`${a} graph-01/alice graph granted`),
        `${a} github-01/alice github REAUTHORIZATION_REQUIRED`,
        `${a} graph-01/alice graph granted`,
        `${a} graph-01/alice graph granted`,
        `${a} graph-01/alice null granted`,
        `${b} graph-01/alice null ACCESS_DENIED`,
      ].sort(),
    );
  });

  it('never writes a token, a secret or a JWT to the log or to /metrics, and keeps connection ids out of labels', async () => {
    // The stored refresh tokens too, opened with the gateway's own keyring.
    const envelope = new Envelope(await openFileKeyring(join(s.t.dir, 'keyring.json')));
    for (const providerId of ['github-01', 'graph-01']) {
      const key = { providerId, connectionId: 'alice' };
      const connection = await s.t.app.store.getConnection(key);
      const tokens = openTokenSet(envelope, key, connection!.tokens!);
      secrets.add(tokens.accessToken);
      if (tokens.refreshToken) secrets.add(tokens.refreshToken);
    }
    expect(secrets.size).toBeGreaterThanOrEqual(8);
    const log = logLines.join('');
    const { text } = await scrape(s.t.url);
    for (const secret of secrets) {
      expect(log.includes(secret), 'a secret reached the log').toBe(false);
      expect(text.includes(secret), 'a secret reached /metrics').toBe(false);
    }
    const JWT = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\./;
    expect(log).not.toMatch(JWT);
    expect(log).not.toMatch(/Bearer /);
    expect(text).not.toMatch(JWT);
    // Connection ids are unbounded: never a label value.
    expect(text).not.toMatch(/"alice"|"bob"/);
  });
});

// ---- readiness ----------------------------------------------------------------------------------

describe('/readyz over the store and the supergraph', () => {
  it('is ready with supergraph none when no supergraph is configured', async () => {
    const plain = await startTestApp();
    try {
      expect(await readyz(plain.url)).toEqual({
        status: 200,
        body: { status: 'ready', store: 'ok', supergraph: 'none' },
      });
    } finally {
      await plain.close();
    }
  });

  it('answers 503 with store unavailable once the store is closed', async () => {
    const logLines: string[] = [];
    const t = await startTestApp({}, { logLines });
    try {
      await t.app.store.close();
      expect(await readyz(t.url)).toEqual({
        status: 503,
        body: { status: 'not ready', store: 'unavailable', supergraph: 'none' },
      });
      expect(logLines.some((l) => JSON.parse(l).msg === 'readiness check failed')).toBe(true);
      // Liveness is another matter: the process still answers.
      expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    } finally {
      await t.close();
    }
  });

  describe('with a supergraph file that gets a broken edit', () => {
    let dir: TempDir;
    let t: TestApp;
    let file: string;
    let original: string;

    beforeAll(async () => {
      dir = await tempDir('cg-readyz-');
      file = dir.file('supergraph.yaml');
      original = readFileSync(join(REPO, 'supergraph.yaml'), 'utf8').replaceAll(
        './subgraphs/',
        `${join(REPO, 'subgraphs')}/`,
      );
      writeFileSync(file, original);
      t = await startTestApp({ supergraph: file });
    });

    afterAll(async () => {
      await t?.close();
      await dir?.cleanup();
    });

    it('stays ready on the last good supergraph, reported stale with the failed reloads, until a good edit', async () => {
      expect(await readyz(t.url)).toEqual({ status: 200, body: { status: 'ready', store: 'ok', supergraph: 'ok' } });
      expect(seriesValue((await scrape(t.url)).samples, 'cg_supergraph_reload_failures')).toBe(0);

      writeFileSync(file, 'subgraphs: [this is not a supergraph');
      const stale = await waitFor(
        () => readyz(t.url),
        (r) => r.body.supergraph === 'stale',
      );
      expect(stale.status).toBe(200);
      expect(stale.body).toEqual({
        status: 'ready',
        store: 'ok',
        supergraph: 'stale',
        supergraphReloadFailures: expect.any(Number),
      });
      expect(stale.body.supergraphReloadFailures).toBeGreaterThanOrEqual(1);
      expect(seriesValue((await scrape(t.url)).samples, 'cg_supergraph_reload_failures')).toBe(
        stale.body.supergraphReloadFailures,
      );

      // Reverting to the supergraph in use recovers too, though nothing new is loaded.
      writeFileSync(file, original);
      const ok = await waitFor(
        () => readyz(t.url),
        (r) => r.body.supergraph === 'ok',
      );
      expect(ok).toEqual({ status: 200, body: { status: 'ready', store: 'ok', supergraph: 'ok' } });
      expect(seriesValue((await scrape(t.url)).samples, 'cg_supergraph_reload_failures')).toBe(0);
    });
  });

  describe('on PostgreSQL', () => {
    let hasPg = false;
    beforeAll(async () => {
      hasPg = await requirePgOrSkip('observability /readyz on PostgreSQL');
    });

    /** A TCP relay to PostgreSQL that can be cut (listener and live connections) and restored on the same port. */
    async function relay(
      target: URL,
    ): Promise<{ port: number; cut(): Promise<void>; restore(): Promise<void>; close(): Promise<void> }> {
      const sockets = new Set<Socket>();
      let server: Server;
      const listen = (port: number) =>
        new Promise<number>((resolve, reject) => {
          server = createServer((client) => {
            const upstream = connect(Number(target.port || 5432), target.hostname);
            for (const sock of [client, upstream]) {
              sockets.add(sock);
              sock.on('close', () => sockets.delete(sock));
              sock.on('error', () => {
                client.destroy();
                upstream.destroy();
              });
            }
            client.pipe(upstream).pipe(client);
          });
          server.once('error', reject);
          server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
        });
      const port = await listen(0);
      const cut = () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const sock of sockets) sock.destroy();
        });
      return { port, cut, restore: async () => void (await listen(port)), close: cut };
    }

    it('answers 503 with store unavailable while PostgreSQL cannot be reached, and ready again once it can', async (ctx) => {
      if (!hasPg) return ctx.skip();
      const schema = await freshPgSchema('cg_readyz');
      const target = new URL(pgUrl());
      const tcp = await relay(target);
      const storeUrl = new URL(pgUrl());
      storeUrl.host = `127.0.0.1:${tcp.port}`;
      storeUrl.searchParams.set('options', `-c search_path=${schema.schema}`);
      const t = await startTestApp({}, { storeUrl: storeUrl.toString() });
      try {
        expect(await readyz(t.url)).toEqual({
          status: 200,
          body: { status: 'ready', store: 'ok', supergraph: 'none' },
        });
        await tcp.cut();
        expect(await readyz(t.url)).toEqual({
          status: 503,
          body: { status: 'not ready', store: 'unavailable', supergraph: 'none' },
        });
        await tcp.restore();
        const back = await waitFor(
          () => readyz(t.url),
          (r) => r.status === 200,
        );
        expect(back).toEqual({ status: 200, body: { status: 'ready', store: 'ok', supergraph: 'none' } });
      } finally {
        await t.close();
        await tcp.close();
        await schema.drop();
      }
    }, 30_000);
  });
});
