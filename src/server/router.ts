/** A tiny path router: exact paths and `:param` segments; every failure leaves as `{error, message}`. */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { asGatewayError, GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import { ATTR, inSpan, markFailed, remoteContext, SpanKind } from '../tracing/spans.js';
import { sendJson } from './httpUtil.js';
import { hasControlCharacter } from '../values.js';

export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  params: Readonly<Record<string, string>>,
) => Promise<void>;

export interface Route {
  readonly methods: readonly string[];
  readonly path: string;
  readonly handler: RouteHandler;
}

interface CompiledRoute extends Route {
  readonly pattern: RegExp;
  readonly names: readonly string[];
}

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const source = route.path
    .split('/')
    .map((seg) => {
      if (!seg.startsWith(':')) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(seg.slice(1));
      return '([^/]+)';
    })
    .join('/');
  return { ...route, pattern: new RegExp(`^${source}$`), names };
}

const SECURITY_HEADERS: readonly (readonly [string, string])[] = [
  ['x-content-type-options', 'nosniff'],
  ['referrer-policy', 'no-referrer'],
  ['x-frame-options', 'DENY'],
];

const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

export function createRouter(routes: readonly Route[], logger: Logger): RequestListener {
  const compiled = routes.map(compile);
  return (req, res) => {
    for (const [k, v] of SECURITY_HEADERS) res.setHeader(k, v);
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    // Logged instead of the path itself: a path can hold a login-link token.
    let matched: string | null = null;
    const run = async (): Promise<void> => {
      for (const route of compiled) {
        const m = route.pattern.exec(url.pathname);
        if (!m) continue;
        matched = route.path;
        if (!route.methods.includes(req.method ?? 'GET')) {
          res.setHeader('allow', route.methods.join(', '));
          return sendJson(res, { error: 'METHOD_NOT_ALLOWED', message: `${req.method} is not allowed here` }, 405);
        }
        if (route.names.length === 0) return route.handler(req, res, url, NO_PARAMS);
        let params: Record<string, string>;
        try {
          params = Object.fromEntries(route.names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
        } catch {
          return sendJson(res, new GatewayError('BAD_USER_INPUT', 'malformed path'));
        }
        if (Object.values(params).some((p) => hasControlCharacter(p)))
          return sendJson(res, new GatewayError('BAD_USER_INPUT', 'malformed path'));
        return route.handler(req, res, url, params);
      }
      sendJson(res, new GatewayError('NOT_FOUND', `no route for ${url.pathname}`));
    };
    // One server span per request, continuing the caller's trace; named by route pattern, never
    // the raw path (a login link's path holds its token).
    void inSpan('http.request', { kind: SpanKind.SERVER, parent: remoteContext(req.headers) }, async (span) => {
      await run().catch((e: unknown) => {
        // The client hung up before its body arrived: nothing is wrong here and no one is left to answer.
        if (req.readableAborted) {
          logger.warn({ route: matched }, 'client disconnected before its request was read');
          res.destroy();
          return;
        }
        const err = asGatewayError(e);
        if (err.code === 'INTERNAL_SERVER_ERROR') logger.error({ err: e, route: matched }, 'request failed');
        if (res.headersSent) res.destroy();
        else sendJson(res, err);
      });
      if (!span.isRecording()) return;
      const method = req.method ?? 'GET';
      span.updateName(`${method} ${matched ?? 'unmatched'}`);
      span.setAttributes({
        [ATTR.httpMethod]: method,
        [ATTR.httpRoute]: matched ?? 'unmatched',
        [ATTR.httpStatus]: res.statusCode,
      });
      if (res.statusCode >= 500) markFailed(span, String(res.statusCode));
    });
  };
}
