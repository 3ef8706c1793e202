/**
 * OpenTelemetry spans of the gateway's own work, through `@opentelemetry/api` only: without an SDK
 * registered (src/observability/otel.ts loads one only when OTEL_* asks for it) every span is the
 * API's no-op, and attribute work is skipped because nothing records.
 *
 * What a span may hold: names, ids of providers and subgraphs, outcomes, status codes. Never a
 * token, a secret, a JWT, a login link, a raw connection id (it is often a user's `sub`: see
 * connectionRef) or an error message from outside (an identity provider's may echo input).
 */
import { createHmac, randomBytes } from 'node:crypto';
import {
  context,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
import { isGatewayError } from '../errors.js';

export const TRACER_NAME = 'credential-gateway';

const tracer = trace.getTracer(TRACER_NAME);

/** Attribute names of the gateway's own spans (the `cg.` ones are ours; the rest follow OTel semantic conventions). */
export const ATTR = Object.freeze({
  operationName: 'graphql.operation.name',
  operationType: 'graphql.operation.type',
  operationHash: 'graphql.operation.hash',
  pipeline: 'cg.pipeline',
  providerId: 'cg.provider.id',
  connectionRef: 'cg.connection.ref',
  subgraph: 'cg.subgraph',
  tokenOutcome: 'cg.token.outcome',
  callerOutcome: 'cg.caller.outcome',
  callerIssuer: 'cg.caller.issuer',
  grantType: 'oauth.grant_type',
  httpStatus: 'http.response.status_code',
  httpMethod: 'http.request.method',
  httpRoute: 'http.route',
  errorCode: 'error.type',
  adminOperation: 'cg.admin.operation',
  consentOutcome: 'cg.consent.outcome',
});

export type TokenOutcome = 'cache_hit' | 'store' | 'refresh' | 'denied' | 'error';

/**
 * A stand-in for a connection id that correlates spans of one process without naming anyone: an
 * HMAC under a key drawn at start (a plain hash of a `sub` could be reversed by guessing subs).
 */
const CONNECTION_REF_KEY = randomBytes(32);
const CONNECTION_REF_HEX_CHARS = 16;

export function connectionRef(providerId: string, connectionId: string): string {
  return createHmac('sha256', CONNECTION_REF_KEY)
    .update(providerId)
    .update('\0')
    .update(connectionId)
    .digest('hex')
    .slice(0, CONNECTION_REF_HEX_CHARS);
}

/** The code of a failure, never its message. */
function errorType(e: unknown): string {
  return isGatewayError(e) ? e.code : 'INTERNAL_SERVER_ERROR';
}

export interface SpanOptions {
  readonly kind?: SpanKind;
  readonly attributes?: Attributes;
  /** Parent context (a remote one from `traceparent`); default: the active one. */
  readonly parent?: Context;
}

/**
 * Runs `fn` inside an active span and ends it. A throw marks the span failed with the error's code
 * (as `error.type`), never its message or stack.
 */
export function inSpan<T>(name: string, options: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  const { parent = context.active(), kind = SpanKind.INTERNAL, attributes } = options;
  return tracer.startActiveSpan(name, { kind, ...(attributes && { attributes }) }, parent, async (span) => {
    try {
      return await fn(span);
    } catch (e) {
      span.setAttribute(ATTR.errorCode, errorType(e));
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw e;
    } finally {
      span.end();
    }
  });
}

/** Marks a span failed without a throw (an answer that carries the error instead). */
export function markFailed(span: Span, code: string): void {
  span.setAttribute(ATTR.errorCode, code);
  span.setStatus({ code: SpanStatusCode.ERROR });
}

/** The span of the code running now (a no-op one when nothing records). */
export function activeSpan(): Span | undefined {
  return trace.getActiveSpan();
}

/** The caller's W3C trace context (`traceparent`, `tracestate`), to continue its trace. */
export function remoteContext(headers: Readonly<Record<string, string | string[] | undefined>>): Context {
  return propagation.extract(context.active(), headers);
}

/** Adds the active span's `traceparent` (and `tracestate`) to outgoing headers. */
export function injectTraceContext(headers: Record<string, string>): void {
  propagation.inject(context.active(), headers);
}

export { SpanKind };
export type { Span };
