/**
 * The HTTP app in-process on port 0 against a real Redis, for contract tests (bad input, API key,
 * Redis in odd states) that need no processes. Its API is composed by the service's own
 * `composeApi` (src/process/api.ts), so it cannot drift from what a process serves; only what has
 * no meaning in-process is replaced by plain values: the metrics (no registry, no host-metrics IPC)
 * and the health (there is no consumer here; a test may pass its own).
 */
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { loadConfig, type Config } from '../../src/config/config.js';
import { createApp } from '../../src/http/app.js';
import { answerClientErrors } from '../../src/http/client-errors.js';
import type { WaitingFor } from '../../src/http/not-ready.js';
import { createLedger, type Ledger } from '../../src/ledger/ledger.js';
import { createQueueRegistry, type QueueRegistry } from '../../src/queue/queues.js';
import { composeApi, type ApiMetrics } from '../../src/process/api.js';
import { groupLedgerFor, ledgerOptionsFrom } from '../../src/process/ledger-options.js';
import { createHandlers } from '../../src/process/build.js';
import {
  closeConnection,
  createRedisConnection,
  waitUntilReady,
  type RedisClient,
} from '../../src/redis/connections.js';
import type { RedisTarget } from '../../src/redis/target.js';

/** Nothing is counted in-process. */
const NO_METRICS: ApiMetrics = {
  httpRequest: () => {},
  jobEnqueued: () => {},
  undoFailed: () => {},
  jobCancelled: () => {},
  scheduleTicks: () => {},
  jobExpired: () => {},
};

export interface InProcessAppOptions {
  readonly connection: RedisClient;
  readonly queues: QueueRegistry;
  readonly prefix: string;
  readonly logger: Logger;
  readonly apiKey?: string;
  readonly metricsPublic?: boolean;
  /** Serve the queue dashboard at /admin/queues (ADMIN_UI); off by default here. */
  readonly adminUi?: boolean;
  /** How long the dashboard shows a list of worker ids before reading it again; the service's by default. */
  readonly adminRefreshMs?: number;
  /**
   * WORKER_TTL_MS: how old a worker's heartbeat may be for it to take jobs. Tests whose workers are
   * joined once (`joinAsWorker`, 60 s leases) and that run longer than the default 5 s need more.
   */
  readonly workerTtlMs?: number;
  /** MAX_BACKLOG; defaults to the service's. */
  readonly maxBacklog?: number;
  /** BULK_MAX; defaults to the service's. */
  readonly bulkMax?: number;
  /** Age after which an idempotency claim is taken over; defaults to the service's. */
  readonly staleClaimMs?: number;
  /**
   * DUMMY_JOB_NAMES: `*` (any name) by default, since most tests enqueue names of their own; a list
   * for the tests of unknown job names.
   */
  readonly dummyJobNames?: Config['dummyJobNames'];
  /** SSE_MAX_STREAMS and SSE_MAX_LIFETIME_MS; default to the service's. */
  readonly sseMaxStreams?: number;
  readonly sseMaxLifetimeMs?: number;
  /** Defaults to a healthy Redis and consumer. */
  readonly health?: () => Promise<{ redis: boolean; consumer: boolean }>;
  /** What the app answers it still waits for (503 `NOT_READY`), as a process that is starting; ready by default. */
  readonly waitingFor?: WaitingFor;
}

export interface InProcessApp {
  readonly url: string;
  readonly server: Server;
  readonly ledger: Ledger;
  close(): Promise<void>;
}

export async function serveApp(options: InProcessAppOptions): Promise<InProcessApp> {
  const { connection, queues, logger } = options;
  const config = configOf(options);
  const ledger = createLedger({ redis: connection, ...ledgerOptionsFrom(config) });
  const api = composeApi({
    config,
    redis: connection,
    queues,
    ledger,
    groups: groupLedgerFor(config, connection, ledger),
    // No consumer runs in-process: a held task waits, as in a pool whose workers are all busy.
    onHeld: () => {},
    logger,
    metrics: NO_METRICS,
    hostMetrics: { scrape: () => Promise.resolve('# no process metrics in-process\n') },
    health: options.health ?? (() => Promise.resolve({ redis: true, consumer: true })),
    jobNames: createHandlers(config),
    staleClaimMs: options.staleClaimMs,
    adminRefreshMs: options.adminRefreshMs,
  });
  const server = await new Promise<Server>((resolve) => {
    const listening = createApp({ ...api.app, waitingFor: options.waitingFor }).listen(0, '127.0.0.1', () =>
      resolve(listening),
    );
  });
  answerClientErrors(server, logger);
  const address = server.address();
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    server,
    ledger,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The service's configuration for the prefix, with the test's settings; the dashboard is off unless asked for. */
function configOf(options: InProcessAppOptions): Config {
  const config = loadConfig({ QUEUE_PREFIX: options.prefix });
  return {
    ...config,
    apiKey: options.apiKey,
    metricsPublic: options.metricsPublic ?? false,
    adminUi: options.adminUi ?? false,
    workerTtlMs: options.workerTtlMs ?? config.workerTtlMs,
    maxBacklog: options.maxBacklog ?? config.maxBacklog,
    bulkMax: options.bulkMax ?? config.bulkMax,
    dummyJobNames: options.dummyJobNames ?? '*',
    sseMaxStreams: options.sseMaxStreams ?? config.sseMaxStreams,
    sseMaxLifetimeMs: options.sseMaxLifetimeMs ?? config.sseMaxLifetimeMs,
  };
}

export interface StartedApp extends InProcessApp {
  readonly connection: RedisClient;
  readonly queues: QueueRegistry;
}

/**
 * An in-process app with a Redis connection and queue registry of its own, closed with it: as far
 * as Redis can tell, one more service process. `redis` is one server's URL, or a target that may be a
 * Redis Cluster (`ModeRedis.target`).
 */
export async function startApp(
  redis: string | RedisTarget,
  options: Omit<InProcessAppOptions, 'connection' | 'queues'>,
): Promise<StartedApp> {
  const target: RedisTarget = typeof redis === 'string' ? { kind: 'single', url: redis } : redis;
  const connection = createRedisConnection(target, 'command', options.logger);
  await waitUntilReady(connection, 10_000);
  const queues = createQueueRegistry({ connection, prefix: options.prefix });
  const app = await serveApp({ ...options, connection, queues });
  return {
    ...app,
    connection,
    queues,
    async close() {
      await app.close();
      await queues.close();
      await closeConnection(connection);
    },
  };
}
