/** The demo (src/demo/demo.ts) on free loopback ports with a temporary data directory. */
import { createServer, type AddressInfo, type Server } from 'node:net';
import { startDemo, type Demo } from '../../src/demo/demo.js';
import type { DemoPorts } from '../../src/demo/ports.js';
import { createLogger } from '../../src/log.js';
import { tempDir } from './tmp.js';

const PORT_NAMES = ['gateway', 'github', 'graph', 'githubAuth', 'graphAuth', 'callerIssuer'] as const;

function listenOn(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** Distinct free ports: the issuers must know their URL before they start, so port 0 will not do. */
export async function freeDemoPorts(): Promise<DemoPorts> {
  const servers = await Promise.all(PORT_NAMES.map(() => listenOn(0)));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return Object.fromEntries(PORT_NAMES.map((name, i) => [name, ports[i]])) as unknown as DemoPorts;
}

/** A running demo whose close() also removes its data directory. `env` takes `CG_*` overrides. */
export async function startTestDemo(env: NodeJS.ProcessEnv = {}): Promise<Demo> {
  const dir = await tempDir('cg-demo-');
  const demo = await startDemo({
    ports: await freeDemoPorts(),
    dataDir: dir.path,
    env,
    logger: createLogger('silent'),
  });
  return {
    ...demo,
    close: async () => {
      await demo.close();
      await dir.cleanup();
    },
  };
}
