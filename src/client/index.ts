/**
 * `credential-gateway/client`: the consent kit for browser apps (docs/client.md).
 * The core (consent.ts) needs nothing but a browser; the Apollo Link (link.ts) needs @apollo/client 4.
 */
export {
  CONFIRM_PATH,
  CONSENT_ERROR_CODES,
  CONSENT_MESSAGE_TYPE,
  DEFAULT_CONSENT_TIMEOUT_MS,
  consentsNeeded,
  openConsent,
  requestConsent,
  type ConsentFailureCode,
  type ConsentNeeded,
  type ConsentOptions,
  type ConsentProgress,
  type ConsentPrompt,
  type ConsentRequestOptions,
  type ConsentStatus,
} from './consent.js';
export { createConsentLink, type ConsentLinkOptions } from './link.js';
