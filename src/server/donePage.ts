/**
 * Where a browser lands after consent started from a runtime error (`extensions.loginUrl`), when no
 * other post-login URL applies. With `consent=<id>` the tokens wait for the owner's confirmation:
 * the page says how to confirm and, when a script opened it, tells the opener through
 * `postMessage`, addressed to each allowlisted origin in turn (a message is delivered only when
 * the opener is at the origin it is addressed to; never `"*"`). No inline script: the page loads
 * done.js from the gateway under a strict CSP.
 */
import { isSecretShaped } from '../consent/secrets.js';
import type { RouteHandler } from './router.js';
import { escapeHtml } from '../values.js';

export const CONSENT_DONE_PATH = '/oauth/done';
export const CONSENT_DONE_SCRIPT_PATH = '/oauth/done.js';
export const CONSENT_MESSAGE_TYPE = 'credential-gateway:consent';

const PAGE_CSP = "default-src 'none'; script-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Reads what the page was rendered with; posts only to `window.opener`, once per allowlisted origin. */
const DONE_SCRIPT = `(function () {
  var body = document.body;
  var consent = body.getAttribute('data-consent');
  if (!consent || !window.opener) return;
  var origins = JSON.parse(body.getAttribute('data-origins') || '[]');
  var message = { type: ${JSON.stringify(CONSENT_MESSAGE_TYPE)}, consent: consent, status: 'pending' };
  for (var i = 0; i < origins.length; i++) window.opener.postMessage(message, origins[i]);
})();
`;

export interface DonePageOptions {
  readonly publicUrl: string;
  /** Origins an opener may be told the consent id at: consent.allowedRedirectOrigins and the gateway's own. */
  readonly messageOrigins: readonly string[];
}

function pendingText(publicUrl: string, consent: string): string {
  const curl = `curl -X POST ${publicUrl}/oauth/confirm -H 'authorization: Bearer <your JWT>' -H 'content-type: application/json' -d '{"consent":"${consent}"}'`;
  return (
    '<p>Consent is done. The connection is used only once its owner confirms it: your app does that for you; ' +
    'if it does not, confirm within 10 minutes with the JWT you query the gateway with:</p>' +
    `<pre>${escapeHtml(curl)}</pre>`
  );
}

export function consentDonePage(options: DonePageOptions): RouteHandler {
  const origins = escapeHtml(JSON.stringify(options.messageOrigins));
  return async (_req, res, url) => {
    const error = url.searchParams.get('error');
    const consentParam = url.searchParams.get('consent');
    const consent = error === null && isSecretShaped(consentParam) ? consentParam : null;
    const title = error !== null ? 'Not connected' : consent !== null ? 'Confirm to connect' : 'Connected';
    const text =
      error !== null
        ? `<p>Consent did not complete (${escapeHtml(error)}): ${escapeHtml(url.searchParams.get('error_description') ?? '')}</p>`
        : consent !== null
          ? pendingText(options.publicUrl, consent)
          : '<p>Consent is done. You can close this window and run your query again.</p>';
    const data = consent === null ? '' : ` data-consent="${consent}" data-origins="${origins}"`;
    res.writeHead(error === null ? 200 : 400, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy': PAGE_CSP,
    });
    res.end(
      `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title><script src="done.js" defer></script></head>` +
        `<body${data}><h1>${title}</h1>${text}</body></html>`,
    );
  };
}

export const consentDoneScript: RouteHandler = async (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' });
  res.end(DONE_SCRIPT);
};
