/**
 * CORS for the endpoints browser apps call from other origins (docs/web.md):
 * `/graphql`, `/tokens/...`, `/oauth/confirm`. Only configured origins (`server.cors.origins`)
 * get CORS headers; every other origin gets none, so its scripts cannot read the answer. Callers
 * authenticate with a bearer JWT, never a cookie, so credentials mode is never allowed. This does
 * not replace Apollo's CSRF prevention on /graphql: a "simple" cross-site request (no preflight)
 * still reaches Apollo, which refuses it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Route } from './router.js';

/** Paths whose routes answer cross-origin calls (others never do, whatever the configuration). */
export const CORS_PATHS: ReadonlySet<string> = new Set([
  '/graphql',
  '/tokens/:providerId/:connectionId',
  '/oauth/confirm',
]);

/** How long a browser may reuse a preflight answer. */
const PREFLIGHT_MAX_AGE_SECONDS = 600;
/** Request header names a preflight may ask for (RFC 9110 tokens); anything else is not echoed. */
const HEADER_LIST = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:\s*,\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/;
/** Answer headers a script may read beside the CORS-safelisted ones. */
const EXPOSED_HEADERS = 'retry-after';

export interface CorsPolicy {
  /** Exact origins, or `*` for any. */
  readonly origins: readonly string[];
}

/** The `Access-Control-Allow-Origin` value for this request, or null: no CORS headers. */
function allowedOrigin(policy: CorsPolicy, req: IncomingMessage): string | null {
  const origin = req.headers.origin;
  if (origin === undefined) return null;
  if (policy.origins.includes('*')) return '*';
  return policy.origins.includes(origin) ? origin : null;
}

function preflight(policy: CorsPolicy, methods: readonly string[], req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('vary', 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
  const allow = allowedOrigin(policy, req);
  const method = req.headers['access-control-request-method'];
  const headers = req.headers['access-control-request-headers'];
  if (
    allow !== null &&
    method !== undefined &&
    methods.includes(method) &&
    (headers === undefined || HEADER_LIST.test(headers))
  ) {
    res.setHeader('access-control-allow-origin', allow);
    res.setHeader('access-control-allow-methods', methods.join(', '));
    if (headers !== undefined) res.setHeader('access-control-allow-headers', headers);
    res.setHeader('access-control-max-age', String(PREFLIGHT_MAX_AGE_SECONDS));
  }
  res.setHeader('allow', [...methods, 'OPTIONS'].join(', '));
  res.writeHead(204, { 'cache-control': 'no-store' });
  res.end();
}

/** The route, answering preflights (OPTIONS) and marking answers readable by allowed origins. */
export function withCors(policy: CorsPolicy, route: Route): Route {
  return {
    ...route,
    methods: [...route.methods, 'OPTIONS'],
    handler: async (req, res, url, params) => {
      if (req.method === 'OPTIONS') return preflight(policy, route.methods, req, res);
      res.setHeader('vary', 'Origin');
      const allow = allowedOrigin(policy, req);
      if (allow !== null) {
        res.setHeader('access-control-allow-origin', allow);
        res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
      }
      return route.handler(req, res, url, params);
    },
  };
}

/** Every route whose path is in CORS_PATHS answers cross-origin calls under `policy`. */
export function applyCors(policy: CorsPolicy, routes: readonly Route[]): Route[] {
  return routes.map((r) => (CORS_PATHS.has(r.path) ? withCors(policy, r) : r));
}
