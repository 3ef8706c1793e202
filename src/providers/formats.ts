/**
 * Checks of single parameter values against their catalog spec. Validation (at write time) and
 * endpoint expansion (at use time, on stored values) both run them, so a value that reached the
 * store by another path still cannot point an endpoint at a foreign host.
 */
import { isPrivateAddress, PRIVATE_NETWORK_RULE } from '../oauth/network.js';
import type { ParameterSpec } from './catalog.js';
import { hasControlCharacter, isWebScheme, parseUrl } from '../values.js';

export interface UrlOptions {
  /** `http:` URLs for local identity providers in development and tests (`oauth.allowInsecureHttp`). */
  readonly allowInsecureHttp?: boolean;
  /**
   * Refuse literal loopback, private and link-local addresses at once, with a clear message (input
   * validation, `oauth.allowPrivateNetworks` off). Host names, and every connection whatever this
   * says, are checked when connecting (src/oauth/network.ts).
   */
  readonly refusePrivateAddresses?: boolean;
}

export type ValueCheck =
  | { readonly ok: true; readonly value: string }
  | { readonly ok: false; readonly problem: string };

export const MAX_PARAMETER_VALUE_LENGTH = 2048;
const MAX_PATH_SEGMENT_LENGTH = 256;
const MAX_HOST_NAME_LENGTH = 253;

// One DNS label; no leading or trailing hyphen. Nothing else (no `/`, `@`, `:`, `%`) can slip in.
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOST_NAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`, 'i');
const HOST_LABEL = new RegExp(`^${LABEL}$`, 'i');
const PATH_SEGMENT = /^[A-Za-z0-9._~-]+$/;
// RFC 9110 token: what a header name or an authentication scheme may be (no `:`, space or CR/LF).
const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
/**
 * Headers a credential must not be sent in: they frame or route the request to the subgraph, or
 * carry the gateway's own trace context. Compared lower-cased.
 */
const RESERVED_HEADER_NAMES: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-authorization',
  'proxy-connection',
  'traceparent',
  'tracestate',
  'cookie',
]);
// Whitespace, Unicode line and paragraph separators included (control characters: see values.ts).
const WHITESPACE = /\s/u;

const ok = (value: string): ValueCheck => ({ ok: true, value });
const problem = (text: string): ValueCheck => ({ ok: false, problem: text });

export function hasWhitespaceOrControl(value: string): boolean {
  return WHITESPACE.test(value) || hasControlCharacter(value);
}

export function isHostName(value: string): boolean {
  return value.length <= MAX_HOST_NAME_LENGTH && HOST_NAME.test(value);
}

function checkUrl(value: string, options: UrlOptions, issuer: boolean): ValueCheck {
  const schemes = options.allowInsecureHttp === true ? 'an http or https URL' : 'an https URL';
  const rule = issuer
    ? `must be ${schemes} without query or fragment`
    : `must be ${schemes} without credentials or fragment`;
  if (value.length > MAX_PARAMETER_VALUE_LENGTH || hasWhitespaceOrControl(value)) return problem(rule);
  const url = parseUrl(value);
  if (url === null || !isWebScheme(url, options.allowInsecureHttp === true) || url.hostname === '')
    return problem(`must be ${schemes}`);
  if (url.username !== '' || url.password !== '' || value.includes('#')) return problem(rule);
  if (issuer && value.includes('?')) return problem(rule);
  if (options.refusePrivateAddresses === true && isPrivateAddress(url.hostname))
    return problem(`must not name a refused address: ${PRIVATE_NETWORK_RULE}`);
  return ok(value);
}

/** An absolute URL to call (webhooks): the same rule as a provider's `url` parameters. */
export function checkUrlValue(value: string, options: UrlOptions): ValueCheck {
  return checkUrl(value, options, false);
}

function checkHost(value: string, options: UrlOptions): ValueCheck {
  if (!isHostName(value)) return problem('must be a host name (letters, digits, dots and hyphens)');
  if (options.refusePrivateAddresses === true && isPrivateAddress(value))
    return problem(`must not name a refused address: ${PRIVATE_NETWORK_RULE}`);
  return ok(value.toLowerCase());
}

/** Checks one value against its spec; the value returned is the normalized one to store. */
export function checkParameterValue(spec: ParameterSpec, value: string, options: UrlOptions = {}): ValueCheck {
  if (spec.type === 'bool') {
    return value === 'true' || value === 'false' ? ok(value) : problem("must be 'true' or 'false'");
  }
  switch (spec.format) {
    case 'url':
      return checkUrl(value, options, false);
    case 'issuer':
      return checkUrl(value, options, true);
    case 'host':
      return checkHost(value, options);
    case 'hostLabel':
      return HOST_LABEL.test(value)
        ? ok(value.toLowerCase())
        : problem('must be a single host name label (letters, digits and hyphens)');
    case 'pathSegment':
      return value.length <= MAX_PATH_SEGMENT_LENGTH && PATH_SEGMENT.test(value) && value !== '.' && value !== '..'
        ? ok(value)
        : problem(`must be 1-${MAX_PATH_SEGMENT_LENGTH} characters of letters, digits and . _ ~ -`);
    case 'text':
      return value.length <= MAX_PARAMETER_VALUE_LENGTH && !hasWhitespaceOrControl(value)
        ? ok(value)
        : problem(`must be 1-${MAX_PARAMETER_VALUE_LENGTH} characters without whitespace or control characters`);
    case 'httpToken':
      return HTTP_TOKEN.test(value)
        ? ok(value)
        : problem("must be 1-64 characters of letters, digits and !#$%&'*+.^_`|~-");
    case 'headerName':
      if (!HTTP_TOKEN.test(value))
        return problem("must be a header name: 1-64 characters of letters, digits and !#$%&'*+.^_`|~-");
      return RESERVED_HEADER_NAMES.has(value.toLowerCase())
        ? problem(`must not be ${value.toLowerCase()}: that header frames or routes the request`)
        : ok(value);
  }
}
