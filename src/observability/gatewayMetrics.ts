/**
 * The gateway's metrics, by name. Every label is drawn from a bounded set: kinds and outcomes are
 * closed enums, error codes a closed set, subgraph names and route patterns come from the
 * configuration. Connection ids (unbounded, user-derived) and anything secret never become labels.
 */
import type { SupergraphStatus } from '../gateway/supergraphSource.js';
import { MetricsRegistry, type Counter, type Histogram } from './metrics.js';

export interface GatewayMetrics {
  readonly registry: MetricsRegistry;
  readonly tokenCacheHits: Counter;
  readonly tokenCacheMisses: Counter;
  /** {kind: refresh | client_credentials, outcome: success | reauthorization_required | provider_unavailable | error} */
  readonly providerCalls: Counter;
  /** {kind}; seconds spent in one call to an identity provider's token endpoint. */
  readonly providerCallDuration: Histogram;
  /** {outcome: granted | an error code} */
  readonly tokenUses: Counter;
  /** {subgraph, code} */
  readonly subgraphErrors: Counter;
  /** {route: the route's pattern, status} */
  readonly httpRequests: Counter;
  /** {pipeline: prepared | full} */
  readonly graphqlOperations: Counter;
  /** {outcome: revoked | unsupported | retried | failed} */
  readonly revocations: Counter;
  /** {outcome: delivered | retried | dead} */
  readonly webhookDeliveries: Counter;
}

export function createGatewayMetrics(registry: MetricsRegistry = new MetricsRegistry()): GatewayMetrics {
  return Object.freeze({
    registry,
    tokenCacheHits: registry.counter(
      'cg_token_cache_hits_total',
      'Token resolutions answered from the in-memory cache.',
    ),
    tokenCacheMisses: registry.counter(
      'cg_token_cache_misses_total',
      'Token resolutions that went past the in-memory cache (store, then maybe the identity provider).',
    ),
    providerCalls: registry.counter(
      'cg_provider_calls_total',
      "Calls to identity providers' token endpoints, by grant kind and outcome.",
      ['kind', 'outcome'],
    ),
    providerCallDuration: registry.histogram(
      'cg_provider_call_duration_seconds',
      "Duration of calls to identity providers' token endpoints.",
      ['kind'],
    ),
    tokenUses: registry.counter(
      'cg_token_uses_total',
      'Token access decisions (federated subgraph calls and the token endpoint), by outcome.',
      ['outcome'],
    ),
    subgraphErrors: registry.counter(
      'cg_subgraph_errors_total',
      'GraphQL errors in federated responses, by subgraph and error code.',
      ['subgraph', 'code'],
    ),
    httpRequests: registry.counter(
      'cg_http_requests_total',
      'HTTP requests answered, by route pattern and status code.',
      ['route', 'status'],
    ),
    graphqlOperations: registry.counter(
      'cg_graphql_operations_total',
      'Requests to /graphql, by the pipeline that answered: prepared (an operation planned before) or full (Apollo Server).',
      ['pipeline'],
    ),
    revocations: registry.counter(
      'cg_revocations_total',
      "Attempts to revoke deleted connections' tokens at their provider (RFC 7009), by outcome.",
      ['outcome'],
    ),
    webhookDeliveries: registry.counter('cg_webhook_deliveries_total', 'Webhook delivery attempts, by outcome.', [
      'outcome',
    ]),
  });
}

/** A reload failure keeps the gateway ready on the last good supergraph: this is how anyone notices. */
export function observeSupergraph(metrics: GatewayMetrics, supergraph: { status(): SupergraphStatus }): void {
  metrics.registry.gauge(
    'cg_supergraph_reload_failures',
    'Failed supergraph reloads since the last good one (0: the files as last read are in use).',
    () => supergraph.status().failedReloads,
  );
}
