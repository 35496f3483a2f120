/**
 * Composition root of one worker process: it makes the connections, the thread pool, the consumer of
 * its own queue and the HTTP server, starts them in order, and shuts them down in reverse order when
 * the primary asks, when it receives SIGTERM, or when the primary goes away.
 */
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/config.js';
import { createApp } from '../http/app.js';
import { createHandlerRegistry } from '../jobs/handlers.js';
import { createClusterMetricsClient } from '../metrics/cluster-metrics.js';
import { createProcessMetrics } from '../metrics/process-metrics.js';
import { createScrape } from '../metrics/scrape.js';
import { createJobPool } from '../jobs/pool.js';
import type { Logger } from '../logging/logger.js';
import { createConsumer } from '../queue/consumer.js';
import { createJobReader } from '../queue/job-reader.js';
import { jobOptionsFrom } from '../queue/job-options.js';
import { workerIdFor } from '../queue/names.js';
import { createQueueRegistry } from '../queue/queues.js';
import { closeConnection, createRedisConnection, waitUntilReady } from '../redis/connections.js';
import { createDispatcher } from '../scheduling/dispatcher.js';
import { createReconciler } from '../scheduling/reconciler.js';
import { createScheduler, type WorkerInfo } from '../scheduling/scheduler.js';
import { every } from './timers.js';
import { SHUTDOWN_MESSAGE } from './messages.js';

const WORKERS_DIRECTORY = new URL('../../workers/', import.meta.url);
const READY_TIMEOUT_MS = 30_000;
/** Longer than the primary's own wait for the slowest worker, so that it answers first. */
const METRICS_TIMEOUT_MS = 5_000;

export async function runWorkerProcess(config: Config, redisUrl: string, index: number, baseLogger: Logger): Promise<void> {
  const workerId = workerIdFor(config.hostId, index);
  const logger = baseLogger.child({ workerId });
  // Until start-up completes there is nothing to drain: a lost primary or a SIGTERM ends us at once.
  const exitEarly = () => process.exit(0);
  process.once('disconnect', exitEarly);
  process.once('SIGTERM', exitEarly);

  const commands = createRedisConnection(redisUrl, 'command', logger, { commandTimeoutMs: config.commandTimeoutMs });
  const consumerConnection = createRedisConnection(redisUrl, 'consumer', logger);
  await Promise.all([waitUntilReady(commands, READY_TIMEOUT_MS), waitUntilReady(consumerConnection, READY_TIMEOUT_MS)]);

  const schedulerOptions = { prefix: config.prefix, workerTtlMs: config.workerTtlMs, maxBacklog: config.maxBacklog };
  // Requests reserve through the fail-fast connection; running jobs record their moves, and the
  // worker its heartbeat, through the consumer's, which waits out an outage instead of losing them.
  const scheduler = createScheduler({ redis: commands, ...schedulerOptions });
  const ledger = createScheduler({ redis: consumerConnection, ...schedulerOptions });
  const queues = createQueueRegistry({ connection: commands, prefix: config.prefix });
  const handlers = createHandlerRegistry({
    directory: config.handlersDir ?? fileURLToPath(new URL('handlers/', WORKERS_DIRECTORY)),
    fallback: fileURLToPath(new URL('dummy.js', WORKERS_DIRECTORY)),
  });
  const pool = createJobPool({
    runnerFile: fileURLToPath(new URL('runner.js', WORKERS_DIRECTORY)),
    threads: config.concurrency,
    memoryLimitMb: config.threadMemoryLimitMb,
  });
  const metrics = createProcessMetrics({ workerId, knownJobNames: handlers.names, pool });
  const clusterMetrics = createClusterMetricsClient({ registry: metrics.registry, timeoutMs: METRICS_TIMEOUT_MS, channel: process });
  const info: WorkerInfo = {
    id: workerId,
    hostId: config.hostId,
    pid: process.pid,
    concurrency: config.concurrency,
    startedAt: Date.now(),
  };

  // Recover before consuming: this process is the only consumer of its queue, so anything active
  // there now was left by a predecessor that died.
  const consumerRunning = new Set<string>();
  const reconciler = createReconciler({
    workerId,
    redis: commands,
    queue: queues.forWorker(workerId),
    scheduler,
    running: consumerRunning,
    graceMs: config.reservationGraceMs,
    retention: config.retention,
    logger,
  });
  await reconciler.recoverOrphans();
  await scheduler.recount(workerId);
  await reconciler.reconcile();

  const consumer = createConsumer({
    workerId,
    connection: consumerConnection,
    prefix: config.prefix,
    concurrency: config.concurrency,
    lockDurationMs: config.lockDurationMs,
    defaultDurationMs: config.taskDurationMs,
    maxDurationMs: config.maxTaskDurationMs,
    jobTimeoutMs: config.jobTimeoutMs,
    pool,
    handlers,
    scheduler: ledger,
    logger,
    metrics,
    running: consumerRunning,
  });
  await consumer.waitUntilReady();

  const heartbeat = every(config.heartbeatIntervalMs, async () => {
    if (consumer.isRunning()) await ledger.heartbeat(info);
  }, (error) => logger.warn({ err: error }, 'heartbeat failed'));
  await heartbeat.runNow();
  const reconciling = every(config.reconcileIntervalMs, () => reconciler.reconcile(), (error) =>
    logger.warn({ err: error }, 'reconcile pass failed'),
  );

  const app = createApp({
    dispatcher: createDispatcher({
      scheduler,
      queues,
      jobOptions: jobOptionsFrom(config),
      onReleaseError: (error, token) => logger.warn({ err: error, token }, 'could not release a reservation'),
      retryAfterSeconds: Math.max(1, Math.ceil(config.taskDurationMs / 1000)),
    }),
    jobs: createJobReader({ queues, isKnownWorker: (id) => scheduler.isKnownWorker(id) }),
    snapshot: () => scheduler.snapshot(),
    metrics,
    scrape: createScrape({ cluster: clusterMetrics, snapshot: () => scheduler.snapshot(), queues }),
    health: async () => ({
      redis: await commands.ping().then(() => true, () => false),
      consumer: consumer.isRunning(),
    }),
    logger,
    bodyLimitBytes: config.bodyLimitBytes,
    limits: { maxDurationMs: config.maxTaskDurationMs, maxTimeoutMs: config.jobTimeoutMs },
    apiKey: config.apiKey,
    metricsPublic: config.metricsPublic,
  });
  const server = await listen(app.listen.bind(app), config.port, config.host);
  logger.info({ port: config.port, host: config.host, concurrency: config.concurrency, handlers: handlers.names }, 'worker ready');

  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ reason }, 'worker shutting down');
      const step = async (name: string, action: () => Promise<unknown>) => {
        try {
          await action();
        } catch (error) {
          logger.warn({ err: error, step: name }, 'shutdown step failed');
        }
      };
      heartbeat.stop();
      reconciling.stop();
      await step('stop routing here', () => scheduler.deregister(workerId));
      await step('http', () => closeServer(server));
      let drained = false;
      await step('consumer', async () => {
        ({ drained } = await consumer.close(config.shutdownTimeoutMs));
        logger.info({ drained }, 'consumer closed');
      });
      clusterMetrics.close();
      if (drained) {
        await step('thread pool', () => pool.close());
        await step('queues', () => queues.close());
        await step('redis', () => Promise.all([closeConnection(commands), closeConnection(consumerConnection)]));
      } else {
        // Cut Redis first: the jobs stopped next must stay active there, not be marked failed.
        commands.disconnect();
        consumerConnection.disconnect();
        await step('thread pool', () => pool.destroy());
      }
      logger.info('worker stopped');
    })();
    return stopping;
  };

  const exitAfter = (reason: string) => {
    void shutdown(reason).finally(() => process.exit(0));
  };
  process.off('disconnect', exitEarly);
  process.off('SIGTERM', exitEarly);
  process.on('message', (message) => {
    if (message === SHUTDOWN_MESSAGE) exitAfter('primary asked');
  });
  process.on('SIGTERM', () => exitAfter('SIGTERM'));
  // A Ctrl-C reaches every process of the terminal's group; the primary coordinates the shutdown.
  process.on('SIGINT', () => {});
  // The IPC channel closes when the primary dies: never outlive it.
  process.on('disconnect', () => exitAfter('primary is gone'));
}

function listen(listenFn: (port: number, host: string, callback: (error?: Error) => void) => Server, port: number, host: string): Promise<Server> {
  return new Promise((resolveListen, rejectListen) => {
    const server = listenFn(port, host, (error) => (error ? rejectListen(error) : resolveListen(server)));
    server.once('error', rejectListen);
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolveClose, rejectClose) => {
    server.close((error) => (error ? rejectClose(error) : resolveClose()));
    server.closeIdleConnections();
  });
}
