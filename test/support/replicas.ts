/**
 * Gateway replicas as child processes (test/support/replica.ts run by tsx), all configured through
 * CG_* variables, so a test exercises several real gateways sharing one PostgreSQL schema.
 *
 *   const r = await startReplica({ CG_STORE_URL: pgSchemaUrl(schema), CG_KEYS_KEY: key, ... });
 *   await r.admin('{ credentialProviders { items { id } } }');
 *   await r.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ADMIN_KEY } from './app.js';
import type { PgSchema } from './pg.js';

const ENTRY = fileURLToPath(new URL('./replica.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** tsx compiles the server on the fly: slow on a busy machine. */
const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 10_000;
/** Output lines kept for the message when a replica fails. */
const KEPT_LINES = 40;

export interface Replica {
  readonly url: string;
  readonly pid: number;
  /** POST to /admin/graphql with the test admin key. */
  admin<T = any>(
    query: string,
    variables?: Record<string, unknown>,
  ): Promise<{ status: number; body: { data?: T; errors?: any[] } }>;
  /** The last lines the process wrote (stdout and stderr), for failure messages. */
  output(): string;
  /** Settles with the exit code when the process exits. */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** A `store.url` that selects the schema through the session's search_path (as a replica's config would). */
export function pgSchemaUrl(schema: PgSchema): string {
  const url = new URL(schema.url);
  url.searchParams.set('options', `-c search_path=${schema.schema}`);
  return url.href;
}

/** A fresh `keys.key` value to share between replicas: one primary key-encryption key. */
export function sharedKeysKey(): string {
  return `replicas:${randomBytes(32).toString('base64')}`;
}

export async function startReplica(env: Readonly<Record<string, string>>): Promise<Replica> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', ENTRY], {
    cwd: REPO,
    env: {
      ...process.env,
      CG_SERVER_HOST: '127.0.0.1',
      CG_SERVER_PORT: '0',
      CG_ADMIN_API_KEYS: ADMIN_KEY,
      CG_OAUTH_ALLOW_INSECURE_HTTP: 'true',
      CG_OAUTH_ALLOW_PRIVATE_NETWORKS: 'true',
      CG_LOG_LEVEL: 'warn',
      // Tests stop replicas with requests still hanging on purpose: do not wait for them.
      CG_SERVER_DRAIN_TIMEOUT_SECONDS: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const keep = (chunk: Buffer): void => {
    // The audit trail logs every token use: read everything (a full pipe would stall the child), keep the end.
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(line);
    if (lines.length > KEPT_LINES) lines.splice(0, lines.length - KEPT_LINES);
  };
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`replica did not start within ${START_TIMEOUT_MS} ms:\n${lines.join('\n')}`)),
      START_TIMEOUT_MS,
    );
    let pending = '';
    const onStdout = (chunk: Buffer): void => {
      pending += chunk.toString('utf8');
      const ready = /^READY (\S+)$/m.exec(pending);
      if (ready) {
        clearTimeout(timer);
        child.stdout?.off('data', onStdout);
        child.stdout?.on('data', keep);
        resolve(ready[1]!);
      } else if (pending.length > 64_000) pending = pending.slice(-1_000);
    };
    child.stdout?.on('data', onStdout);
    child.stderr?.on('data', keep);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(
        new Error(
          `replica exited with code ${code} before it was ready:\n${lines.join('\n')}\n${pending.slice(-4_000)}`,
        ),
      );
    });
  });
  return {
    url,
    pid: child.pid!,
    async admin(query, variables = {}) {
      const res = await fetch(`${url}/admin/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': ADMIN_KEY },
        body: JSON.stringify({ query, variables }),
      });
      return { status: res.status, body: (await res.json()) as any };
    },
    output: () => lines.join('\n'),
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}
