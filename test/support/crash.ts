/**
 * Crash test (docs/design.md "The runtime step": a crash at any point loses no connection). The real gateway runs
 * as a child process (`node --import tsx src/main.ts --config FILE`, CG_* variables) on SQLite or
 * PostgreSQL, with several consented connections of an oidc-provider server that rotates refresh
 * tokens and issues access tokens living 2 s. Refreshes run without pause (testConnection through
 * the admin API, and GET /tokens with a caller JWT); the gateway is killed with SIGKILL at random
 * moments, restarted, and killed again. At the end every connection must still refresh.
 *
 * Kinds of kill, in turn:
 * - `random`: any moment while refreshes run;
 * - `mid-refresh`: the provider has rotated a refresh token and holds its answer back (its `slow`
 *   fault), and the gateway dies before it has the new token: the dangerous window;
 * - `startup`: while the gateway is still starting.
 *
 * Standalone: `npm run crash -- --kills 60 [--store sqlite|postgres|both] [--connections 5]
 * [--reuse-interval 30] [--seed N]`; exits 1 if any connection was lost.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { consentOverHttp, oidcProviderInput, startAuthServer, type AuthServer } from './authServer.js';
import { freePort } from './freePort.js';
import { startJwtIssuer, type JwtIssuer } from './jwtIssuer.js';
import { pgUrl, withPgClient } from './pg.js';
import { tempDir } from './tmp.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const PROVIDER_ID = 'crash-idp';
const ADMIN_KEY = `cgk_crash-${randomBytes(16).toString('hex')}`;
const ACCESS_TOKEN_TTL_SECONDS = 2;
const REFRESH_SKEW_SECONDS = 1;
const OAUTH_TIMEOUT_MS = 5_000;
const READY_TIMEOUT_MS = 90_000;
const READY_PROBE_TIMEOUT_MS = 1_000;
const CALL_TIMEOUT_MS = 15_000;
/** How long the provider holds back its answer on a mid-refresh kill; the kill lands inside it. */
const SLOW_ANSWER_MS = 800;
/** A random kill lands this long after the gateway is ready, at most. */
const MAX_RANDOM_KILL_DELAY_MS = 1_500;
/** A startup kill lands this long after the spawn, at most (starting takes a few seconds). */
const MAX_STARTUP_KILL_DELAY_MS = 2_500;
const STDERR_TAIL_LINES = 40;

export const KILL_KINDS = ['random', 'mid-refresh', 'startup'] as const;
export type KillKind = (typeof KILL_KINDS)[number];

export interface CrashOptions {
  readonly store: 'sqlite' | 'postgres';
  readonly kills: number;
  /** Consented connections refreshing all the time. Default 5. */
  readonly connections?: number;
  /**
   * The provider's refresh token reuse interval (Okta's grace period, Auth0's overlap period):
   * seconds a rotated-out refresh token still works. 0 is oidc-provider's own rule: any reuse
   * revokes the grant. Default 30 (Okta's default).
   */
  readonly reuseIntervalSeconds?: number;
  /** Which kinds of kill, used in turn. Default all of KILL_KINDS. */
  readonly killKinds?: readonly KillKind[];
  /** PostgreSQL server (a fresh database is created on it and dropped after). Default test/support/pg.ts. */
  readonly pgUrl?: string;
  readonly seed?: number;
  readonly log?: (line: string) => void;
  /** Per-kill detail lines. */
  readonly debug?: (line: string) => void;
}

export interface CrashReport {
  readonly store: 'sqlite' | 'postgres';
  readonly seed: number;
  readonly kills: Readonly<Record<KillKind, number>>;
  readonly killsTotal: number;
  /** Successful refreshes the harness saw (testConnection ok, or a new access token from GET /tokens). */
  readonly refreshes: number;
  /** Refresh grants the provider processed (including those whose answer a kill cut off). */
  readonly providerRefreshes: number;
  readonly connections: number;
  /** Connections that could not refresh at the end. */
  readonly lost: readonly string[];
  readonly seconds: number;
}

/** mulberry32: a small seeded generator, so a failing run can be replayed with its seed. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The real server, as `npm start` runs it but without npm in between: SIGKILL must reach node itself. */
export class GatewayProcess {
  readonly #child: ChildProcess;
  readonly #stderr: string[] = [];
  readonly exited: Promise<number | null>;
  #alive = true;

  private constructor(child: ChildProcess) {
    this.#child = child;
    const keep = (chunk: Buffer) => {
      this.#stderr.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      this.#stderr.splice(0, Math.max(0, this.#stderr.length - STDERR_TAIL_LINES));
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        this.#alive = false;
        resolve(code);
      }),
    );
  }

  static spawn(configFile: string, env: NodeJS.ProcessEnv): GatewayProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--config', configFile], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new GatewayProcess(child);
  }

  get alive(): boolean {
    return this.#alive;
  }

  get stderrTail(): string {
    return this.#stderr.join('\n');
  }

  /** Resolves once /readyz answers 200. */
  async ready(url: string): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (!this.#alive) throw new Error(`the gateway exited while starting:\n${this.stderrTail}`);
      const status = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(READY_PROBE_TIMEOUT_MS) }).then(
        async (res) => {
          await res.body?.cancel();
          return res.status;
        },
        () => 0,
      );
      if (status === 200) return;
      if (Date.now() > deadline)
        throw new Error(`the gateway was not ready within ${READY_TIMEOUT_MS} ms:\n${this.stderrTail}`);
      await sleep(50);
    }
  }

  async kill(): Promise<void> {
    if (this.#alive) this.#child.kill('SIGKILL');
    await this.exited;
  }
}

interface ConnectionSpec {
  readonly id: string;
  readonly user: string;
  jwt: string;
}

export async function runCrashTest(options: CrashOptions): Promise<CrashReport> {
  const started = performance.now();
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const random = seededRandom(seed);
  const log = options.log ?? (() => {});
  const debug = options.debug ?? (() => {});
  const connectionCount = options.connections ?? 5;
  const killKinds = options.killKinds ?? KILL_KINDS;
  if (killKinds.length === 0) throw new TypeError('killKinds must name at least one kind of kill');

  const dir = await tempDir('cg-crash-');
  const cleanups: (() => Promise<void>)[] = [() => dir.cleanup()];
  let gateway: GatewayProcess | null = null;
  try {
    const auth: AuthServer = await startAuthServer({
      accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS,
      slowFaultDelayMs: SLOW_ANSWER_MS,
      refreshTokenReuseIntervalSeconds: options.reuseIntervalSeconds ?? 30,
    });
    cleanups.unshift(() => auth.close());
    const idp: JwtIssuer = await startJwtIssuer();
    cleanups.unshift(() => idp.close());

    let storeUrl: string;
    if (options.store === 'sqlite') {
      storeUrl = `sqlite:${dir.file('credentials.db')}`;
    } else {
      const server = new URL(options.pgUrl ?? pgUrl());
      const database = `cg_crash_${randomBytes(6).toString('hex')}`;
      await withPgClient((c) => c.query(`CREATE DATABASE ${database}`), server.href);
      cleanups.unshift(() =>
        withPgClient((c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`), server.href).then(
          () => undefined,
        ),
      );
      const url = new URL(server.href);
      url.pathname = `/${database}`;
      storeUrl = url.href;
    }

    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const configFile = dir.file('gateway.yaml');
    writeFileSync(
      configFile,
      [
        'server:',
        '  host: 127.0.0.1',
        'oauth:',
        '  allowInsecureHttp: true',
        '  allowPrivateNetworks: true',
        `  timeoutMs: ${OAUTH_TIMEOUT_MS}`,
        'cache:',
        `  refreshSkewSeconds: ${REFRESH_SKEW_SECONDS}`,
        'log:',
        '  level: warn',
        '',
      ].join('\n'),
    );
    const env: NodeJS.ProcessEnv = {
      CG_SERVER_PORT: String(port),
      CG_STORE_URL: storeUrl,
      CG_KEYS_KEY: `crash:${randomBytes(32).toString('base64')}`,
      CG_ADMIN_API_KEYS: ADMIN_KEY,
      CG_IDENTITY_ISSUERS: JSON.stringify([{ issuer: idp.issuer, audience: idp.audience }]),
      APOLLO_TELEMETRY_DISABLED: '1',
    };

    const admin = async (query: string, variables: Record<string, unknown> = {}): Promise<any> => {
      const res = await fetch(`${url}/admin/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': ADMIN_KEY },
        body: JSON.stringify({ query, variables }),
        signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
      const body = (await res.json()) as { data?: any; errors?: any[] };
      if (body.errors) throw new Error(`admin API: ${JSON.stringify(body.errors)}`);
      return body.data;
    };

    // Setup: one provider, N connections, each consented by its own user.
    const connections: ConnectionSpec[] = [];
    let current = GatewayProcess.spawn(configFile, env);
    gateway = current;
    await current.ready(url);
    await admin(`mutation($input: CreateCredentialProviderInput!) { createCredentialProvider(input: $input) { id } }`, {
      input: oidcProviderInput(PROVIDER_ID, auth),
    });
    for (let i = 1; i <= connectionCount; i++) {
      const spec: ConnectionSpec = { id: `conn-${i}`, user: `user-${i}`, jwt: '' };
      spec.jwt = await idp.sign({ sub: spec.user }, { expiresIn: 24 * 3600 });
      await admin(`mutation($p: ID!, $c: ID!) { createConnection(providerId: $p, input: { id: $c }) { id } }`, {
        p: PROVIDER_ID,
        c: spec.id,
      });
      await admin(
        `mutation($p: ID!, $c: ID!, $u: String!) { createAccessPolicy(providerId: $p, connectionId: $c, input: { id: "user", kind: USER, objectId: $u }) { id } }`,
        {
          p: PROVIDER_ID,
          c: spec.id,
          u: spec.user,
        },
      );
      const link = await admin(
        `mutation($p: ID!, $c: ID!, $r: String!) { createLoginLink(providerId: $p, connectionId: $c, postLoginRedirectUrl: $r) { url } }`,
        {
          p: PROVIDER_ID,
          c: spec.id,
          r: `${url}/oauth/done`,
        },
      );
      const done = await consentOverHttp(link.createLoginLink.url, { login: spec.user });
      if (done.searchParams.get('status') !== 'CONNECTED')
        throw new Error(`consent of ${spec.id} ended at ${done.href}`);
      connections.push(spec);
    }
    log(`[crash ${options.store}] seed ${seed}: ${connectionCount} connections consented; gateway at ${url}`);

    const testConnection = async (
      id: string,
    ): Promise<{ ok: boolean; status: string; error: { code: string } | null }> =>
      (
        await admin(
          `mutation($p: ID!, $c: ID!) { testConnection(providerId: $p, connectionId: $c) { ok status error { code } } }`,
          { p: PROVIDER_ID, c: id },
        )
      ).testConnection;

    let refreshes = 0;
    const rejectedDuringRun = new Set<string>();
    const lastToken = new Map<string, string>();

    /** Refreshes continuously until `epoch.over`; a dead gateway just ends the loop. */
    const drive = async (spec: ConnectionSpec, index: number, epoch: { over: boolean }): Promise<void> => {
      while (!epoch.over) {
        try {
          if (index % 2 === 0) {
            const result = await testConnection(spec.id);
            if (result.ok) refreshes++;
            else if (result.error?.code === 'REAUTHORIZATION_REQUIRED') rejectedDuringRun.add(spec.id);
          } else {
            const res = await fetch(`${url}/tokens/${PROVIDER_ID}/${spec.id}`, {
              headers: { authorization: `Bearer ${spec.jwt}` },
              signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
            });
            const body = (await res.json()) as { access_token?: string; error?: string };
            if (body.access_token !== undefined && body.access_token !== lastToken.get(spec.id)) {
              lastToken.set(spec.id, body.access_token);
              refreshes++;
            }
            if (body.error === 'REAUTHORIZATION_REQUIRED') rejectedDuringRun.add(spec.id);
            await sleep(100);
          }
        } catch {
          if (!epoch.over) await sleep(50);
        }
      }
    };

    const kills: Record<KillKind, number> = { random: 0, 'mid-refresh': 0, startup: 0 };
    // After each kill the next gateway is spawned at once; a startup kill hits it before it is ready.
    for (let k = 0; k < options.kills; k++) {
      const kind = killKinds[k % killKinds.length]!;
      const child = current;
      if (kind === 'startup') {
        await sleep(random() * MAX_STARTUP_KILL_DELAY_MS);
        await child.kill();
      } else {
        const waitStarted = performance.now();
        await child.ready(url);
        const readyMs = Math.round(performance.now() - waitStarted);
        const refreshesBefore = refreshes;
        const epoch = { over: false };
        const drivers = connections.map((spec, i) => drive(spec, i, epoch));
        if (kind === 'random') {
          await sleep(random() * MAX_RANDOM_KILL_DELAY_MS);
        } else {
          // Wait until the provider has rotated a refresh token and holds its answer back, then die inside that window.
          auth.setFault('slow');
          // Token requests already under way were not slowed down: let them finish first.
          await sleep(100);
          const before = auth.counts.refresh;
          const deadline = Date.now() + CALL_TIMEOUT_MS;
          while (auth.counts.refresh === before && Date.now() < deadline) await sleep(5);
          await sleep(random() * (SLOW_ANSWER_MS / 2));
        }
        await child.kill();
        epoch.over = true;
        auth.setFault('none');
        await Promise.all(drivers);
        debug(
          `[crash ${options.store}] kill ${k + 1} (${kind}): ready after ${readyMs} ms, ${refreshes - refreshesBefore} refreshes`,
        );
      }
      kills[kind]++;
      current = GatewayProcess.spawn(configFile, env);
      gateway = current;
      if ((k + 1) % 10 === 0) log(`[crash ${options.store}] ${k + 1} kills, ${refreshes} refreshes`);
    }
    await current.ready(url);

    // The verdict: every connection refreshes (forced) and is CONNECTED, after all those kills.
    const lost: string[] = [];
    for (const spec of connections) {
      const result = await testConnection(spec.id);
      if (!result.ok || result.status !== 'CONNECTED') lost.push(spec.id);
      else refreshes++;
    }
    const killsTotal = kills.random + kills['mid-refresh'] + kills.startup;
    const report: CrashReport = {
      store: options.store,
      seed,
      kills,
      killsTotal,
      refreshes,
      providerRefreshes: auth.counts.refresh,
      connections: connectionCount,
      lost,
      seconds: Math.round((performance.now() - started) / 1000),
    };
    log(
      `[crash ${options.store}] kills performed: ${killsTotal} (random ${kills.random}, mid-refresh ${kills['mid-refresh']}, startup ${kills.startup}); ` +
        `refreshes done: ${refreshes} (provider processed ${report.providerRefreshes}); connections lost: ${lost.length} of ${connectionCount}` +
        `${lost.length > 0 ? ` (${lost.join(', ')}; rejected during the run: ${[...rejectedDuringRun].join(', ') || 'none'})` : ''}; ${report.seconds} s`,
    );
    return report;
  } finally {
    await (gateway as GatewayProcess | null)?.kill();
    for (const cleanup of cleanups) await cleanup().catch(() => {});
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kills: { type: 'string', default: '60' },
      store: { type: 'string', default: 'both' },
      connections: { type: 'string', default: '5' },
      'reuse-interval': { type: 'string', default: '30' },
      seed: { type: 'string' },
      verbose: { type: 'boolean', default: false },
    },
  });
  const stores: string[] = values.store === 'both' ? ['sqlite', 'postgres'] : [values.store];
  const isStore = (s: string): s is 'sqlite' | 'postgres' => s === 'sqlite' || s === 'postgres';
  if (!stores.every(isStore)) throw new Error('--store must be sqlite, postgres or both');
  let lost = 0;
  for (const store of stores.filter(isStore)) {
    const report = await runCrashTest({
      store,
      kills: Number(values.kills),
      connections: Number(values.connections),
      reuseIntervalSeconds: Number(values['reuse-interval']),
      ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
      log: (line) => console.log(line),
      ...(values.verbose && { debug: (line: string) => console.log(line) }),
    });
    lost += report.lost.length;
  }
  process.exitCode = lost > 0 ? 1 : 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 2;
  });
}
