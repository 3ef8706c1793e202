/**
 * The newcomer's demo (`npm start` without a config file), end to end: the printed login links
 * through real Chromium, the printed query with the printed JWTs, a restart on the same store,
 * port conflicts, and the real start script as a child process stopped by Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/schema.js';
import { demoBanner } from '../src/demo/banner.js';
import { EXAMPLE_QUERY, startDemo, type Demo } from '../src/demo/demo.js';
import { assertPortsFree, demoPortsFromEnv, type DemoPorts } from '../src/demo/ports.js';
import { createLogger } from '../src/log.js';
import { consentOverHttp } from './support/authServer.js';
import { chromiumAvailable, completeConsent, launchBrowser } from './support/browser.js';
import { tempDir, type TempDir } from './support/tmp.js';
import { createHash } from 'node:crypto';
import { openStore } from '../src/store/open.js';
import { freshPgSchema, requirePgOrSkip, withPgClient } from './support/pg.js';

const REPO = new URL('../', import.meta.url).pathname;
const requireBrowser = process.env['CI'] === 'true' || chromiumAvailable();
if (!requireBrowser)
  console.warn('[demo.test] /usr/bin/chromium is missing: the demo browser tests are skipped (mandatory when CI=true)');

const PORT_NAMES = ['gateway', 'github', 'graph', 'githubAuth', 'graphAuth', 'callerIssuer'] as const;
const CHILD_START_TIMEOUT_MS = 45_000;
const CHILD_STOP_TIMEOUT_MS = 15_000;

function listenOn(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

const closeServer = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

/** Distinct free ports: the issuers must know their URL before they start, so port 0 will not do. */
async function freePorts(): Promise<DemoPorts> {
  const servers = await Promise.all(PORT_NAMES.map(() => listenOn(0)));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map(closeServer));
  return Object.fromEntries(PORT_NAMES.map((name, i) => [name, ports[i]])) as unknown as DemoPorts;
}

/** True when nothing listens on any of the ports any more. */
async function allFree(ports: DemoPorts): Promise<boolean> {
  try {
    await assertPortsFree(ports);
    return true;
  } catch {
    return false;
  }
}

async function graphql(url: string, query: string, jwt: string | null): Promise<{ data?: any; errors?: any[] }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(jwt === null ? {} : { authorization: `Bearer ${jwt}` }) },
    body: JSON.stringify({ query }),
  });
  return (await res.json()) as { data?: any; errors?: any[] };
}

function errorsByService(errors: any[] | undefined): Record<string, any> {
  return Object.fromEntries((errors ?? []).map((e) => [e.extensions?.serviceName, e]));
}

/** Listening sockets of this process (client sockets come and go with keep-alive). */
const listeningHandles = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;

const jwtOf = (demo: Demo, login: string): string => demo.users.find((u) => u.login === login)!.jwt;

describe('demo ports', () => {
  it('reads CG_DEMO_PORTS as name=port pairs, any subset', () => {
    expect(demoPortsFromEnv({})).toEqual({});
    expect(demoPortsFromEnv({ CG_DEMO_PORTS: 'github=5101, graphAuth=5202' })).toEqual({
      github: 5101,
      graphAuth: 5202,
    });
  });

  it.each([
    ['an unknown name', 'githb=5101', /unknown name 'githb'/],
    ['a port out of range', 'github=70000', /github must be a port number/],
    ['a missing port', 'github=', /github must be a port number/],
    ['the gateway (it has CG_SERVER_PORT)', 'gateway=4000', /CG_SERVER_PORT/],
  ])('refuses %s', (_name, value, message) => {
    expect(() => demoPortsFromEnv({ CG_DEMO_PORTS: value })).toThrow(ConfigError);
    expect(() => demoPortsFromEnv({ CG_DEMO_PORTS: value })).toThrow(message);
  });

  it('refuses one port given to two servers', async () => {
    const ports = await freePorts();
    await expect(assertPortsFree({ ...ports, graph: ports.github })).rejects.toThrow(
      `port ${ports.github} is given to both github and graph`,
    );
  });
});

describe('demo start with a port taken', () => {
  it('fails naming the port, what wanted it and how to free it, and leaves nothing running', async () => {
    const ports = await freePorts();
    const squatter = await listenOn(ports.graphAuth);
    const dir = await tempDir('cg-demo-');
    try {
      const started = startDemo({ ports, dataDir: dir.path, logger: createLogger('silent') });
      await expect(started).rejects.toBeInstanceOf(ConfigError);
      await expect(started).rejects.toThrow(
        new RegExp(
          `port ${ports.graphAuth} \\(wanted by the Demo Microsoft Graph authorization server\\) is already in use.*lsof -nP -iTCP:${ports.graphAuth}.*CG_DEMO_PORTS=graphAuth=<port>`,
        ),
      );
    } finally {
      await closeServer(squatter);
      await dir.cleanup();
    }
    expect(await allFree(ports)).toBe(true);
  });
});

const hasPg = await requirePgOrSkip('the demo store guard on PostgreSQL');

/** Starts the demo expecting a refusal; a demo that starts after all is closed again (so the test fails cleanly). */
async function refusal(options: Parameters<typeof startDemo>[0]): Promise<unknown> {
  const outcome = await startDemo(options).then(
    async (demo) => {
      await demo.close();
      return null;
    },
    (e: unknown) => e,
  );
  expect(outcome).toBeInstanceOf(ConfigError);
  return outcome;
}

describe('the demo writes only into a store it created', () => {
  it.runIf(hasPg)('refuses a PostgreSQL store with a clear message and creates nothing in it', async () => {
    const ports = await freePorts();
    const pg = await freshPgSchema('cg_demo_guard');
    try {
      const url = `${pg.url}?options=${encodeURIComponent(`-c search_path=${pg.schema}`)}`;
      const error = await refusal({ ports, env: { CG_STORE_URL: url }, logger: createLogger('silent') });
      expect(String(error)).toMatch(
        /store\.url: the demo does not write into a PostgreSQL .*store.*unset CG_STORE_URL/,
      );
      const tables = await withPgClient((c) =>
        c.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [pg.schema]),
      );
      expect(tables.rows).toEqual([]);
    } finally {
      await pg.drop();
    }
    expect(await allFree(ports)).toBe(true);
  });

  it('starts on a fresh clone, where the folder of its store does not exist yet', async () => {
    const ports = await freePorts();
    const dir = await tempDir('cg-demo-fresh-');
    try {
      const demo = await startDemo({ ports, dataDir: dir.file('data'), logger: createLogger('silent') });
      try {
        expect((await fetch(`${demo.app.url}/healthz`)).status).toBe(200);
      } finally {
        await demo.close();
      }
    } finally {
      await dir.cleanup();
    }
    expect(await allFree(ports)).toBe(true);
  });

  it("refuses a SQLite store holding a provider that is not the demo's, naming it, and leaves the file unchanged", async () => {
    const ports = await freePorts();
    const dir = await tempDir('cg-demo-foreign-');
    try {
      const file = dir.file('credentials.db');
      const store = await openStore(`sqlite:${file}`);
      const now = new Date();
      await store.insertProvider(
        {
          id: 'payroll',
          displayName: 'Payroll',
          identityProvider: 'oauth2',
          grantType: 'CLIENT_CREDENTIALS',
          clientId: 'c',
          clientSecret: null,
          scopes: [],
          parameters: {},
          version: 1,
          createdAt: now,
          updatedAt: now,
        },
        10,
      );
      await store.close();
      const digest = () => createHash('sha256').update(readFileSync(file)).digest('hex');
      const before = digest();
      const error = await refusal({ ports, dataDir: dir.path, logger: createLogger('silent') });
      expect(String(error)).toMatch(
        /holds credential providers that are not the demo's \(payroll\).*run the demo on a store of its own/,
      );
      expect(digest()).toBe(before);
    } finally {
      await dir.cleanup();
    }
    expect(await allFree(ports)).toBe(true);
  });
});

describe.runIf(requireBrowser)('the demo, as a newcomer uses it', () => {
  let ports: DemoPorts;
  let dir: TempDir;
  let demo: Demo;
  let browser: Browser;
  const adminKeys: string[] = [];
  const logLines: string[] = [];
  const start = () =>
    startDemo({
      ports,
      dataDir: dir.path,
      logger: createLogger('info', { write: (line: string) => void logLines.push(line) }),
      onAdminKeyGenerated: (key) => adminKeys.push(key),
    });

  async function admin(query: string): Promise<any> {
    const res = await fetch(demo.adminUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': adminKeys[0]! },
      body: JSON.stringify({ query }),
    });
    return ((await res.json()) as { data: any }).data;
  }

  let handlesBefore: number;

  beforeAll(async () => {
    ports = await freePorts();
    dir = await tempDir('cg-demo-');
    handlesBefore = listeningHandles();
    [demo, browser] = await Promise.all([start(), launchBrowser()]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await demo?.close();
    await dir?.cleanup();
  });

  it('listens where it was told and prints every URL, both JWTs, the login links and the query', () => {
    expect(demo.ports).toEqual(ports);
    expect(demo.sandboxUrl).toBe(`http://127.0.0.1:${ports.gateway}/graphql`);
    expect(demo.adminUrl).toBe(`http://127.0.0.1:${ports.gateway}/admin/graphql`);
    expect(demo.users.map((u) => u.login)).toEqual(['alice', 'bob']);
    expect(demo.subgraphs.map((s) => [s.providerId, s.authServer.issuer, s.authServer.displayName])).toEqual([
      ['github-01', `http://127.0.0.1:${ports.githubAuth}`, 'Demo GitHub'],
      ['graph-01', `http://127.0.0.1:${ports.graphAuth}`, 'Demo Microsoft Graph'],
    ]);
    const banner = demoBanner(demo);
    for (const text of [
      demo.sandboxUrl,
      demo.adminUrl,
      ...demo.users.map((u) => u.jwt),
      ...demo.subgraphs.map((s) => s.loginLink),
      EXAMPLE_QUERY,
    ]) {
      expect(banner).toContain(text);
    }
    expect(banner).toMatch(/test identities/);
    expect(adminKeys).toHaveLength(1);
  });

  it('seeds both providers at their demo issuers and a connection for alice only, waiting for consent', async () => {
    const data = await admin(
      '{ credentialProviders(first: 10) { items { id identityProvider parameters { name value } connections { items { id status accessPolicies { kind objectId } } } } } }',
    );
    expect(data.credentialProviders.items).toEqual([
      {
        id: 'github-01',
        identityProvider: 'oidc',
        parameters: [{ name: 'issuer', value: `http://127.0.0.1:${ports.githubAuth}` }],
        connections: {
          items: [{ id: 'alice', status: 'NOT_CONNECTED', accessPolicies: [{ kind: 'USER', objectId: 'alice' }] }],
        },
      },
      {
        id: 'graph-01',
        identityProvider: 'oidc',
        parameters: [{ name: 'issuer', value: `http://127.0.0.1:${ports.graphAuth}` }],
        connections: {
          items: [{ id: 'alice', status: 'NOT_CONNECTED', accessPolicies: [{ kind: 'USER', objectId: 'alice' }] }],
        },
      },
    ]);
  });

  it('connects alice through the printed login links in a real browser', async () => {
    for (const s of demo.subgraphs) {
      const landed = await completeConsent(browser, s.loginLink, { login: 'alice', password: 'anything' });
      expect(landed.origin).toBe(`http://127.0.0.1:${ports.gateway}`);
      expect(landed.pathname).toBe('/oauth/done');
      expect(landed.searchParams.get('providerId')).toBe(s.providerId);
      expect(landed.searchParams.get('status')).toBe('CONNECTED');
    }
  });

  it("answers the printed query with data from both subgraphs, each called with its own provider's token", async () => {
    const res = await graphql(demo.sandboxUrl, EXAMPLE_QUERY, jwtOf(demo, 'alice'));
    expect(res.errors).toBeUndefined();
    expect(res.data).toMatchObject({
      viewer: {
        login: 'alice',
        repositories: [{ name: 'dotfiles' }, { name: 'notes' }],
        profile: { displayName: 'Alice', mail: 'alice@example.com' },
        mail: [
          expect.objectContaining({ subject: expect.any(String) }),
          expect.objectContaining({ subject: expect.any(String) }),
        ],
      },
      githubTokenInfo: {
        issuer: `http://127.0.0.1:${ports.githubAuth}`,
        audience: ['api://demo-github'],
        subject: 'alice',
      },
      graphTokenInfo: {
        issuer: `http://127.0.0.1:${ports.graphAuth}`,
        audience: ['api://demo-graph'],
        subject: 'alice',
      },
    });
  });

  it('gives bob, who has not consented, a login link of his own for each provider, to a page that says where he is', async () => {
    const res = await graphql(demo.sandboxUrl, EXAMPLE_QUERY, jwtOf(demo, 'bob'));
    const errors = errorsByService(res.errors);
    for (const s of demo.subgraphs) {
      const error = errors[s.name];
      expect(error.extensions.code).toBe('CONNECTION_NOT_CONNECTED');
      expect(error.extensions.loginUrl).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${ports.gateway}/oauth/login/`));
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        await page.goto(error.extensions.loginUrl);
        expect(new URL(page.url()).origin).toBe(s.authServer.issuer);
        expect(await page.locator('h1').textContent()).toBe(s.authServer.displayName);
        expect(await page.locator('body').getAttribute('data-interaction')).toBe('login');
      } finally {
        await context.close();
      }
    }
  });

  it('starts again on the same store: grants the demo servers forgot ask for consent again, and the printed links work', async () => {
    await demo.close();
    expect(await allFree(ports)).toBe(true);
    demo = await start();
    expect(adminKeys).toHaveLength(1); // announced on the very first start only
    // alice's two connections held tokens of the previous servers; bob's never connected.
    expect(demo.expiredConnections).toBe(2);

    const stale = errorsByService((await graphql(demo.sandboxUrl, EXAMPLE_QUERY, jwtOf(demo, 'alice'))).errors);
    expect(stale['github'].extensions.code).toBe('REAUTHORIZATION_REQUIRED');
    expect(stale['graph'].extensions.code).toBe('REAUTHORIZATION_REQUIRED');
    expect(stale['graph'].extensions.loginUrl).toMatch(/\/oauth\/login\//);

    for (const s of demo.subgraphs) {
      const landed = await consentOverHttp(s.loginLink, { login: 'alice' });
      expect(landed.searchParams.get('status')).toBe('CONNECTED');
    }
    const res = await graphql(demo.sandboxUrl, EXAMPLE_QUERY, jwtOf(demo, 'alice'));
    expect(res.errors).toBeUndefined();
    expect(res.data.githubTokenInfo.subject).toBe('alice');
    expect(res.data.graphTokenInfo.subject).toBe('alice');
  });

  it('stops every server it started', async () => {
    await demo.close();
    await demo.close(); // twice is fine
    expect(await allFree(ports)).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(listeningHandles()).toBe(handlesBefore);
  });
});

/** Collects a child's output; `waitFor` resolves once a pattern shows up. */
function watch(child: ChildProcess): {
  out: () => string;
  err: () => string;
  waitFor(pattern: RegExp, timeoutMs: number): Promise<void>;
  exited: Promise<number | null>;
} {
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    for (const w of waiters) w();
  });
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
    for (const w of waiters) w();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    out: () => out,
    err: () => err,
    exited,
    waitFor: (pattern, timeoutMs) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${pattern}; stderr:\n${err}`)),
          timeoutMs,
        );
        const check = () => {
          if (pattern.test(out + err)) {
            clearTimeout(timer);
            resolve();
          }
        };
        waiters.push(check);
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`exited before ${pattern}; stderr:\n${err}`));
        });
        check();
      }),
  };
}

/** The command of `npm start` (npm and sh in between would only relay it). */
function startCommand(): { command: string; args: string[] } {
  const script = (JSON.parse(readFileSync(`${REPO}package.json`, 'utf8')) as { scripts: { start: string } }).scripts
    .start;
  const [command, ...args] = script.split(' ');
  return { command: command === 'node' ? process.execPath : `${REPO}node_modules/.bin/${command}`, args };
}

describe('npm start as a child process', () => {
  let ports: DemoPorts;
  let dir: TempDir;

  beforeAll(async () => {
    ports = await freePorts();
    dir = await tempDir('cg-demo-');
  });

  afterAll(() => dir?.cleanup());

  it('runs the demo without a config file, prints the banner, and stops on Ctrl-C with exit code 0', async () => {
    const { command, args } = startCommand();
    const env: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'],
      HOME: process.env['HOME'],
      CG_SERVER_PORT: String(ports.gateway),
      CG_DEMO_PORTS: `github=${ports.github},graph=${ports.graph},githubAuth=${ports.githubAuth},graphAuth=${ports.graphAuth},callerIssuer=${ports.callerIssuer}`,
      CG_STORE_URL: `sqlite:${dir.file('credentials.db')}`,
      CG_KEYS_KEYRING_FILE: dir.file('keyring.json'),
    };
    // Its own process group: Ctrl-C in a terminal signals the whole group, wrappers included.
    const child = spawn(command, args, { cwd: REPO, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const io = watch(child);
    try {
      await io.waitFor(/Ctrl-C stops everything/, CHILD_START_TIMEOUT_MS);
      const banner = io.err();
      expect(banner).toMatch(/Generated an admin API key[\s\S]*cgk_/);
      expect(banner).toContain(`Sandbox (federated graph)  http://127.0.0.1:${ports.gateway}/graphql`);
      expect(banner).toContain(`http://127.0.0.1:${ports.gateway}/admin/graphql`);
      expect(banner).toMatch(new RegExp(`github-01 +http://127\\.0\\.0\\.1:${ports.gateway}/oauth/login/`));
      expect(banner).toContain(EXAMPLE_QUERY);
      const bob = /^ {3}bob +(\S+)$/m.exec(banner)?.[1];
      expect(bob).toMatch(/^ey/);

      const res = await graphql(`http://127.0.0.1:${ports.gateway}/graphql`, EXAMPLE_QUERY, bob!);
      expect(errorsByService(res.errors)['graph'].extensions.code).toBe('CONNECTION_NOT_CONNECTED');

      process.kill(-child.pid!, 'SIGINT');
      const code = await Promise.race([
        io.exited,
        new Promise((r) => setTimeout(() => r('still running'), CHILD_STOP_TIMEOUT_MS)),
      ]);
      expect(code).toBe(0);
      expect(io.out()).toMatch(/"signal":"SIGINT","msg":"shutting down"/);
      expect(await allFree(ports)).toBe(true);
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
  }, 60_000);

  it('refuses a CG_DEMO that is neither true nor false', async () => {
    const { command, args } = startCommand();
    const child = spawn(command, args, {
      cwd: REPO,
      env: { PATH: process.env['PATH'], CG_DEMO: 'maybe' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const io = watch(child);
    expect(await io.exited).toBe(1);
    expect(io.err()).toContain('CG_DEMO must be true or false');
  }, 30_000);

  it('leaves nothing behind that keeps a process alive once the demo is closed', async () => {
    const script = `
      const { startDemo } = await import(${JSON.stringify(`${REPO}src/demo/demo.ts`)});
      const { createLogger } = await import(${JSON.stringify(`${REPO}src/log.ts`)});
      const demo = await startDemo({ ports: ${JSON.stringify(ports)}, dataDir: ${JSON.stringify(dir.path)}, logger: createLogger('silent') });
      await demo.close();
      process.stderr.write('closed\\n');`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: REPO,
      env: { PATH: process.env['PATH'] },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const io = watch(child);
    try {
      await io.waitFor(/closed/, CHILD_START_TIMEOUT_MS);
      // No process.exit anywhere: the process ends by itself only if no handle is left.
      const code = await Promise.race([
        io.exited,
        new Promise((r) => setTimeout(() => r('still running'), CHILD_STOP_TIMEOUT_MS)),
      ]);
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 60_000);
});
