/**
 * The demo a newcomer gets from `npm start`: two demo authorization servers ("Demo GitHub" and
 * "Demo Microsoft Graph"), the two sample subgraphs each trusting only its own, an issuer of
 * caller JWTs for the demo users, and the gateway in front of them, with providers and alice's
 * connections seeded. Everything listens on fixed loopback ports unless told otherwise.
 *
 *   const demo = await startDemo();
 *   // demo.sandboxUrl, demo.users (caller JWTs), demo.subgraphs[i].loginLink (alice's consent)
 *   await demo.close();
 */
import { join } from 'node:path';
import { startGithubSubgraph } from '../../subgraphs/github/server.js';
import { startGraphSubgraph } from '../../subgraphs/graph/server.js';
import type { RunningSubgraph, SubgraphOptions } from '../../subgraphs/shared/serve.js';
import { applyEnv } from '../config/load.js';
import { validateConfig, type Config, type IssuerConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { CONSENT_DONE_PATH } from '../server/donePage.js';
import { startApp, type App } from '../server/wire.js';
import { startAuthServer, type AuthServer } from './authServer.js';
import { startCallerIssuer } from './callerIssuer.js';
import { demoWebRoutes } from './demoWeb.js';
import { assertPortsFree, asPortInUse, demoPortsFromEnv, type DemoPorts } from './ports.js';
import { seedDemo, type DemoProvider } from './seed.js';
import { assertDemoStore } from './storeGuard.js';
import {
  loadDemoSupergraph,
  SAMPLE_SUBGRAPH_NAMES,
  supergraphFileFor,
  type DemoSupergraph,
  type SampleSubgraphName,
} from './supergraph.js';

interface SampleSetup {
  readonly displayName: string;
  /** `aud` of the access tokens its authorization server issues and the subgraph accepts. */
  readonly audience: string;
  readonly authPort: keyof DemoPorts;
  readonly start: (options: SubgraphOptions) => Promise<RunningSubgraph>;
}

const SAMPLES: Readonly<Record<SampleSubgraphName, SampleSetup>> = Object.freeze({
  github: {
    displayName: 'Demo GitHub',
    audience: 'api://demo-github',
    authPort: 'githubAuth',
    start: startGithubSubgraph,
  },
  graph: {
    displayName: 'Demo Microsoft Graph',
    audience: 'api://demo-graph',
    authPort: 'graphAuth',
    start: startGraphSubgraph,
  },
});

const DEFAULT_PORTS = Object.freeze({ githubAuth: 4201, graphAuth: 4202, callerIssuer: 4203 });

/** The demo's users: the first has a connection on each provider waiting for consent. */
export const DEMO_USERS: readonly string[] = Object.freeze(['alice', 'bob']);
export const CONNECTED_USER = 'alice';
/** Long enough for an afternoon with Sandbox; they are test identities anyway. */
export const CALLER_JWT_LIFETIME_SECONDS = 12 * 60 * 60;
/** Longer than the refresh skew (3 minutes), as real providers' tokens are. */
const ACCESS_TOKEN_TTL_SECONDS = 60 * 60;
/** The longest `consent.stateTtlSeconds` allows: time to read the README before clicking. */
export const LOGIN_LINK_TTL_SECONDS = 60 * 60;

/** One query, both subgraphs: GitHub's viewer, extended by Graph's profile and mail. */
export const EXAMPLE_QUERY =
  '{ viewer { login repositories { name stars } profile { displayName mail } mail(first: 2) { subject from } } ' +
  'githubTokenInfo { issuer audience subject } graphTokenInfo { issuer audience subject } }';

export interface DemoOptions {
  /** Default: 4000 (or `server.port`), the routing URLs of supergraph.yaml, 4201-4203; 0 picks a free port. */
  readonly ports?: Partial<DemoPorts>;
  /** Directory of the SQLite store and the keyring. Default: the configuration's (./data). */
  readonly dataDir?: string;
  /** `CG_*` configuration overrides and `CG_DEMO_PORTS` (`npm start` passes process.env). Default: none. */
  readonly env?: NodeJS.ProcessEnv;
  readonly logger?: Logger;
  /** Told the generated admin API key on the first start of a store (see startApp). */
  readonly onAdminKeyGenerated?: (key: string) => void;
}

export interface DemoSubgraph {
  readonly name: SampleSubgraphName;
  /** The subgraph's GraphQL endpoint. */
  readonly url: string;
  readonly providerId: string;
  readonly authServer: AuthServer;
  /** The connected user's single-use login link for this provider. */
  readonly loginLink: string;
}

export interface DemoUser {
  readonly login: string;
  /** A caller JWT from the demo issuer, valid CALLER_JWT_LIFETIME_SECONDS. */
  readonly jwt: string;
}

export interface Demo {
  readonly app: App;
  /** The ports in use (0s resolved). */
  readonly ports: DemoPorts;
  /** `<publicUrl>/graphql`: the federated graph, Apollo Sandbox in a browser. */
  readonly sandboxUrl: string;
  readonly adminUrl: string;
  readonly callerIssuer: string;
  readonly subgraphs: readonly DemoSubgraph[];
  readonly users: readonly DemoUser[];
  readonly connectedUser: string;
  readonly exampleQuery: string;
  /** Connections whose grants an earlier run's authorization servers took with them. */
  readonly expiredConnections: number;
  /** Stops everything the demo started; safe to call twice. */
  close(): Promise<void>;
}

const portOf = (url: string): number => Number(new URL(url).port);

function rawConfig(options: DemoOptions, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  if (options.dataDir !== undefined) {
    raw['store'] = { url: `sqlite:${join(options.dataDir, 'credentials.db')}` };
    raw['keys'] = { keyringFile: join(options.dataDir, 'keyring.json') };
  }
  if (options.ports?.gateway !== undefined) raw['server'] = { port: options.ports.gateway };
  return applyEnv(raw, env) as Record<string, unknown>;
}

type Closers = (() => Promise<void>)[];
type StartedSample = {
  readonly name: SampleSubgraphName;
  readonly auth: AuthServer;
  readonly subgraph: RunningSubgraph;
};

/** Each sample subgraph with its own authorization server, on the wanted ports. */
async function startSamples(wanted: DemoPorts, closers: Closers): Promise<StartedSample[]> {
  const started: StartedSample[] = [];
  for (const name of SAMPLE_SUBGRAPH_NAMES) {
    const setup = SAMPLES[name];
    const auth = await startAuthServer({
      port: wanted[setup.authPort],
      displayName: setup.displayName,
      audience: setup.audience,
      accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS,
    });
    closers.push(() => auth.close());
    const subgraph = await setup.start({ port: wanted[name], issuer: auth.issuer, audience: auth.audience });
    closers.push(() => subgraph.close());
    started.push({ name, auth, subgraph });
  }
  return started;
}

/** The user's configuration with the demo's parts filled in: its supergraph, its caller issuer, loopback http. */
function demoConfig(raw: Record<string, unknown>, supergraphFile: string, callerIssuer: IssuerConfig): Config {
  const identity = (raw['identity'] ?? {}) as Record<string, unknown>;
  const oauth = (raw['oauth'] ?? {}) as Record<string, unknown>;
  const consent = (raw['consent'] ?? {}) as Record<string, unknown>;
  return validateConfig({
    ...raw,
    supergraph: supergraphFile,
    identity: { ...identity, issuers: [callerIssuer] },
    // The demo authorization servers speak plain http on loopback.
    oauth: { ...oauth, allowInsecureHttp: true, allowPrivateNetworks: true },
    consent: { stateTtlSeconds: LOGIN_LINK_TTL_SECONDS, ...consent },
  });
}

/** The providers to seed: one per sample, at its authorization server, with its web client. */
function providersOf(started: readonly StartedSample[], supergraph: DemoSupergraph): DemoProvider[] {
  return started.map(({ name, auth }) => ({
    id: supergraph.subgraphs[name].providerId,
    displayName: auth.displayName,
    issuer: auth.issuer,
    clientId: auth.clients.web.clientId,
    clientSecret: auth.clients.web.clientSecret,
    scopes: ['openid', 'offline_access', ...auth.apiScopes],
  }));
}

/** Ports from the defaults, the sample supergraph, CG_DEMO_PORTS and the options, in that order. */
function demoPorts(
  env: Readonly<Record<string, string | undefined>>,
  options: DemoOptions,
  supergraph: Awaited<ReturnType<typeof loadDemoSupergraph>>,
  gatewayPort: number,
): DemoPorts {
  const given = { ...demoPortsFromEnv(env), ...options.ports };
  return {
    ...DEFAULT_PORTS,
    github: supergraph.subgraphs.github.port,
    graph: supergraph.subgraphs.graph.port,
    ...given,
    gateway: gatewayPort,
  };
}

/** Each sample subgraph with its provider and an admin login link for the connected user. */
function demoSubgraphs(
  app: App,
  started: Awaited<ReturnType<typeof startSamples>>,
  supergraph: Awaited<ReturnType<typeof loadDemoSupergraph>>,
): Promise<DemoSubgraph[]> {
  return Promise.all(
    started.map(async ({ name, auth, subgraph }): Promise<DemoSubgraph> => {
      const providerId = supergraph.subgraphs[name].providerId;
      const link = await app.createLoginLink(
        { providerId, connectionId: CONNECTED_USER },
        `${app.publicUrl}${CONSENT_DONE_PATH}`,
      );
      return Object.freeze({ name, url: subgraph.url, providerId, authServer: auth, loginLink: link.url });
    }),
  );
}

export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const env = options.env ?? {};
  const raw = rawConfig(options, env);
  const { server, store } = validateConfig(raw);
  const supergraph = await loadDemoSupergraph();
  assertDemoStore(
    store.url,
    SAMPLE_SUBGRAPH_NAMES.map((name) => supergraph.subgraphs[name].providerId),
  );
  const wanted = demoPorts(env, options, supergraph, server.port);
  await assertPortsFree(wanted, server.host);

  // Closed last-started-first: the gateway stops before what it calls.
  const closers: Closers = [];
  const closeAll = async (): Promise<void> => {
    // Every server gets its close even if an earlier one fails: none may keep the process alive.
    for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  };
  try {
    const started = await startSamples(wanted, closers);
    const callers = await startCallerIssuer(wanted.callerIssuer);
    closers.push(() => callers.close());
    const supergraphFile = await supergraphFileFor(
      supergraph,
      Object.fromEntries(started.map((s) => [s.name, s.subgraph.url])) as Record<SampleSubgraphName, string>,
    );
    closers.push(() => supergraphFile.cleanup());
    const config = demoConfig(raw, supergraphFile.path, callers.issuerConfig());
    let expiredConnections = 0;
    const app = await startApp(config, {
      ...(options.logger && { logger: options.logger }),
      ...(options.onAdminKeyGenerated && { onAdminKeyGenerated: options.onAdminKeyGenerated }),
      routes: demoWebRoutes(callers, DEMO_USERS),
      // Before the graphs serve: no request meets a provider still pointing at the last run's servers.
      seed: async (registry) => {
        ({ expiredConnections } = await seedDemo(registry, providersOf(started, supergraph), {
          sub: CONNECTED_USER,
          issuer: callers.issuer,
        }));
      },
    });
    closers.push(() => app.close());

    const subgraphs = await demoSubgraphs(app, started, supergraph);
    const users = await Promise.all(
      DEMO_USERS.map(async (login) =>
        Object.freeze({ login, jwt: await callers.sign(login, CALLER_JWT_LIFETIME_SECONDS) }),
      ),
    );
    app.logger.info({ providers: subgraphs.map((s) => s.providerId), expiredConnections }, 'demo ready');

    const sample = (name: SampleSubgraphName): DemoSubgraph => subgraphs.find((s) => s.name === name)!;
    let closed: Promise<void> | null = null;
    return Object.freeze({
      app,
      ports: Object.freeze({
        gateway: portOf(app.url),
        github: portOf(sample('github').url),
        graph: portOf(sample('graph').url),
        githubAuth: portOf(sample('github').authServer.issuer),
        graphAuth: portOf(sample('graph').authServer.issuer),
        callerIssuer: portOf(callers.issuer),
      }),
      sandboxUrl: `${app.publicUrl}/graphql`,
      adminUrl: `${app.publicUrl}/admin/graphql`,
      callerIssuer: callers.issuer,
      subgraphs: Object.freeze(subgraphs),
      users: Object.freeze(users),
      connectedUser: CONNECTED_USER,
      exampleQuery: EXAMPLE_QUERY,
      expiredConnections,
      close: () => (closed ??= closeAll()),
    });
  } catch (e) {
    await closeAll();
    throw asPortInUse(e, wanted);
  }
}
