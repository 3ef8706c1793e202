/** Where a browser lands after consent started from a runtime error (`extensions.loginUrl`). */
import type { RouteHandler } from './router.js';

/** Text made safe to place in HTML, attributes included. */
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export const CONSENT_DONE_PATH = '/oauth/done';

export const consentDonePage: RouteHandler = async (_req, res, url) => {
  const error = url.searchParams.get('error');
  const title = error === null ? 'Connected' : 'Not connected';
  const text =
    error === null
      ? 'Consent is done. You can close this window and run your query again.'
      : `Consent did not complete (${escapeHtml(error)}): ${escapeHtml(url.searchParams.get('error_description') ?? '')}`;
  res.writeHead(error === null ? 200 : 400, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'",
  });
  res.end(`<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><p>${text}</p></body></html>`);
};
