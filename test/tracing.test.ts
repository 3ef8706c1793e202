/**
 * OpenTelemetry traces, end to end: the gateway runs as its own process configured only by the
 * standard OTEL_* variables and exports to a real OTLP/HTTP receiver on loopback, once as protobuf
 * and once as JSON. A two-subgraph query in which one connection's token must be refreshed is one
 * trace, continuing the caller's `traceparent`, with Apollo Gateway's spans nested in it and the
 * trace context reaching both subgraphs. No exported span holds a token, a secret, a JWT, a login
 * link or a raw connection id.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY } from './support/app.js';
import { oidcProviderInput } from './support/authServer.js';
import { consentToAll, createOidcProviders, startBackends, type Backends } from './support/backends.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './support/otlpReceiver.js';
import { startReplica, type Replica } from './support/replicas.js';
import { trace } from '@opentelemetry/api';
import { startTracing, tracingSettings, tracingWanted } from '../src/observability/otel.js';

const FIRST = `{ githubTokenInfo { subject } graphTokenInfo { subject } }`;
const TRACED = `query BothTokens { githubTokenInfo { issuer subject } graphTokenInfo { issuer subject } }`;
/** The github provider's tokens expire almost at once (refresh skew 1 s); the graph provider's stay valid. */
const GITHUB_TOKEN_TTL_SECONDS = 2;
const GRAPH_TOKEN_TTL_SECONDS = 3600;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function traceparent(): { header: string; traceId: string; parentId: string } {
  const traceId = randomBytes(16).toString('hex');
  const parentId = randomBytes(8).toString('hex');
  return { header: `00-${traceId}-${parentId}-01`, traceId, parentId };
}

function childrenOf(spans: readonly ReceivedSpan[], parent: ReceivedSpan): ReceivedSpan[] {
  return spans.filter((s) => s.parentSpanId === parent.spanId);
}

function ancestorsOf(spans: readonly ReceivedSpan[], span: ReceivedSpan): string[] {
  const names: string[] = [];
  for (
    let p = spans.find((s) => s.spanId === span.parentSpanId);
    p;
    p = spans.find((s) => s.spanId === p!.parentSpanId)
  )
    names.push(p.name);
  return names;
}

function one(spans: readonly ReceivedSpan[], predicate: (s: ReceivedSpan) => boolean, what: string): ReceivedSpan {
  const found = spans.filter(predicate);
  if (found.length !== 1)
    throw new Error(`expected one ${what}, found ${found.length}: ${spans.map((s) => s.name).join(', ')}`);
  return found[0]!;
}

/** Every string an exported span carries: names, attribute keys and values, events. */
function stringsOf(span: ReceivedSpan): string[] {
  const values = (v: unknown): string[] =>
    Array.isArray(v)
      ? v.flatMap(values)
      : typeof v === 'object' && v !== null
        ? Object.entries(v).flatMap(([k, x]) => [k, ...values(x)])
        : [String(v)];
  return [
    span.name,
    span.statusMessage,
    ...values(span.attributes),
    ...span.events.flatMap((e) => [e.name, ...values(e.attributes)]),
  ];
}

describe('tracing is off unless OTEL_* asks for it', () => {
  it('loads nothing without an exporter or an endpoint, or with OTEL_SDK_DISABLED / OTEL_TRACES_EXPORTER=none', () => {
    expect(tracingWanted({})).toBe(false);
    expect(tracingWanted({ OTEL_SERVICE_NAME: 'x' })).toBe(false);
    expect(tracingWanted({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })).toBe(
      false,
    );
    expect(tracingWanted({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' })).toBe(false);
    expect(tracingWanted({ OTEL_TRACES_EXPORTER: 'otlp' })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })).toBe(true);
  });

  it('registers no SDK when unset: the API stays on its no-op provider', async () => {
    expect(await startTracing({ OTEL_SERVICE_NAME: 'x' })).toBeNull();
    const provider = trace.getTracerProvider() as unknown as { getDelegate(): object };
    expect(provider.getDelegate().constructor.name).toBe('NoopTracerProvider');
    expect(trace.getTracer('t').startSpan('s').isRecording()).toBe(false);
  });

  it('refuses bad OTEL_* values at start, naming the variable', () => {
    expect(() => tracingSettings({ OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(
      /OTEL_TRACES_EXPORTER must be otlp or none/,
    );
    expect(() => tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(
      /OTEL_EXPORTER_OTLP_PROTOCOL must be http\/protobuf or http\/json/,
    );
    expect(() => tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT must be an http\(s\) URL/,
    );
    expect(() => tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER_ARG: '2' })).toThrow(
      /OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1/,
    );
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318/' }).url).toBe(
      'http://127.0.0.1:4318/v1/traces',
    );
  });
});

describe.each(['http/protobuf', 'http/json'] as const)('OpenTelemetry traces over OTLP %s', (protocol) => {
  let receiver: OtlpReceiver;
  let b: Backends;
  let gateway: Replica;
  let jwt: string;
  let loginLinks: string[];
  const traced = traceparent();
  const repeated = traceparent();
  let tracedAnswer: any;
  let refreshes: { github: number; graph: number };

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    b = await startBackends({
      accessTokenTtlSeconds: GITHUB_TOKEN_TTL_SECONDS,
      graphAccessTokenTtlSeconds: GRAPH_TOKEN_TTL_SECONDS,
    });
    gateway = await startReplica({
      CG_SUPERGRAPH: b.supergraphFile,
      CG_STORE_URL: `sqlite:${b.dir.file('credentials.db')}`,
      CG_KEYS_KEY: `otel:${randomBytes(32).toString('base64')}`,
      CG_IDENTITY_ISSUERS: JSON.stringify([b.idp.issuerConfig()]),
      CG_CACHE_REFRESH_SKEW_SECONDS: '1',
      CG_CACHE_PROACTIVE_REFRESH: 'false',
      CG_LOG_LEVEL: 'warn',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      OTEL_SERVICE_NAME: 'cg-tracing-test',
    });
    await createOidcProviders(async (q, v) => (await gateway.admin(q, v)).body, b);
    jwt = await b.idp.sign({ sub: 'alice' });
    const query = async (text: string, headers: Record<string, string> = {}) =>
      (
        await fetch(`${gateway.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}`, ...headers },
          body: JSON.stringify({ query: text }),
        })
      ).json() as Promise<any>;
    const first = await query(FIRST);
    loginLinks = (first.errors ?? []).map((e: any) => e.extensions?.loginUrl);
    expect(await consentToAll(first.errors, 'alice', jwt)).toBe(2);
    // The github token is now inside its refresh window; the graph token is good for an hour.
    await sleep(GITHUB_TOKEN_TTL_SECONDS * 1000);
    b.authGithub.resetCounts();
    b.authGraph.resetCounts();
    tracedAnswer = await query(TRACED, { traceparent: traced.header });
    refreshes = { github: b.authGithub.counts.refresh, graph: b.authGraph.counts.refresh };
    // Same text again: the prepared pipeline, both tokens from the cache.
    await query(TRACED, { traceparent: repeated.header });
    // Stopping flushes what the batch processor still holds.
    await gateway.stop();
    expect(await gateway.exited).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await gateway?.stop();
    await b?.close();
    await receiver?.close();
  });

  it(`exports ${protocol} to the receiver, under OTEL_SERVICE_NAME`, () => {
    const expected = protocol === 'http/json' ? 'application/json' : 'application/x-protobuf';
    expect(receiver.contentTypes.length).toBeGreaterThan(0);
    expect(receiver.contentTypes.every((c) => c.startsWith(expected))).toBe(true);
    expect(new Set(receiver.spans.map((s) => s.serviceName))).toEqual(new Set(['cg-tracing-test']));
  });

  it('makes a two-subgraph query with one refresh one trace: operation, caller, token resolutions, the provider call, gateway and subgraph spans', () => {
    expect(tracedAnswer.errors).toBeUndefined();
    expect(refreshes).toEqual({ github: 1, graph: 0 });
    const spans = receiver.spans.filter((s) => s.traceId === traced.traceId);
    const root = one(spans, (s) => s.parentSpanId === traced.parentId, "span under the caller's traceparent");
    expect(root).toMatchObject({
      name: 'POST /graphql',
      kind: 2,
      attributes: { 'http.route': '/graphql', 'http.response.status_code': 200 },
    });
    // Every span of the trace hangs off the root: one tree.
    for (const s of spans) if (s !== root) expect(ancestorsOf(spans, s).at(-1)).toBe('POST /graphql');

    const operation = one(childrenOf(spans, root), (s) => s.name === 'graphql.operation', 'operation span');
    expect(operation.attributes).toMatchObject({
      'graphql.operation.name': 'BothTokens',
      'graphql.operation.type': 'query',
      'graphql.operation.hash': createHash('sha256').update(TRACED).digest('hex'),
      'cg.pipeline': 'full',
    });
    expect(one(spans, (s) => s.name === 'caller.verify', 'caller verification').attributes).toMatchObject({
      'cg.caller.outcome': 'verified',
    });

    const resolutions = spans.filter((s) => s.name === 'token.resolve');
    const byProvider = Object.fromEntries(resolutions.map((s) => [s.attributes['cg.provider.id'], s]));
    expect(Object.keys(byProvider).sort()).toEqual(['github-01', 'graph-01']);
    expect(byProvider['github-01']!.attributes).toMatchObject({
      'cg.token.outcome': 'refresh',
      'cg.subgraph': 'github',
    });
    expect(byProvider['graph-01']!.attributes).toMatchObject({ 'cg.token.outcome': 'store', 'cg.subgraph': 'graph' });
    for (const r of resolutions) expect(r.attributes['cg.connection.ref']).toMatch(/^[0-9a-f]{16}$/);

    const providerCall = one(spans, (s) => s.name === 'oauth.token_request', 'identity-provider call');
    expect(providerCall).toMatchObject({
      kind: 3,
      attributes: { 'oauth.grant_type': 'refresh_token', 'http.response.status_code': 200 },
    });
    expect(ancestorsOf(spans, providerCall)[0]).toBe('token.resolve');
    expect(spans.find((s) => s.spanId === providerCall.parentSpanId)!.attributes['cg.provider.id']).toBe('github-01');

    // Apollo Gateway's own spans, in the same trace.
    for (const name of ['gateway.request', 'gateway.plan', 'gateway.execute'])
      one(spans, (s) => s.name === name && s.scope === 'apollo/gateway-js', name);
    const fetches = spans.filter((s) => s.name === 'gateway.fetch');
    expect(fetches.map((s) => s.attributes['service']).sort()).toEqual(['github', 'graph']);
    const subgraphRequests = spans.filter((s) => s.name === 'subgraph.request');
    expect(subgraphRequests.map((s) => s.attributes['cg.subgraph']).sort()).toEqual(['github', 'graph']);
    for (const s of subgraphRequests) {
      expect(s).toMatchObject({ kind: 3, attributes: { 'http.response.status_code': 200 } });
      expect(ancestorsOf(spans, s)[0]).toBe('gateway.fetch');
    }
  });

  it('sends W3C traceparent to the subgraphs, naming the subgraph request span as parent', () => {
    const requestSpans = new Set(
      receiver.spans.filter((s) => s.traceId === traced.traceId && s.name === 'subgraph.request').map((s) => s.spanId),
    );
    for (const subgraph of [b.github, b.graph]) {
      const headers = subgraph.seen
        .map((x) => x.traceparent)
        .filter((t): t is string => t?.includes(traced.traceId) ?? false);
      expect(headers.length).toBeGreaterThan(0);
      for (const h of headers) expect(requestSpans.has(h.split('-')[2]!)).toBe(true);
    }
  });

  it('traces a prepared repeat too: the same spans around the plan, tokens from the cache', () => {
    const spans = receiver.spans.filter((s) => s.traceId === repeated.traceId);
    const operation = one(spans, (s) => s.name === 'graphql.operation', 'operation span');
    expect(operation.attributes).toMatchObject({
      'graphql.operation.name': 'BothTokens',
      'graphql.operation.type': 'query',
      'cg.pipeline': 'prepared',
    });
    expect(operation.attributes['graphql.operation.hash']).toBe(createHash('sha256').update(TRACED).digest('hex'));
    expect(spans.filter((s) => s.name === 'token.resolve').map((s) => s.attributes['cg.token.outcome'])).toEqual([
      'cache_hit',
      'cache_hit',
    ]);
    expect(spans.filter((s) => s.name === 'subgraph.request')).toHaveLength(2);
    expect(spans.filter((s) => s.name === 'gateway.fetch')).toHaveLength(2);
  });

  it('traces management mutations and consent callbacks', () => {
    const admin = receiver.spans.filter(
      (s) => s.name === 'POST /admin/graphql' && s.attributes['graphql.operation.type'] === 'mutation',
    );
    expect(admin.length).toBeGreaterThanOrEqual(2);
    const callbacks = receiver.spans.filter((s) => s.name === 'GET /oauth/callback');
    expect(callbacks).toHaveLength(2);
    for (const c of callbacks) {
      expect(c.attributes['http.response.status_code']).toBe(302);
      const exchange = one(
        childrenOf(receiver.spans, c).flatMap((x) => [x, ...childrenOf(receiver.spans, x)]),
        (s) => s.name === 'oauth.token_request',
        'code exchange',
      );
      expect(exchange.attributes).toMatchObject({
        'oauth.grant_type': 'authorization_code',
        'http.response.status_code': 200,
      });
    }
    expect(receiver.spans.filter((s) => s.name === 'GET /oauth/login/:token')).toHaveLength(2);
  });

  it('never exports a token, a secret, a JWT, a login link or a raw connection id in any span', () => {
    expect(receiver.spans.length).toBeGreaterThan(30);
    const accessTokens = [...b.github.seen, ...b.graph.seen].flatMap((x) =>
      x.authorization ? [x.authorization.replace(/^Bearer /, '')] : [],
    );
    expect(accessTokens.length).toBeGreaterThan(0);
    const secrets = [
      jwt,
      ADMIN_KEY,
      oidcProviderInput('github-01', b.authGithub).clientSecret,
      oidcProviderInput('graph-01', b.authGraph).clientSecret,
      ...accessTokens,
      ...loginLinks,
      ...loginLinks.map((l) => new URL(l).pathname.split('/').at(-1)!),
    ];
    expect(loginLinks).toHaveLength(2);
    for (const span of receiver.spans) {
      for (const value of stringsOf(span)) {
        for (const secret of secrets) expect(value.includes(secret), `${span.name} holds a secret`).toBe(false);
        // Any JWT (three base64url parts starting with a JSON header), bearer value, or OAuth code/state.
        expect(value, `${span.name}: ${value}`).not.toMatch(
          /eyJ[\w-]+\.[\w-]+\.[\w-]*|Bearer |[?&](code|state|refresh_token|access_token)=/,
        );
      }
      for (const [key, value] of Object.entries(span.attributes))
        if (key.startsWith('cg.connection')) expect(value).not.toBe('alice');
    }
  });
});
