/**
 * The login and consent pages of the demo authorization server. Plain HTML forms, so that a
 * person, headless Chromium (test/support/browser.ts) and plain HTTP can all fill them in; the
 * selectors those rely on are `data-interaction` on <body> and the ids of the controls.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { escapeHtml } from '../values.js';
import { readBody } from '../server/httpUtil.js';

const STYLE =
  'body{font:16px system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}input,button{font:inherit;margin:.25rem 0}input{display:block;width:100%}';

function page(interaction: 'login' | 'consent', displayName: string, body: string): string {
  const name = escapeHtml(displayName);
  return `<!doctype html><html><head><meta charset="utf-8"><title>${name}: ${interaction}</title><style>${STYLE}</style></head><body data-interaction="${interaction}"><h1>${name}</h1>${body}</body></html>`;
}

export interface LoginPage {
  readonly uid: string;
  readonly displayName: string;
  /** Shown above the form after a refused sign-in. */
  readonly error: string | null;
  /** True when any login and password sign in (the demo's accounts are made up). */
  readonly anyPassword: boolean;
}

export function loginPage(p: LoginPage): string {
  return page(
    'login',
    p.displayName,
    `${p.error === null ? '' : `<p id="error">${escapeHtml(p.error)}</p>`}
<form method="post" action="/interaction/${escapeHtml(p.uid)}/login">
  <label for="login">Login</label><input id="login" name="login" type="text" autocomplete="off" required>
  <label for="password">Password</label><input id="password" name="password" type="password" autocomplete="off">
  ${p.anyPassword ? '<p>Any login signs in, with any password: these accounts are made up.</p>' : ''}
  <button id="submit" type="submit">Sign in</button>
</form>`,
  );
}

export function consentPage(uid: string, displayName: string, clientId: string, scopes: readonly string[]): string {
  return page(
    'consent',
    displayName,
    `<p><b>${escapeHtml(clientId)}</b> asks for: ${escapeHtml(scopes.join(' ') || '(no scopes)')}</p>
<form method="post" action="/interaction/${escapeHtml(uid)}/confirm"><button id="confirm" type="submit">Allow</button></form>
<form method="post" action="/interaction/${escapeHtml(uid)}/deny"><button id="deny" type="submit">Deny</button></form>`,
  );
}

/** A login form is a few hundred bytes; anything far larger is not one. */
const MAX_FORM_BYTES = 16 * 1024;

export async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new URLSearchParams(await readBody(req, MAX_FORM_BYTES));
}

export function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}
