/** Handles on the child processes of a run: the load generator and each gateway under test. */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { FromGateway, FromLoad, GatewayStart, LoadJob, LoadResult, ToGateway, ToLoad } from './protocol.js';

const START_TIMEOUT_MS = 60_000;

/** Children run the TypeScript sources through the same loader (tsx) as this process. */
function forkChild(file: string, stdout: 'inherit' | 'ignore', extraExecArgv: readonly string[] = []): ChildProcess {
  return fork(new URL(file, import.meta.url).pathname, [], {
    execArgv: [...process.execArgv, ...extraExecArgv],
    env: { ...process.env, APOLLO_TELEMETRY_DISABLED: '1', NODE_ENV: 'production' },
    stdio: ['ignore', stdout, 'inherit', 'ipc'],
  });
}

function nextMessage<T>(child: ChildProcess, accept: (m: T) => boolean, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer =
      timeoutMs > 0
        ? setTimeout(() => done(new Error(`no answer from child process within ${timeoutMs} ms`)), timeoutMs)
        : null;
    const onMessage = (m: T) => {
      if (accept(m)) done(null, m);
    };
    const onExit = (code: number | null) => done(new Error(`child process exited (code ${code})`));
    function done(error: Error | null, m?: T): void {
      if (timer) clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(m as T);
    }
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function stopChild(child: ChildProcess, message: unknown): Promise<void> {
  if (child.exitCode !== null || !child.connected) return;
  const exited = once(child, 'exit');
  child.send(message as never);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export class LoadProcess {
  readonly #child = forkChild('./load.ts', 'inherit');

  /** Runs one job; `onMeasuring` is called when the warm-up ends. */
  async run(job: LoadJob, onMeasuring: () => void): Promise<LoadResult> {
    const onMessage = (m: FromLoad) => {
      if (m.type === 'measuring') onMeasuring();
    };
    this.#child.on('message', onMessage);
    try {
      const answer = nextMessage<FromLoad>(this.#child, (m) => m.type === 'result' || m.type === 'failed', 0);
      this.#child.send({ type: 'run', job } satisfies ToLoad);
      const m = await answer;
      if (m.type === 'failed') throw new Error(`load generator failed: ${m.message}`);
      if (m.type !== 'result') throw new Error('unreachable');
      return m.result;
    } finally {
      this.#child.off('message', onMessage);
    }
  }

  stop(): Promise<void> {
    return stopChild(this.#child, { type: 'exit' } satisfies ToLoad);
  }
}

export type GatewayStarted =
  | { readonly ok: true; readonly url: string; readonly version: string }
  | { readonly ok: false; readonly reason: string };

export class GatewayProcess {
  readonly #child: ChildProcess;
  #cpuRequests = 0;

  /** `cpuProfileDir`: write a V8 CPU profile of the gateway there when it stops (node --cpu-prof). */
  constructor(options: { cpuProfileDir?: string | null } = {}) {
    const dir = options.cpuProfileDir;
    this.#child = forkChild('./gateways.ts', 'ignore', dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []);
  }

  async start(start: GatewayStart): Promise<GatewayStarted> {
    const answer = nextMessage<FromGateway>(
      this.#child,
      (m) => m.type === 'started' || m.type === 'unavailable',
      START_TIMEOUT_MS,
    );
    this.#child.send({ type: 'start', start } satisfies ToGateway);
    const m = await answer;
    if (m.type === 'started') return { ok: true, url: m.url, version: m.version };
    if (m.type === 'unavailable') return { ok: false, reason: m.reason };
    throw new Error('unreachable');
  }

  /** The child's CPU time so far (user + system), µs. */
  async cpuMicros(): Promise<number> {
    const id = ++this.#cpuRequests;
    const answer = nextMessage<FromGateway>(this.#child, (m) => m.type === 'cpu' && m.id === id, 10_000);
    this.#child.send({ type: 'cpu', id } satisfies ToGateway);
    const m = await answer;
    if (m.type !== 'cpu') throw new Error('unreachable');
    return m.usage.user + m.usage.system;
  }

  stop(): Promise<void> {
    return stopChild(this.#child, { type: 'stop' } satisfies ToGateway);
  }
}
