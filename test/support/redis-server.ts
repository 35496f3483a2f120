/**
 * A real redis-server for tests, on a free loopback port with its own data directory. It can be
 * stopped and started again on the same port and directory (AOF keeps the data) to simulate outages.
 * With `tls` it serves TLS only (`rediss://`), with the given certificates (test/support/tls-certs.ts),
 * and its assertion client trusts their CA. With `password` it requires that password, and `url`
 * carries it. With `replicaOf` it is a replica of the server on that loopback port, and is up once
 * its link to that master is.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { probeRedis } from '../../src/local-redis/server.js';
import { freePort } from './ports.js';
import { redisTlsArgs, type TestCertificates } from './tls-certs.js';
import { waitFor } from './wait.js';

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** A plain client for assertions, closed by `stop`. */
  readonly client: Redis;
  stopServer(): Promise<void>;
  /**
   * SIGSTOP / SIGCONT simulate a Redis that hangs and then resumes. SIGSTOP returns once the kernel
   * has stopped the server: what is sent to it from then on waits for SIGCONT.
   */
  signal(signal: NodeJS.Signals): void;
  startServer(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  readonly appendOnly?: boolean;
  /** Serve TLS only, with these certificates: `url` is then `rediss://`. */
  readonly tls?: TestCertificates;
  /** Require this password (`requirepass`); `url` carries it. */
  readonly password?: string;
  /** Replicate the plain, passwordless server on this loopback port (`--replicaof`). */
  readonly replicaOf?: number;
}

/** Returns once the kernel has stopped the process (a signal is delivered asynchronously). */
function waitUntilStopped(pid: number): void {
  // /proc/<pid>/stat: "<pid> (<name>) <state> …"; T is stopped.
  while (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('T') !== true) {
    // a matter of microseconds
  }
}

export async function startRedis({
  appendOnly = false,
  tls,
  password,
  replicaOf,
}: StartRedisOptions = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bullpen-redis-'));
  const auth = password === undefined ? '' : `:${encodeURIComponent(password)}@`;
  const url = `${tls === undefined ? 'redis' : 'rediss'}://${auth}127.0.0.1:${port}`;
  /** A plain server is up once it answers PING: PONG, or the refusal of one that wants the password. */
  const answersPlain = async (): Promise<boolean> => {
    const probe = await probeRedis('127.0.0.1', port);
    return probe.state === 'pong' || (probe.state === 'answered' && probe.reply.startsWith('-NOAUTH'));
  };
  // Checked for `localhost`, the one name every test certificate lists.
  const clientOptions: RedisOptions = tls === undefined ? {} : { tls: { ca: tls.ca, servername: 'localhost' } };
  let child: ChildProcess | undefined;

  const pingTls = () => pingOnce(url, clientOptions);

  const startServer = async () => {
    child = spawn(
      'redis-server',
      [
        ...(tls === undefined ? ['--port', String(port)] : redisTlsArgs(tls, port)),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        appendOnly ? 'yes' : 'no',
        ...(password === undefined ? [] : ['--requirepass', password]),
        // A replica that connects is sent the data at once, not after the default 5 s wait for others.
        '--repl-diskless-sync-delay',
        '0',
        ...(replicaOf === undefined ? [] : ['--replicaof', '127.0.0.1', String(replicaOf)]),
      ],
      { stdio: 'ignore' },
    );
    const started = child;
    await waitFor(
      async () => {
        if (started.exitCode !== null) throw new Error(`redis-server exited with ${started.exitCode}`);
        return tls === undefined ? answersPlain() : pingTls();
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
  const client = new Redis(url, { ...clientOptions, maxRetriesPerRequest: 3 });
  // While a test has the server stopped, its commands say so; each reconnect attempt need not.
  client.on('error', () => {});
  if (replicaOf !== undefined) {
    await waitFor(async () => (await client.info('replication')).includes('master_link_status:up'), {
      timeoutMs: 10_000,
      what: `replica on port ${port} linked to its master on port ${replicaOf}`,
    });
  }
  return {
    url,
    port,
    dir,
    client,
    stopServer,
    startServer,
    signal: (signal) => {
      if (child?.pid === undefined) return;
      child.kill(signal);
      if (signal === 'SIGSTOP') waitUntilStopped(child.pid);
    },
    async stop() {
      client.disconnect();
      await stopServer();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * One PING on a connection of its own, which gives up at the first failure: how a test harness asks
 * whether a TLS server is up yet (the raw probe of a plain server does not speak TLS).
 */
export async function pingOnce(target: string | RedisOptions, options: RedisOptions = {}): Promise<boolean> {
  const once: RedisOptions = { ...options, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null };
  const redis = typeof target === 'string' ? new Redis(target, once) : new Redis({ ...target, ...once });
  redis.on('error', () => {}); // not up yet: the next probe asks again
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } finally {
    redis.disconnect();
  }
}
