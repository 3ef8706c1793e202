/**
 * Serves the browser apps built from web/ (see web/vite.config.ts) from web/dist: each app's page at
 * `/<name>` and their shared, content-hashed assets at `/assets/<file>`. The pages run under a
 * strict Content-Security-Policy: only the gateway's own scripts, styles and fetches, no inline
 * code, no framing. Nothing is read outside web/dist, and only flat file names are served.
 */
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GatewayError } from '../errors.js';
import { sendJson } from './httpUtil.js';
import type { Route, RouteHandler } from './router.js';

/** Where `npm run build:web` (run by `npm start` and `npm test`) writes the apps. */
export const WEB_DIST_DIR = fileURLToPath(new URL('../../web/dist/', import.meta.url));

export const WEB_CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/** Hashed names change with their content, so a browser may keep them for good. */
const IMMUTABLE_CACHE = 'public, max-age=31536000, immutable';

const CONTENT_TYPES: Readonly<Record<string, string>> = Object.freeze({
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
});

/** What Vite writes into assets/: `name-hash.ext`. No separators, no leading dot, nothing else. */
const ASSET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;
/** An app's directory name under web/. */
const APP_NAME = /^[a-z][a-z0-9-]{0,39}$/;

export interface WebAppOptions {
  /** Default WEB_DIST_DIR. */
  readonly distDir?: string;
}

function notBuilt(name: string): GatewayError {
  return new GatewayError(
    'NOT_FOUND',
    `the ${name} page is not built: run "npm run build:web" (npm start and npm test do)`,
  );
}

async function readOrNull(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EISDIR') return null;
    throw e;
  }
}

function pageHandler(name: string, distDir: string): RouteHandler {
  const file = join(distDir, name, 'index.html');
  return async (req, res) => {
    const html = await readOrNull(file);
    if (html === null) return sendJson(res, notBuilt(name));
    res.writeHead(200, {
      'content-type': CONTENT_TYPES['.html']!,
      'content-length': String(html.length),
      // The page names the current hashed assets: always ask again.
      'cache-control': 'no-cache',
      'content-security-policy': WEB_CONTENT_SECURITY_POLICY,
      'cross-origin-opener-policy': 'same-origin-allow-popups',
    });
    res.end(req.method === 'HEAD' ? undefined : html);
  };
}

/** The page of the app built from web/<name>/, at `/<name>` (and `/<name>/`). */
export function webAppRoutes(name: string, options: WebAppOptions = {}): Route[] {
  if (!APP_NAME.test(name)) throw new Error(`web app name ${JSON.stringify(name)} must match ${APP_NAME}`);
  const handler = pageHandler(name, options.distDir ?? WEB_DIST_DIR);
  return [
    { methods: ['GET', 'HEAD'], path: `/${name}`, handler },
    { methods: ['GET', 'HEAD'], path: `/${name}/`, handler },
  ];
}

/** The assets every app shares, at `/assets/<file>`. */
export function webAssetRoute(options: WebAppOptions = {}): Route {
  const dir = join(options.distDir ?? WEB_DIST_DIR, 'assets');
  return {
    methods: ['GET', 'HEAD'],
    path: '/assets/:file',
    handler: async (req, res, _url, { file }) => {
      const type = CONTENT_TYPES[extname(file!)];
      const body = ASSET_NAME.test(file!) && type !== undefined ? await readOrNull(join(dir, file!)) : null;
      if (body === null) return sendJson(res, new GatewayError('NOT_FOUND', 'no such asset'));
      res.writeHead(200, {
        'content-type': type!,
        'content-length': String(body.length),
        'cache-control': IMMUTABLE_CACHE,
        'content-security-policy': WEB_CONTENT_SECURITY_POLICY,
        // Pages load their modules with `crossorigin`: same origin, but say it for CORS-mode fetches.
        'cross-origin-resource-policy': 'same-origin',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    },
  };
}
