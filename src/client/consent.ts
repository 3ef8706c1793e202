/**
 * The framework-free core of the consent kit (docs/design.md "Consent"). A field failed with CONNECTION_NOT_CONNECTED or
 * REAUTHORIZATION_REQUIRED and an `extensions.loginUrl`: open that link in a popup, wait for the
 * gateway's done page to post the consent id back (from the gateway's origin and that popup only),
 * then confirm it with the user's own bearer JWT (`POST /oauth/confirm`). Each step is reported.
 *
 *   button.onclick = async () => {
 *     const outcome = await openConsent(loginUrl, { gatewayOrigin: 'https://gw.example.com', getToken: () => jwt });
 *     if (outcome.status === 'confirmed') rerunQuery();
 *   };
 *
 * Browsers let a page open a popup only right after a click: call openConsent from a click
 * handler, or pass `prompt` to requestConsent and call `open()` from your own button.
 * No dependency, no storage: the JWT is asked for when it is needed and never kept.
 */

/** The codes whose `extensions.loginUrl` a user can act on. */
export const CONSENT_ERROR_CODES: readonly string[] = Object.freeze([
  'CONNECTION_NOT_CONNECTED',
  'REAUTHORIZATION_REQUIRED',
]);
/** What the gateway's done page posts to the window that opened it. */
export const CONSENT_MESSAGE_TYPE = 'credential-gateway:consent';
export const CONFIRM_PATH = '/oauth/confirm';
/** As long as the gateway keeps a pending consent (10 minutes). */
export const DEFAULT_CONSENT_TIMEOUT_MS = 10 * 60_000;
/** How often a closed popup is looked for (browsers fire no event for it). */
const POPUP_POLL_MS = 250;
const POPUP_FEATURES = 'popup,width=520,height=680';

export type ConsentStatus = 'waiting' | 'confirmed' | 'cancelled' | 'failed';

/** Why a consent failed: the gateway's code from `/oauth/confirm`, or one of the kit's own. */
export type ConsentFailureCode =
  | 'POPUP_BLOCKED'
  | 'TIMEOUT'
  | 'UNTRUSTED_LOGIN_URL'
  | 'NETWORK_ERROR'
  | 'UNAUTHENTICATED'
  | 'ACCESS_DENIED'
  | 'NOT_FOUND'
  | (string & {});

/** One step of a consent, as reported to `onProgress`; the last one is also what the promise resolves with. */
export interface ConsentProgress {
  readonly status: ConsentStatus;
  readonly loginUrl: string;
  /** The subgraph whose field asked for consent, when known (`extensions.serviceName`). */
  readonly service?: string;
  /** `failed` only. */
  readonly code?: ConsentFailureCode;
  readonly message?: string;
  /** `confirmed` only: the connection that is now connected. */
  readonly providerId?: string;
  readonly connectionId?: string;
}

/** A consent the user has to start: show it, and call `open()` from a click (or `cancel()`). */
export interface ConsentPrompt {
  readonly loginUrl: string;
  readonly service?: string;
  /** Opens the popup; call it synchronously inside a click or key handler. */
  open(): void;
  cancel(): void;
}

export interface ConsentOptions {
  /** Origin of the gateway that hands out login links and confirms consents, e.g. `https://gw.example.com`. */
  readonly gatewayOrigin: string;
  /** The signed-in user's bearer JWT (the one their queries carry); null when signed out. */
  getToken(): string | null | Promise<string | null>;
  onProgress?(progress: ConsentProgress): void;
  /** Default DEFAULT_CONSENT_TIMEOUT_MS. */
  readonly timeoutMs?: number;
  /** Default: `popup,width=520,height=680`. */
  readonly popupFeatures?: string;
  /** Default: the global window and fetch. */
  readonly window?: Window;
  readonly fetch?: typeof fetch;
}

export interface ConsentRequestOptions extends ConsentOptions {
  /** Your own button or modal: called instead of opening the popup at once. */
  prompt?(request: ConsentPrompt): void;
}

/** A consent the user can act on, read from a GraphQL error. */
export interface ConsentNeeded {
  readonly loginUrl: string;
  readonly code: string;
  readonly service?: string;
}

interface ErrorLike {
  readonly extensions?: Readonly<Record<string, unknown>> | null;
}

/** The distinct consents a result's errors ask for, in order (one per login link). */
export function consentsNeeded(errors: readonly ErrorLike[] | null | undefined): ConsentNeeded[] {
  const seen = new Map<string, ConsentNeeded>();
  for (const e of errors ?? []) {
    const ext = e.extensions ?? {};
    const code = ext['code'];
    const loginUrl = ext['loginUrl'];
    if (
      typeof code !== 'string' ||
      !CONSENT_ERROR_CODES.includes(code) ||
      typeof loginUrl !== 'string' ||
      seen.has(loginUrl)
    )
      continue;
    const service = typeof ext['serviceName'] === 'string' ? ext['serviceName'] : undefined;
    seen.set(loginUrl, { loginUrl, code, ...(service !== undefined && { service }) });
  }
  return [...seen.values()];
}

function originOf(url: string): string | null {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

/** Resolves with the consent id the done page posts, or a failure/cancel; never rejects. */
function awaitMessage(
  win: Window,
  popup: Window,
  gatewayOrigin: string,
  timeoutMs: number,
): Promise<{ consent: string } | { status: 'cancelled' } | { code: 'TIMEOUT' }> {
  return new Promise((resolve) => {
    const finish = (outcome: { consent: string } | { status: 'cancelled' } | { code: 'TIMEOUT' }): void => {
      win.removeEventListener('message', onMessage);
      win.clearInterval(poll);
      win.clearTimeout(timer);
      resolve(outcome);
    };
    const onMessage = (event: MessageEvent): void => {
      // Only the gateway's own page, in the popup this call opened, may hand over a consent id.
      if (event.origin !== gatewayOrigin || event.source !== popup) return;
      const data = event.data as { type?: unknown; consent?: unknown; status?: unknown } | null;
      if (data?.type !== CONSENT_MESSAGE_TYPE || data.status !== 'pending' || typeof data.consent !== 'string') return;
      finish({ consent: data.consent });
    };
    const poll = win.setInterval(() => {
      if (popup.closed) finish({ status: 'cancelled' });
    }, POPUP_POLL_MS);
    const timer = win.setTimeout(() => finish({ code: 'TIMEOUT' }), timeoutMs);
    win.addEventListener('message', onMessage);
  });
}

async function confirm(options: ConsentOptions, consent: string, base: ConsentProgress): Promise<ConsentProgress> {
  const token = await options.getToken();
  if (!token)
    return { ...base, status: 'failed', code: 'UNAUTHENTICATED', message: 'no signed-in user to confirm the consent' };
  const doFetch = options.fetch ?? fetch;
  try {
    const res = await doFetch(`${options.gatewayOrigin}${CONFIRM_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ consent }),
    });
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (res.ok && body['status'] === 'CONNECTED')
      return {
        ...base,
        status: 'confirmed',
        providerId: String(body['providerId']),
        connectionId: String(body['connectionId']),
      };
    const code = typeof body['error'] === 'string' ? body['error'] : `HTTP_${res.status}`;
    return {
      ...base,
      status: 'failed',
      code,
      message: typeof body['message'] === 'string' ? body['message'] : 'the gateway refused the confirmation',
    };
  } catch (e) {
    return { ...base, status: 'failed', code: 'NETWORK_ERROR', message: (e as Error).message };
  }
}

/**
 * Opens `loginUrl` in a popup now (call it from a click handler), waits for the consent, confirms it
 * as the signed-in user, and resolves with the last step: confirmed, cancelled (popup closed) or
 * failed (with a code). Never rejects.
 */
export function openConsent(loginUrl: string, options: ConsentOptions, service?: string): Promise<ConsentProgress> {
  const win = options.window ?? window;
  const base: ConsentProgress = { status: 'waiting', loginUrl, ...(service !== undefined && { service }) };
  const report = (p: ConsentProgress): ConsentProgress => {
    options.onProgress?.(p);
    return p;
  };
  // The JWT goes to gatewayOrigin only, so the link must come from there too.
  if (originOf(loginUrl) !== options.gatewayOrigin)
    return Promise.resolve(
      report({
        ...base,
        status: 'failed',
        code: 'UNTRUSTED_LOGIN_URL',
        message: `the login link is not on ${options.gatewayOrigin}`,
      }),
    );
  const popup = win.open(loginUrl, '_blank', options.popupFeatures ?? POPUP_FEATURES);
  if (!popup)
    return Promise.resolve(
      report({ ...base, status: 'failed', code: 'POPUP_BLOCKED', message: 'the browser blocked the consent popup' }),
    );
  report(base);
  return (async () => {
    const outcome = await awaitMessage(
      win,
      popup,
      options.gatewayOrigin,
      options.timeoutMs ?? DEFAULT_CONSENT_TIMEOUT_MS,
    );
    if ('status' in outcome) return report({ ...base, status: 'cancelled', message: 'the consent window was closed' });
    popup.close();
    if ('code' in outcome)
      return report({ ...base, status: 'failed', code: 'TIMEOUT', message: 'no consent arrived in time' });
    return report(await confirm(options, outcome.consent, base));
  })();
}

/** Like openConsent, but with `prompt` the popup opens only when the app's button calls `open()`. */
export function requestConsent(needed: ConsentNeeded, options: ConsentRequestOptions): Promise<ConsentProgress> {
  if (!options.prompt) return openConsent(needed.loginUrl, options, needed.service);
  const prompt = options.prompt;
  return new Promise((resolve) => {
    let settled = false;
    const once = (run: () => Promise<ConsentProgress> | ConsentProgress): void => {
      if (settled) return;
      settled = true;
      void Promise.resolve(run()).then(resolve);
    };
    prompt({
      loginUrl: needed.loginUrl,
      ...(needed.service !== undefined && { service: needed.service }),
      open: () => once(() => openConsent(needed.loginUrl, options, needed.service)),
      cancel: () =>
        once(() => {
          const p: ConsentProgress = {
            status: 'cancelled',
            loginUrl: needed.loginUrl,
            ...(needed.service !== undefined && { service: needed.service }),
            message: 'the user declined',
          };
          options.onProgress?.(p);
          return p;
        }),
    });
  });
}
