/** The messages between bench/run.ts and its two kinds of child process (load generator, gateway). */
import type { Summary } from './stats.js';

/** One HTTP POST of a scripted request; a request may take several steps (case a, federated). */
export interface LoadStep {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** `JSON.stringify` of the `data` the answer must carry (anything else counts as an error). */
  readonly expectData: string;
}

export interface LoadJob {
  readonly steps: readonly LoadStep[];
  readonly connections: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

export interface LoadResult {
  /** Requests that completed inside the measured window, successful or not. */
  readonly completed: number;
  readonly errors: number;
  /** Errors by kind (`HTTP 401`, `GraphQL: …`, `unexpected data`, `ECONNRESET`…), measured window only. */
  readonly errorKinds: Readonly<Record<string, number>>;
  readonly warmupErrors: number;
  readonly firstError: string | null;
  readonly measuredMs: number;
  readonly requestsPerSecond: number;
  /** Latency of successful requests, ms. */
  readonly latencyMs: Summary;
  /** CPU time the load generator itself used over the measured window, µs. */
  readonly cpuMicros: number;
}

export type ToLoad = { readonly type: 'run'; readonly job: LoadJob } | { readonly type: 'exit' };
export type FromLoad =
  | { readonly type: 'measuring' }
  | { readonly type: 'result'; readonly result: LoadResult }
  | { readonly type: 'failed'; readonly message: string };

export type GatewayKind = 'stock' | 'stock-keepalive' | 'ours' | 'hive' | 'hive-dedupe';

export interface GatewayStart {
  readonly kind: GatewayKind;
  /** Composed supergraph SDL (stock and hive). */
  readonly supergraphSdl?: string;
  /** Raw configuration for `validateConfig` (ours). */
  readonly config?: Record<string, unknown>;
  /** Where the gateway's own log lines go (ours). */
  readonly logFile?: string;
}

export type ToGateway =
  | { readonly type: 'start'; readonly start: GatewayStart }
  | { readonly type: 'cpu'; readonly id: number }
  | { readonly type: 'stop' };
export type FromGateway =
  | { readonly type: 'started'; readonly url: string; readonly version: string }
  | { readonly type: 'unavailable'; readonly reason: string }
  | { readonly type: 'cpu'; readonly id: number; readonly usage: NodeJS.CpuUsage }
  | { readonly type: 'stopped' };
