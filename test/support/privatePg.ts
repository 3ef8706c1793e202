/**
 * A PostgreSQL server of one's own, for tests that stop and start the database under a running
 * gateway: the machine's shared server (test/support/pg.ts) must never be restarted, other test
 * files use it at the same time. `initdb` into a temp directory, then `postgres` as a child process
 * on a free loopback port; `stop()` and `start()` again reuse the same port and data directory.
 *
 *   const pg = await startPrivatePostgres();   // null when no PostgreSQL binaries are installed
 *   await pg.stop();  await pg.start();  await pg.destroy();
 *
 * initdb and postgres refuse to run as root: as root, both run as the `postgres` user (runuser).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './freePort.js';

const BIN_ROOT = '/usr/lib/postgresql';
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;
const POLL_INTERVAL_MS = 100;

export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication). */
  readonly url: string;
  readonly port: number;
  readonly running: boolean;
  /** Starts the server (again) on the same port and data directory; resolves once it answers. */
  start(): Promise<void>;
  /** Fast shutdown (SIGINT: open sessions are cut, then a clean stop); resolves once it exited. */
  stop(): Promise<void>;
  /** Stops it if running and deletes the data directory. */
  destroy(): Promise<void>;
}

/** The newest installed PostgreSQL's bin directory (`PG_BIN_DIR` overrides), or null. */
export function postgresBinDir(): string | null {
  const given = process.env['PG_BIN_DIR'];
  if (given) return existsSync(join(given, 'postgres')) ? given : null;
  if (!existsSync(BIN_ROOT)) return null;
  const versions = readdirSync(BIN_ROOT)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(BIN_ROOT, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? join(BIN_ROOT, versions[0]!, 'bin') : null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs as the `postgres` user when we are root (initdb and postgres refuse root). */
function asDatabaseUser(command: string, args: readonly string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, [...args]];
}

function postgresUserIds(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function startPrivatePostgres(): Promise<PrivatePostgres | null> {
  const bin = postgresBinDir();
  if (bin === null) return null;
  const dir = await mkdtemp(join(tmpdir(), 'cg-private-pg-'));
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) {
    const { uid, gid } = postgresUserIds();
    chownSync(dir, uid, gid);
  }
  const [initdb, initArgs] = asDatabaseUser(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=trust',
    '--no-sync',
  ]);
  execFileSync(initdb, initArgs, { stdio: 'pipe' });

  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const log: string[] = [];

  const postmasterPid = (): number | null => {
    try {
      return Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return null;
    }
  };
  // A test process that dies must not leave a server behind.
  const killOnExit = () => {
    const pid = postmasterPid();
    if (child !== null && pid !== null) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        /* already gone */
      }
    }
  };
  process.once('exit', killOnExit);

  const self: PrivatePostgres = {
    url,
    port,
    get running() {
      return child !== null;
    },
    async start() {
      if (child !== null) return;
      const [command, args] = asDatabaseUser(join(bin, 'postgres'), [
        '-D',
        data,
        '-p',
        String(port),
        '-k',
        dir,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'fsync=off',
        '-c',
        'max_connections=100',
      ]);
      const started = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const keep = (chunk: Buffer) => void log.push(chunk.toString('utf8'));
      started.stdout?.on('data', keep);
      started.stderr?.on('data', keep);
      child = started;
      exited = new Promise((resolve) =>
        started.once('exit', () => {
          if (child === started) child = null;
          resolve();
        }),
      );
      const deadline = Date.now() + READY_TIMEOUT_MS;
      while (!(await answers(url))) {
        if (child !== started) throw new Error(`private PostgreSQL exited during start:\n${log.join('').slice(-2000)}`);
        if (Date.now() > deadline) throw new Error(`private PostgreSQL did not answer within ${READY_TIMEOUT_MS} ms`);
        await sleep(POLL_INTERVAL_MS);
      }
    },
    async stop() {
      if (child === null) return;
      const pid = postmasterPid();
      // The postmaster itself, not runuser: SIGINT is PostgreSQL's fast shutdown.
      if (pid !== null) process.kill(pid, 'SIGINT');
      else child.kill('SIGINT');
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('private PostgreSQL did not stop in time')), STOP_TIMEOUT_MS);
      });
      try {
        await Promise.race([exited, late]);
      } finally {
        clearTimeout(timer);
      }
    },
    async destroy() {
      await self.stop().catch(() => killOnExit());
      process.off('exit', killOnExit);
      await rm(dir, { recursive: true, force: true });
    },
  };
  await self.start();
  return self;
}
