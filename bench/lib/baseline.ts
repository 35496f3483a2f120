/** Starts the naive comparison cluster (`baseline/naive-service.ts`) on a free loopback port. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { freePort } from '../../test/support/ports.js';
import { waitFor } from '../../test/support/wait.js';

export interface Baseline {
  readonly url: string;
  readonly prefix: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

export async function startBaseline(options: {
  redisUrl: string;
  mode: 'shared' | 'running';
  /** Where job bodies run: the Piscina pool, as in the service (default), or inline on the event loop. */
  runner?: 'thread' | 'inline';
  workers?: number;
  concurrency?: number;
  handlersDir?: string;
}): Promise<Baseline> {
  const port = await freePort();
  const prefix = `naive${randomBytes(3).toString('hex')}`;
  const child = spawn(process.execPath, ['dist/bench/baseline/naive-service.js'], {
    env: {
      PATH: process.env.PATH ?? '',
      REDIS_URL: options.redisUrl,
      PORT: String(port),
      MODE: options.mode,
      RUNNER: options.runner ?? 'thread',
      QUEUE_PREFIX: prefix,
      WORKERS: String(options.workers ?? 4),
      WORKER_CONCURRENCY: String(options.concurrency ?? 8),
      ...(options.handlersDir ? { HANDLERS_DIR: options.handlersDir } : {}),
    },
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  // Every process must answer once: ask more times than there are processes.
  await waitFor(
    async () => {
      const pids = new Set<number>();
      for (let i = 0; i < 40; i += 1) {
        const response = await fetch(`${url}/ready`, { headers: { connection: 'close' } });
        pids.add(((await response.json()) as { pid: number }).pid);
      }
      return pids.size === (options.workers ?? 4);
    },
    { timeoutMs: 30_000, what: 'the baseline cluster' },
  );
  return {
    url,
    prefix,
    child,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
