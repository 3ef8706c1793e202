/**
 * What the token machinery reports as it works: metrics and audit subscribe here, so neither the
 * resolver nor the token source knows about Prometheus or log formats.
 */
import type { ErrorCode } from '../errors.js';
import type { ConnectionKey } from '../domain/ids.js';

export type ProviderCallKind = 'refresh' | 'client_credentials';
export type ProviderCallOutcome = 'success' | 'reauthorization_required' | 'provider_unavailable' | 'error';
/**
 * Who waited on a provider call: `request` when any caller's request (a query, the token endpoint,
 * an admin's testConnection) did, `background` when only the proactive refresher did.
 */
export type ProviderCallOrigin = 'request' | 'background';

export interface TokenUse extends ConnectionKey {
  /** Who asked: the caller's issuer and subject, or the gateway itself. */
  readonly principal: string;
  /** The subgraph the token was for; absent for the token endpoint. */
  readonly subgraph?: string;
  readonly outcome: 'granted' | ErrorCode;
}

export interface TokenEvents {
  cacheHit(key: ConnectionKey): void;
  cacheMiss(key: ConnectionKey): void;
  /** One call to an identity provider's token endpoint and how it ended. */
  providerCall(
    key: ConnectionKey,
    kind: ProviderCallKind,
    outcome: ProviderCallOutcome,
    durationMs: number,
    origin: ProviderCallOrigin,
  ): void;
  /** Every access decision, for the audit trail (never the token). */
  tokenUse(use: TokenUse): void;
}

export const NO_TOKEN_EVENTS: TokenEvents = Object.freeze({
  cacheHit: () => {},
  cacheMiss: () => {},
  providerCall: () => {},
  tokenUse: () => {},
});

/** Every listener hears every event, in order (metrics and audit beside a test's or a bench's own counters). */
export function teeTokenEvents(...all: readonly TokenEvents[]): TokenEvents {
  return Object.freeze({
    cacheHit: (key: ConnectionKey) => {
      for (const e of all) e.cacheHit(key);
    },
    cacheMiss: (key: ConnectionKey) => {
      for (const e of all) e.cacheMiss(key);
    },
    providerCall: (
      key: ConnectionKey,
      kind: ProviderCallKind,
      outcome: ProviderCallOutcome,
      durationMs: number,
      origin: ProviderCallOrigin,
    ) => {
      for (const e of all) e.providerCall(key, kind, outcome, durationMs, origin);
    },
    tokenUse: (use: TokenUse) => {
      for (const e of all) e.tokenUse(use);
    },
  });
}
