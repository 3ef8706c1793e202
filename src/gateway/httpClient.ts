/**
 * The HTTP client for subgraph calls: undici with kept-alive, pooled connections, called through
 * its dispatcher API rather than WHATWG fetch (whose Request, Headers and stream objects cost
 * more per call than the rest of a subgraph call's client side: see docs/benchmarks.md).
 */
import { Agent, type Dispatcher } from 'undici';

const KEEP_ALIVE_MS = 30_000;
const CONNECTIONS_PER_ORIGIN = 128;
/** A subgraph answer larger than this is cut off and refused: one bad answer must not exhaust memory. */
export const MAX_SUBGRAPH_RESPONSE_BYTES = 16 * 1024 * 1024;

/** The subgraph's answer was cut off at MAX_SUBGRAPH_RESPONSE_BYTES. */
export class SubgraphResponseTooLarge extends Error {
  constructor() {
    super(`subgraph answer exceeds ${MAX_SUBGRAPH_RESPONSE_BYTES} bytes`);
  }
}

export interface SubgraphHttpResponse {
  readonly status: number;
  readonly contentType: string | null;
  readonly body: string;
}

export interface SubgraphHttpClient {
  /** One POST; rejects when the subgraph cannot be reached, does not answer in time, or answers too much (SubgraphResponseTooLarge). */
  post(url: URL, headers: Readonly<Record<string, string>>, body: string): Promise<SubgraphHttpResponse>;
  /** The kept-alive pool itself (the bench gives it to stock Apollo's fetch-based data source, case b'). */
  readonly dispatcher: Dispatcher;
  /** Aborts what is still in flight: the HTTP server has drained by then, so no caller waits for it. */
  close(): Promise<void>;
}

export function createSubgraphHttpClient(options: { timeoutMs: number }): SubgraphHttpClient {
  const agent = new Agent({
    keepAliveTimeout: KEEP_ALIVE_MS,
    connections: CONNECTIONS_PER_ORIGIN,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
  return {
    dispatcher: agent,
    async post(url, headers, body) {
      const res = await agent.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: 'POST',
        headers,
        body,
      });
      const contentType = res.headers['content-type'];
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MAX_SUBGRAPH_RESPONSE_BYTES) {
          res.body.destroy();
          throw new SubgraphResponseTooLarge();
        }
        chunks.push(chunk);
      }
      return {
        status: res.statusCode,
        contentType: typeof contentType === 'string' ? contentType : null,
        body: chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'),
      };
    },
    close: () => agent.destroy(),
  };
}
