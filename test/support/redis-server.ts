/**
 * A real redis-server for tests, on a free loopback port with its own data directory. It can be
 * stopped and started again on the same port and directory (AOF keeps the data) to simulate outages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pingRedis } from '../../src/redis/local-server.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** A plain client for assertions, closed by `stop`. */
  readonly client: Redis;
  stopServer(): Promise<void>;
  /** SIGSTOP / SIGCONT simulate a Redis that hangs and then resumes. */
  signal(signal: NodeJS.Signals): void;
  startServer(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedis({ appendOnly = false }: { appendOnly?: boolean } = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bullpen-redis-'));
  let child: ChildProcess | undefined;

  const startServer = async () => {
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        appendOnly ? 'yes' : 'no',
      ],
      { stdio: 'ignore' },
    );
    const started = child;
    await waitFor(
      async () => {
        if (started.exitCode !== null) throw new Error(`redis-server exited with ${started.exitCode}`);
        return pingRedis('127.0.0.1', port);
      },
      { timeoutMs: 10_000, what: `redis-server on port ${port}` },
    );
  };
  const stopServer = async () => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    await exited;
  };

  await startServer();
  const client = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 3 });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    client,
    stopServer,
    startServer,
    signal: (signal) => {
      child?.kill(signal);
    },
    async stop() {
      client.disconnect();
      await stopServer();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
