/**
 * The HTTP app in-process on port 0 against a real Redis, for contract tests (bad input, API key,
 * Redis in odd states) that need no worker processes: the real app, ledger, dispatcher and queues,
 * with the cluster-only parts (metrics IPC, consumer health) replaced by plain values.
 */
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { createAdminUi } from '../../src/http/admin/admin-ui.js';
import { createApp } from '../../src/http/app.js';
import { answerClientErrors } from '../../src/http/client-errors.js';
import { createIdempotencyStore, STALE_CLAIM_MS } from '../../src/idempotency/store.js';
import { createLedger, type Ledger } from '../../src/ledger/ledger.js';
import { jobOptionsFrom } from '../../src/queue/job-options.js';
import { createJobReader } from '../../src/jobs/reader.js';
import { createQueueRegistry, type QueueRegistry } from '../../src/queue/queues.js';
import { jobIndexKey } from '../../src/contracts/keys.js';
import { createJobLister } from '../../src/jobs/lister.js';
import { createCanceller } from '../../src/cancel/canceller.js';
import { cancelKeys } from '../../src/cancel/signals.js';
import { createCancelWaiting } from '../../src/queue/cancel-waiting.js';
import { DELAYED_QUEUE } from '../../src/contracts/names.js';
import {
  closeConnection,
  createRedisConnection,
  waitUntilReady,
  type RedisClient,
} from '../../src/redis/connections.js';
import type { RedisTarget } from '../../src/redis/target.js';
import { createDispatcher } from '../../src/enqueue/dispatcher.js';

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
  /** MAX_BACKLOG; unlimited by default. */
  readonly maxBacklog?: number;
  /** BULK_MAX; defaults to the service's. */
  readonly bulkMax?: number;
  /** Age after which an idempotency claim is taken over; defaults to the service's. */
  readonly staleClaimMs?: number;
  /** Defaults to a healthy Redis and consumer. */
  readonly health?: () => Promise<{ redis: boolean; consumer: boolean }>;
}

export interface InProcessApp {
  readonly url: string;
  readonly server: Server;
  readonly ledger: Ledger;
  close(): Promise<void>;
}

export async function serveApp(options: InProcessAppOptions): Promise<InProcessApp> {
  const { connection, queues, prefix, logger } = options;
  const config = loadConfig({ QUEUE_PREFIX: prefix });
  const ledger = createLedger({
    redis: connection,
    prefix,
    workerTtlMs: options.workerTtlMs ?? config.workerTtlMs,
    ...(options.maxBacklog === undefined ? {} : { maxBacklog: options.maxBacklog }),
  });
  const reader = createJobReader({
    queues,
    isKnownWorker: (id) => ledger.isKnownWorker(id),
    locate: () => Promise.resolve(undefined),
  });
  const app = createApp({
    idempotency: createIdempotencyStore({
      redis: connection,
      prefix,
      ttlSeconds: config.idempotencyTtlSeconds,
      staleClaimMs: options.staleClaimMs ?? STALE_CLAIM_MS,
    }),
    dispatcher: createDispatcher({
      ledger,
      queues,
      connection,
      jobOptions: jobOptionsFrom(config),
      logger,
      metrics: { undoFailed: () => {} },
      indexKey: jobIndexKey(prefix),
      retryAfterSeconds: 1,
    }),
    jobs: reader,
    jobList: createJobLister({
      redis: connection,
      indexKey: jobIndexKey(prefix),
      reader,
      sweepAfterMs: Math.min(config.retention.completed.ageSeconds, config.retention.failed.ageSeconds) * 1000,
      sweepIntervalMs: config.reconcileIntervalMs,
    }),
    canceller: createCanceller({
      redis: connection,
      keys: cancelKeys(prefix),
      reader,
      cancelWaiting: createCancelWaiting({ redis: connection, queues }),
      ledger,
      metrics: { jobCancelled: () => {} },
      logger,
      unroutedWorker: DELAYED_QUEUE,
    }),
    snapshot: () => ledger.snapshot(),
    health: options.health ?? (() => Promise.resolve({ redis: true, consumer: true })),
    logger,
    metrics: { httpRequest: () => {}, jobEnqueued: () => {} },
    scrape: () => Promise.resolve('# no metrics in-process\n'),
    bodyLimitBytes: config.bodyLimitBytes,
    bulk: { maxTasks: options.bulkMax ?? config.bulkMax, bodyLimitBytes: config.bulkBodyLimitBytes },
    limits: { maxDurationMs: config.maxTaskDurationMs, maxTimeoutMs: config.jobTimeoutMs },
    apiKey: options.apiKey,
    metricsPublic: options.metricsPublic ?? false,
    admin: options.adminUi
      ? createAdminUi({
          workerIds: () => ledger.knownWorkers(),
          queues,
          logger,
          ...(options.adminRefreshMs === undefined ? {} : { refreshMs: options.adminRefreshMs }),
        })
      : undefined,
  });
  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
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
