/**
 * The HTTP client for subgraph calls: undici with kept-alive, pooled connections. Against the
 * gateway's default client it measured 0.93–1.46× the throughput (median about 1.2×) and up to 30%
 * lower median latency on this machine: see docs/benchmarks.md, case b' against b.
 */
import type { RemoteGraphQLDataSource } from '@apollo/gateway';
import { Agent, fetch as undiciFetch } from 'undici';

type Fetcher = NonNullable<NonNullable<ConstructorParameters<typeof RemoteGraphQLDataSource>[0]>['fetcher']>;

const KEEP_ALIVE_MS = 30_000;
const CONNECTIONS_PER_ORIGIN = 128;

export interface SubgraphHttpClient {
  readonly fetcher: Fetcher;
  close(): Promise<void>;
}

export function createSubgraphHttpClient(options: { timeoutMs: number }): SubgraphHttpClient {
  const agent = new Agent({
    keepAliveTimeout: KEEP_ALIVE_MS,
    connections: CONNECTIONS_PER_ORIGIN,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
  const fetcher = ((url: string, init?: Record<string, unknown>) =>
    undiciFetch(url, { ...(init as object), dispatcher: agent })) as unknown as Fetcher;
  return { fetcher, close: () => agent.close() };
}
