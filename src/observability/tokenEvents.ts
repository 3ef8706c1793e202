/** The token machinery's events (src/tokens/events.ts) turned into metrics and audit lines. */
import type { ConnectionKey } from '../domain/ids.js';
import type { ProviderCallKind, ProviderCallOutcome, TokenEvents, TokenUse } from '../tokens/events.js';
import type { AuditLog } from './audit.js';
import type { GatewayMetrics } from './gatewayMetrics.js';

export function createObservedTokenEvents(metrics: GatewayMetrics, audit: AuditLog): TokenEvents {
  // Connection keys are deliberately unused: connection ids are unbounded and never become labels.
  return Object.freeze({
    cacheHit(_key: ConnectionKey): void {
      metrics.tokenCacheHits.inc();
    },
    cacheMiss(_key: ConnectionKey): void {
      metrics.tokenCacheMisses.inc();
    },
    providerCall(_key: ConnectionKey, kind: ProviderCallKind, outcome: ProviderCallOutcome, durationMs: number): void {
      metrics.providerCalls.inc({ kind, outcome });
      metrics.providerCallDuration.observe({ kind }, durationMs / 1000);
    },
    tokenUse(use: TokenUse): void {
      metrics.tokenUses.inc({ outcome: use.outcome });
      audit.tokenUse(use);
    },
  });
}
