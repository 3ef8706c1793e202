/** A loopback port for a server that must keep its port across restarts (so it cannot listen on 0 each time). */
import { createServer } from 'node:net';

/** A port nobody listens on right now on 127.0.0.1 (it may of course be taken before it is used). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
