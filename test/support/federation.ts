/**
 * The whole federation stage for end-to-end tests: two authorization servers (one per SaaS), the
 * two sample subgraphs each trusting only its own, a caller-JWT issuer, and the gateway in front.
 */
import { startTestApp, type TestApp } from './app.js';
import { createOidcProviders, startBackends, type Backends } from './backends.js';

export interface Stage
  extends Pick<Backends, 'authGithub' | 'authGraph' | 'idp' | 'github' | 'graph' | 'supergraphFile'> {
  readonly t: TestApp;
  /** A caller JWT for `sub`. */
  jwtFor(sub: string, claims?: Record<string, unknown>): Promise<string>;
  /** POST /graphql with an optional caller JWT. */
  query<T = any>(
    query: string,
    jwt?: string | null,
    variables?: Record<string, unknown>,
  ): Promise<{ status: number; body: { data?: T; errors?: any[] } }>;
  close(): Promise<void>;
}

export interface StageOptions {
  readonly accessTokenTtlSeconds?: number;
  /** As in BackendOptions. */
  readonly slowFaultDelayMs?: number;
  /** As in BackendOptions. */
  readonly editSupergraph?: (yaml: string) => string;
  readonly config?: Record<string, unknown>;
  readonly storeUrl?: string;
  /** Receives the gateway's JSON log lines. */
  readonly logLines?: string[];
  /** The gateway's clock (AppOptions.now). */
  readonly now?: () => Date;
}

export async function startStage(options: StageOptions = {}): Promise<Stage> {
  const b = await startBackends({
    accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 60,
    ...(options.slowFaultDelayMs !== undefined && { slowFaultDelayMs: options.slowFaultDelayMs }),
    ...(options.editSupergraph && { editSupergraph: options.editSupergraph }),
  });
  const t = await startTestApp(
    {
      supergraph: b.supergraphFile,
      identity: { issuers: [b.idp.issuerConfig()] },
      ...options.config,
    },
    {
      ...(options.storeUrl && { storeUrl: options.storeUrl }),
      ...(options.logLines && { logLines: options.logLines }),
      ...(options.now && { now: options.now }),
    },
  );
  await createOidcProviders(async (query, variables) => (await t.admin(query, variables)).body, b);
  return {
    t,
    authGithub: b.authGithub,
    authGraph: b.authGraph,
    idp: b.idp,
    github: b.github,
    graph: b.graph,
    supergraphFile: b.supergraphFile,
    jwtFor: (sub, claims = {}) => b.idp.sign({ sub, ...claims }),
    async query(query, jwt, variables = {}) {
      const res = await fetch(`${t.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(jwt ? { authorization: `Bearer ${jwt}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      return { status: res.status, body: (await res.json()) as any };
    },
    async close() {
      await t.close();
      await b.close();
    },
  };
}
