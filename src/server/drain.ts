/**
 * Graceful stop for orchestrators (Kubernetes sends SIGTERM, waits the grace period, then SIGKILL):
 * stop accepting connections, let the requests already in flight finish, then close, all within a
 * bound so a stuck request cannot hold the process past the orchestrator's patience.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export interface Drain {
  /** True once draining has started: `/readyz` answers 503 and responses close their connection. */
  readonly draining: boolean;
  /**
   * Stops the listener (new connections are refused), closes idle keep-alive connections, waits
   * for in-flight requests up to `timeoutMs`, then closes whatever is left. Settles once; later
   * calls return the same promise.
   */
  close(): Promise<void>;
}

export function drainOnClose(server: Server, timeoutMs: number): Drain {
  let closing: Promise<void> | null = null;
  const inFlight = new Set<ServerResponse>();
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    // A keep-alive client would otherwise send its next request on a connection about to go away.
    if (closing) res.setHeader('connection', 'close');
    inFlight.add(res);
    res.once('close', () => {
      inFlight.delete(res);
      if (closing) server.closeIdleConnections();
    });
  });
  return {
    get draining() {
      return closing !== null;
    },
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
        for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
        // Settles once every connection is gone: idle ones now, busy ones as their response ends.
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      })),
  };
}
