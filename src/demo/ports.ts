/**
 * The demo's fixed loopback ports: chosen up front, overridable (`startDemo({ ports })`, or
 * `CG_DEMO_PORTS` for `npm start`), and checked before anything starts, so that a taken port
 * fails the start with a message naming it instead of leaving half a demo running.
 */
import { createServer } from 'node:net';
import { ConfigError } from '../config/schema.js';
import { portInUseMessage } from '../server/portInUse.js';

export interface DemoPorts {
  /** The gateway (`server.port`, `CG_SERVER_PORT`). */
  readonly gateway: number;
  /** The sample subgraphs; default: the ports of their routing URLs in supergraph.yaml. */
  readonly github: number;
  readonly graph: number;
  /** The demo authorization servers of providers github-01 and graph-01. */
  readonly githubAuth: number;
  readonly graphAuth: number;
  /** The issuer of the demo users' caller JWTs. */
  readonly callerIssuer: number;
}

export const DEMO_PORTS_ENV = 'CG_DEMO_PORTS';

/** What listens on each port, for messages. */
export const DEMO_PORT_ROLES: Readonly<Record<keyof DemoPorts, string>> = Object.freeze({
  gateway: 'the gateway',
  github: 'the github sample subgraph',
  graph: 'the graph sample subgraph',
  githubAuth: 'the Demo GitHub authorization server',
  graphAuth: 'the Demo Microsoft Graph authorization server',
  callerIssuer: 'the demo caller-JWT issuer',
});

const NAMES = Object.keys(DEMO_PORT_ROLES) as (keyof DemoPorts)[];
const MAX_PORT = 65535;
const LOOPBACK = '127.0.0.1';

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= MAX_PORT;
}

/** `CG_DEMO_PORTS=github=5101,graph=5102,githubAuth=5201,graphAuth=5202,callerIssuer=5203` (any subset). */
export function demoPortsFromEnv(env: NodeJS.ProcessEnv): Partial<DemoPorts> {
  const text = env[DEMO_PORTS_ENV];
  if (text === undefined || text.trim() === '') return {};
  const ports: Partial<Record<keyof DemoPorts, number>> = {};
  const problems: string[] = [];
  for (const entry of text.split(',')) {
    const [name = '', value = ''] = entry.split('=').map((s) => s.trim());
    const port = /^\d+$/.test(value) ? Number(value) : NaN;
    if (name === 'gateway') problems.push(`${DEMO_PORTS_ENV}: set the gateway port with CG_SERVER_PORT`);
    else if (!(NAMES as string[]).includes(name))
      problems.push(
        `${DEMO_PORTS_ENV}: unknown name '${name}' (one of ${NAMES.filter((n) => n !== 'gateway').join(', ')})`,
      );
    else if (!isPort(port)) problems.push(`${DEMO_PORTS_ENV}: ${name} must be a port number 0-${MAX_PORT}`);
    else ports[name as keyof DemoPorts] = port;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return ports;
}

function overrideOf(name: keyof DemoPorts): string {
  return name === 'gateway' ? 'CG_SERVER_PORT' : `${DEMO_PORTS_ENV}=${name}=<port>`;
}

function isFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' ? resolve(false) : reject(e)));
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/**
 * Throws a ConfigError naming every taken (or repeated) port; 0 means any free port and is not
 * checked. Everything listens on 127.0.0.1 except the gateway, on `server.host`.
 */
export async function assertPortsFree(ports: DemoPorts, gatewayHost = LOOPBACK): Promise<void> {
  const problems: string[] = [];
  const seen = new Map<number, keyof DemoPorts>();
  for (const name of NAMES) {
    const port = ports[name];
    if (!isPort(port)) problems.push(`${name} port must be 0-${MAX_PORT}, got ${port}`);
    else if (port !== 0 && seen.has(port)) problems.push(`port ${port} is given to both ${seen.get(port)} and ${name}`);
    else if (port !== 0) seen.set(port, name);
  }
  const free = await Promise.all(
    [...seen].map(([port, name]) => isFree(port, name === 'gateway' ? gatewayHost : LOOPBACK)),
  );
  [...seen].forEach(([port, name], i) => {
    if (!free[i]) problems.push(portInUseMessage(port, DEMO_PORT_ROLES[name], overrideOf(name)));
  });
  if (problems.length > 0) throw new ConfigError(problems);
}

/** The ConfigError for a listen that lost a race for its port after the check. */
export function asPortInUse(e: unknown, ports: DemoPorts): unknown {
  const err = e as NodeJS.ErrnoException & { port?: unknown };
  if (err?.code !== 'EADDRINUSE' || typeof err.port !== 'number') return e;
  const name = NAMES.find((n) => ports[n] === err.port);
  return new ConfigError([
    portInUseMessage(err.port, name ? DEMO_PORT_ROLES[name] : 'the demo', name ? overrideOf(name) : DEMO_PORTS_ENV),
  ]);
}
