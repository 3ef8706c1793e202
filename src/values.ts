/**
 * Small rules about plain values that every layer uses: one home each, so a fix lands once.
 * This module imports nothing.
 */

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Freezes `v` and everything reachable from it. */
export function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}

/**
 * A control character (C0, DEL or C1). No id, name or link token holds one, and U+0000 reaching
 * PostgreSQL would fail the query (a 500 where a 404 or a 400 is due).
 */
export const CONTROL_CHARACTER = /\p{Cc}/u;

export function hasControlCharacter(value: string): boolean {
  return CONTROL_CHARACTER.test(value);
}

/** Escapes the five characters that matter in HTML text and attribute values. */
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** `value` parsed as an absolute URL, or null. */
export function parseUrl(value: string): URL | null {
  try {
    return new URL(value);
  } catch {
    return null;
  }
}

/** https, or http when the deployment allows plain http (tests and local development). */
export function isWebScheme(url: URL, allowInsecureHttp: boolean): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && allowInsecureHttp);
}

/** `value` as an https URL (or http when allowed), or null. */
export function webUrl(value: string, allowInsecureHttp: boolean): URL | null {
  const url = parseUrl(value);
  return url !== null && isWebScheme(url, allowInsecureHttp) ? url : null;
}
