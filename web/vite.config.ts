/**
 * Builds every browser app under web/ (one directory with an index.html each: web/demo, ...)
 * into web/dist/, which the gateway serves itself (src/server/webApps.ts). Output is plain
 * files: hashed assets under /assets/, no inline script or style, nothing from a CDN.
 *
 * Add an app: create web/<name>/index.html (+ its main.tsx) and register its route in
 * src/server/wire.ts with webAppRoutes('<name>', ...). Nothing here needs to change.
 */
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { defineConfig } from 'vite';

const ROOT = fileURLToPath(new URL('.', import.meta.url));
const SKIP = new Set(['dist', 'shared', 'node_modules']);

/** Each web/<name>/index.html is one page, served by the gateway at /<name>. */
const pages = Object.fromEntries(
  readdirSync(ROOT, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !SKIP.has(d.name) && existsSync(join(ROOT, d.name, 'index.html')))
    .map((d) => [d.name, join(ROOT, d.name, 'index.html')]),
);

export default defineConfig({
  root: ROOT,
  base: '/',
  logLevel: 'warn',
  // Types are checked by `tsc -p web`; the build only strips them.
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: join(ROOT, 'dist'),
    emptyOutDir: true,
    assetsDir: 'assets',
    // A data: URI would need a looser Content-Security-Policy: every asset is a file.
    assetsInlineLimit: 0,
    // The polyfill is not needed by the browsers we target and keeps the pages free of injected code.
    modulePreload: { polyfill: false },
    target: 'es2022',
    reportCompressedSize: false,
    rollupOptions: { input: pages },
  },
});
