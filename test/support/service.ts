/**
 * The real service for integration tests: `node dist/src/main.js` as a child process (primary plus
 * forked workers) on a free loopback port, with its own key prefix, its JSON log lines captured for
 * assertions, and helpers for its HTTP API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { freePort, startOnFreePorts } from './ports.js';
import { waitFor } from './wait.js';

/** A stop slower than this is reported with the log lines written meanwhile. */
const SLOW_STOP_MS = 10_000;
const WARN = 40;

export interface LogLine {
  /** What happened, as a stable name (`process.forked`, `job.completed`): what tests look for. */
  readonly event?: string;
  readonly msg?: string;
  readonly level?: number;
  readonly role?: string;
  readonly workerId?: string;
  readonly jobId?: string;
  readonly [key: string]: unknown;
}

export interface WorkerView {
  readonly id: string;
  readonly pid: number;
  readonly alive: boolean;
  readonly active: number;
  readonly queued: number;
  readonly concurrency: number;
  readonly lease: {
    readonly holderPid: number | null;
    readonly retiring: boolean;
    readonly expiresAt: string;
    readonly expiresInMs: number;
  } | null;
}

export interface WorkersResponse {
  readonly workers: readonly WorkerView[];
  readonly totals: { workers: number; alive: number; active: number; queued: number; capacity: number };
}

export interface HttpResult<T = unknown> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
  readonly text: string;
}

export interface Service {
  readonly url: string;
  readonly port: number;
  readonly prefix: string;
  readonly hostId: string;
  readonly child: ChildProcess;
  readonly logs: LogLine[];
  /** What the processes wrote to stderr so far: the log is on stdout, so this is what bypassed it. */
  stderr(): string;
  /**
   * The lines that say most about a failure nobody can rerun, from the `from`th line on, the last
   * `limit` of them: warnings and worse, and the processes' lifecycle (process, lease, retirement,
   * Redis and consumer events).
   */
  telling(from?: number, limit?: number): LogLine[];
  /** Resolves with the primary's exit code once it has exited, on its own or stopped. */
  readonly exited: Promise<number | null>;
  request<T = unknown>(
    method: string,
    path: string,
    init?: { body?: string; headers?: Record<string, string> },
  ): Promise<HttpResult<T>>;
  enqueue<T = unknown>(task: unknown): Promise<HttpResult<T>>;
  workers(): Promise<WorkersResponse>;
  /** Waits until `count` of this service's own workers (by HOST_ID) are alive. */
  waitForAlive(count: number, timeoutMs?: number): Promise<WorkersResponse>;
  /** Sends the signal to the primary and resolves with its exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

export interface ServiceOptions {
  /** One Redis; or, with `clusterNodes`, ignored. */
  readonly redisUrl: string;
  /** A Redis Cluster's seed nodes (`REDIS_CLUSTER_NODES`), used instead of `redisUrl`. */
  readonly clusterNodes?: string;
  /** Sentinels and the master's name (`REDIS_SENTINELS`, `REDIS_SENTINEL_MASTER`), used instead of either. */
  readonly sentinels?: { readonly list: string; readonly master: string };
  readonly workers?: number;
  readonly env?: Readonly<Record<string, string>>;
  /** Reuse a prefix (and so the Redis state) of an earlier run. */
  readonly prefix?: string;
  /** Wait for every worker to be alive before returning; default true. */
  readonly waitUntilReady?: boolean;
  /**
   * Reuse HTTP connections; default true. Tests that pause a worker process turn it off: a kept-alive
   * connection that the paused process accepted would hang until it resumes.
   */
  readonly keepAlive?: boolean;
  /**
   * Node options for the primary, given before the script. Cluster workers inherit the primary's
   * `execArgv`, so `--cpu-prof` here profiles every process (and their job threads).
   */
  readonly nodeArgs?: readonly string[];
  /**
   * The checkout whose build runs (its `dist/src/main.js`); this one by default. The benchmarks run
   * an older build of the service beside this one's.
   */
  readonly root?: string;
}

/** The one Redis mode the service is started in. */
function redisEnvOf({ redisUrl, clusterNodes, sentinels }: ServiceOptions): Record<string, string> {
  if (sentinels !== undefined) return { REDIS_SENTINELS: sentinels.list, REDIS_SENTINEL_MASTER: sentinels.master };
  return clusterNodes === undefined ? { REDIS_URL: redisUrl } : { REDIS_CLUSTER_NODES: clusterNodes };
}

/** Starts a service that waits until ready up to 3 times, on a fresh port each, while its port was taken. */
export function startService(options: ServiceOptions): Promise<Service> {
  return startOnFreePorts(3, () => startOn(options), portTaken);
}

/** A start that failed because the port was taken before the service could bind it: its refusal's line says so. */
function portTaken(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (cause.message.includes('"event":"http.port-in-use"')) return true;
  }
  return false;
}

async function startOn(options: ServiceOptions): Promise<Service> {
  const port = await freePort();
  const prefix = options.prefix ?? `t${randomBytes(4).toString('hex')}`;
  const workers = options.workers ?? 4;
  const hostId = options.env?.HOST_ID ?? 'test';
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), 'dist/src/main.js'], {
    cwd: options.root ?? process.cwd(),
    env: {
      PATH: process.env.PATH ?? '',
      ...redisEnvOf(options),
      PORT: String(port),
      HOST: '127.0.0.1',
      QUEUE_PREFIX: prefix,
      HOST_ID: hostId,
      WORKERS: String(workers),
      LOG_PRETTY: 'false',
      LOG_LEVEL: 'info',
      // Job threads start when a job needs one: a suite that boots dozens of workers would otherwise
      // spend a third of each boot starting threads most tests never use. The failing-jobs test keeps
      // the default (every thread warm) and checks it.
      WARM_THREADS: '0',
      // Three test files at a time load a 2-core machine enough that Redis can take longer than the
      // 500 ms fail-fast default to answer a burst. The outage tests, whose subject it is, set it.
      COMMAND_TIMEOUT_MS: '5000',
      // Tests enqueue names of their own, run by the dummy; the tests of unknown names set a list.
      DUMMY_JOB_NAMES: '*',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  let buffered = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const ended = () => child.exitCode !== null || child.signalCode !== null;
  /** Thrown by a readiness probe that finds the service gone: no later probe can mend that. */
  const exit = new Error('service exited');

  const url = `http://127.0.0.1:${port}`;
  const fresh: Record<string, string> = options.keepAlive === false ? { connection: 'close' } : {};
  const send = (method: string, path: string, init: { body?: string; headers?: Record<string, string> }) =>
    fetch(`${url}${path}`, {
      method,
      body: init.body,
      headers: { ...fresh, ...init.headers },
      signal: AbortSignal.timeout(15_000),
    });
  const request = async <T>(
    method: string,
    path: string,
    init: { body?: string; headers?: Record<string, string> } = {},
  ) => {
    // A kept-alive connection that a killed worker process held is reset under the client, as it
    // would be for any HTTP client; a read is safe to send again once on a fresh connection.
    const response = await send(method, path, init).catch((error: unknown) => {
      if (method !== 'GET') throw error;
      return send(method, path, { ...init, headers: { ...init.headers, connection: 'close' } });
    });
    const text = await response.text();
    let body: unknown = undefined;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: response.status, headers: response.headers, body: body as T, text };
  };
  const service: Service = {
    url,
    port,
    prefix,
    hostId,
    child,
    logs,
    stderr: () => stderr,
    telling: (from = 0, limit = 40) =>
      logs
        .slice(from)
        .filter(
          (line) =>
            Number(line.level) >= WARN || /^(process|lease|retirement|redis|consumer)\./.test(String(line.event)),
        )
        .slice(-limit),
    exited,
    request,
    enqueue: (task) =>
      request('POST', '/enqueue-task', { body: JSON.stringify(task), headers: { 'content-type': 'application/json' } }),
    async workers() {
      // A service started with an API key is asked with it, so that readiness waits work there too.
      const apiKey = options.env?.API_KEY;
      const result = await request<WorkersResponse>(
        'GET',
        '/workers',
        apiKey === undefined ? {} : { headers: { authorization: `Bearer ${apiKey}` } },
      );
      if (result.status !== 200) throw new Error(`GET /workers answered ${result.status}`);
      return result.body;
    },
    waitForAlive: (count, timeoutMs = 60_000) =>
      waitFor(
        async () => {
          if (ended()) throw exit;
          const state = await service.workers();
          const own = state.workers.filter((worker) => worker.alive && worker.id.startsWith(`${hostId}-`));
          return own.length === count ? state : undefined;
        },
        { timeoutMs, what: `${count} live workers`, stopOn: (error) => error === exit },
      ).catch((error: unknown) => {
        if (ended()) {
          // Start-up refusals are JSON lines on stdout (a port taken meanwhile, a lease refused): say which.
          const fatal = logs.filter((line) => Number(line.level) >= 50).map((line) => JSON.stringify(line));
          throw new Error(
            `service exited with ${child.exitCode ?? child.signalCode}: ${[...fatal, stderr].join('\n')}`,
          );
        }
        // Why the processes are not back (re-forks backing off, leases waited for or refused).
        const why = service.telling(0, 20).map((line) => JSON.stringify(line));
        throw new Error(`${(error as Error).message}; the last warnings and lifecycle lines:\n${why.join('\n')}`, {
          cause: error,
        });
      }),
    async stop(signal = 'SIGTERM', timeoutMs = 60_000) {
      if (ended()) return child.exitCode;
      const from = logs.length;
      const startedAt = Date.now();
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      if (Date.now() - startedAt > SLOW_STOP_MS) {
        // A diagnostic, not a failure: the runner shows it beside the test that was slow.
        const lines = logs
          .slice(from)
          .map((line) => [line.workerId ?? line.role, line.msg, line.childPid ?? line.reason]);
        process.stdout.write(
          `service stop (${signal}) took ${Date.now() - startedAt} ms; its lines since: ${JSON.stringify(lines)}\n`,
        );
      }
      return code;
    },
  };
  if (options.waitUntilReady ?? true) {
    try {
      await service.waitForAlive(workers);
    } catch (error) {
      await service.stop('SIGKILL');
      throw error;
    }
  }
  return service;
}
