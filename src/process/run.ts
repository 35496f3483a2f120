/**
 * Composition root of one process: build its parts, take its worker id and recover what its
 * predecessor left, then consume its queue, keep its lease, steal and retire in the background, and
 * serve HTTP. It stops gracefully on SIGTERM (which is how the primary asks), when the primary goes
 * away, and at once when its lease is lost or the primary forwards a second Ctrl-C.
 */
import type { Server } from 'node:http';
import type { RedisTarget } from '../redis/target.js';
import type { Config } from '../config/config.js';
import { LeaseRefusedError } from '../errors.js';
import { createAdminUi } from '../http/admin/admin-ui.js';
import { createApp } from '../http/app.js';
import { answerClientErrors } from '../http/client-errors.js';
import type { Logger } from '../logging/logger.js';
import { createScrape } from '../metrics/scrape.js';
import { createStealer } from '../ownership/stealer.js';
import { createConsumer } from '../execution/consumer.js';
import { createJobReader } from '../jobs/reader.js';
import { createJobLister } from '../jobs/lister.js';
import { createCancelWaiting } from '../queue/cancel-waiting.js';
import { DELAYED_QUEUE } from '../contracts/names.js';
import { createCanceller } from '../cancel/canceller.js';
import { cancelKeys, createCancelWatch } from '../cancel/signals.js';
import { jobIndexKey, ledgerKeys } from '../contracts/keys.js';
import { readLocation } from '../ledger/moves.js';
import { createDelayedRouter } from '../enqueue/delayed-router.js';
import { createIdempotencyStore } from '../idempotency/store.js';
import { jobOptionsFrom, retentionFrom } from '../queue/job-options.js';
import { createDispatcher } from '../enqueue/dispatcher.js';
import {
  EXIT_LEASE_REFUSED,
  EXIT_PORT_IN_USE,
  FORCE_STOP_MESSAGE,
  LEASE_REFUSED_MESSAGE,
  portInUse,
  type LeaseRefusedMessage,
} from '../contracts/process-messages.js';
import { every } from '../platform/periodic.js';
import { buildProcess, type ProcessParts } from './build.js';
import { keepLease } from '../ownership/lease-keeper.js';
import { recoverOnStart } from './recovery.js';
import { createShutdown, type Running } from './shutdown.js';

/** The exit code of a process whose lease was lost: the primary forks it again, as after a crash. */
const EXIT_LEASE_LOST = 4;

export async function runProcess(config: Config, redis: RedisTarget, index: number, baseLogger: Logger): Promise<void> {
  // Until start-up completes there is nothing to drain: a lost primary or a SIGTERM ends us at once.
  // The primary stops its workers with SIGTERM rather than a message because a signal also reaches a
  // process that is still loading its modules, where a message would be dropped unheard.
  const exitEarly = () => process.exit(0);
  process.once('disconnect', exitEarly);
  process.once('SIGTERM', exitEarly);

  const parts = await buildProcess(config, redis, index, baseLogger);
  const { logger } = parts;
  try {
    await recoverOnStart(parts, config);
  } catch (error) {
    if (!(error instanceof LeaseRefusedError)) throw error;
    logger.error({ event: 'lease.refused', hostId: config.hostId, holder: error.holder }, error.message);
    const message: LeaseRefusedMessage = {
      type: LEASE_REFUSED_MESSAGE,
      workerId: parts.workerId,
      reason: error.message,
    };
    process.send?.(message, () => process.exit(EXIT_LEASE_REFUSED));
    setTimeout(() => process.exit(EXIT_LEASE_REFUSED), 1_000).unref();
    return;
  }

  // Filled once start-up completes; a shutdown asked for before then has less to stop.
  const started: { running?: Running } = {};
  const shutdown = createShutdown(parts, () => started.running, config.shutdownTimeoutMs);
  started.running = await start(parts, config, {
    onLeaseLost: () => {
      logger.error(
        { event: 'lease.lost', hostId: config.hostId },
        'the lease of this worker id was lost (another process took the id, or retired it): its jobs were handed over; stopping them and exiting',
      );
      void shutdown.abandon('lease lost').finally(() => process.exit(EXIT_LEASE_LOST));
    },
  });

  const exitAfter = (reason: string) => {
    void shutdown.stop(reason).finally(() => process.exit(0));
  };
  process.off('disconnect', exitEarly);
  process.off('SIGTERM', exitEarly);
  process.on('message', (message) => {
    if (message === FORCE_STOP_MESSAGE) void shutdown.abandon('a second signal').finally(() => process.exit(0));
  });
  process.on('SIGTERM', () => exitAfter('SIGTERM'));
  // A Ctrl-C reaches every process of the terminal's group; the primary coordinates the shutdown.
  process.on('SIGINT', () => {});
  // The IPC channel closes when the primary dies: never outlive it.
  process.on('disconnect', () => exitAfter('primary is gone'));
}

/** Consumes, keeps the lease, steals, retires and reconciles, and serves HTTP. */
async function start(
  parts: ProcessParts,
  config: Config,
  { onLeaseLost }: { onLeaseLost: () => void },
): Promise<Running> {
  const { workerId, logger, ledger, queues, running } = parts;
  const cancels = cancelKeys(config.prefix);
  const locations = ledgerKeys(config.prefix);
  const cancelWatch = createCancelWatch({
    subscriber: parts.subscriber,
    redis: parts.consumerConnection,
    keys: cancels,
    logger,
  });
  await cancelWatch.start();
  let draining = false;

  const stealer = createStealer({
    workerId,
    ledger: parts.moves,
    transfer: parts.transfer,
    mover: parts.mover,
    freeSlots: () => (draining ? 0 : config.concurrency - running.size),
    logger,
  });
  const consumer = createConsumer({
    workerId,
    connection: parts.consumerConnection,
    prefix: config.prefix,
    concurrency: config.concurrency,
    lockDurationMs: config.lockDurationMs,
    defaultDurationMs: config.taskDurationMs,
    maxDurationMs: config.maxTaskDurationMs,
    jobTimeoutMs: config.jobTimeoutMs,
    progressIntervalMs: config.progressIntervalMs,
    retention: retentionFrom(config),
    pool: parts.pool,
    handlers: parts.handlers,
    ledger: {
      started: (token) => parts.jobLedger.markStarted(workerId, token),
      ended: (token, outcome) =>
        outcome === 'retrying'
          ? parts.jobLedger.markRequeued(workerId, token)
          : parts.jobLedger.release(workerId, token),
    },
    logger,
    metrics: parts.metrics,
    running,
    ...(config.workStealing ? { onSlotFree: () => stealer.trigger() } : {}),
    wasCancelled: (jobId, token, enqueuedAt) => cancelWatch.wasCancelled(jobId, token, enqueuedAt),
  });
  cancelWatch.onHeard((jobId) => consumer.cancel(jobId));
  await consumer.waitUntilReady();
  // One retirement at a time in this process; ids due again while one runs wait for the next beat.
  let retiring: Promise<unknown> | undefined;
  const retire = (ids: readonly string[]) => {
    retiring ??= (async () => {
      for (const id of ids) await parts.retirer.retire(id);
    })()
      .catch((error: unknown) =>
        logger.warn({ event: 'retirement.failed', err: error }, 'retirement pass failed; the next one retries'),
      )
      .finally(() => (retiring = undefined));
  };
  const leaseKeeper = keepLease({
    workerId,
    concurrency: config.concurrency,
    leases: parts.leases,
    intervalMs: config.heartbeatIntervalMs,
    ttlMs: config.workerTtlMs,
    routable: () => !draining && consumer.isRunning(),
    onLost: onLeaseLost,
    onDue: retire,
    onBeat: () => {
      if (config.workStealing) stealer.trigger();
    },
    logger,
  });
  // The first beat goes out as soon as the consumer runs: a re-forked id runs its recovered jobs from
  // here on, and should read as alive (and routable) while it does, not only after the rest starts.
  await leaseKeeper.runNow();
  const delayedRouter = createDelayedRouter({
    connection: parts.consumerConnection,
    prefix: config.prefix,
    ledger: parts.jobLedger,
    queues: parts.moveQueues,
    locationKey: (token) => locations.location(token),
    locationTtlMs: parts.locationTtlMs,
    lockDurationMs: config.lockDurationMs,
    wasCancelled: (jobId, token, enqueuedAt) => cancelWatch.wasCancelled(jobId, token, enqueuedAt),
    onRouted: (routedTo, jobName) => parts.metrics.jobEnqueued(routedTo, jobName),
    logger,
    afterStep: parts.afterAddStep,
  });
  await delayedRouter.waitUntilReady();
  const reconciling = every(
    config.reconcileIntervalMs,
    async () => {
      await parts.reconciler.reconcile();
      await parts.mover.recover();
      await parts.retirer.purge();
    },
    (error) => logger.warn({ event: 'reconcile.failed', err: error }, 'reconcile pass failed'),
  );

  const reader = createJobReader({
    queues,
    isKnownWorker: (id) => ledger.isKnownWorker(id),
    // On the request connection, like every other read of a request: the moves' own connection is
    // the consumer's, which holds commands while Redis is away, and a read would hang until it is back.
    locate: (token) => readLocation(parts.commands, config.prefix, token),
  });
  const jobList = createJobLister({
    redis: parts.commands,
    indexKey: jobIndexKey(config.prefix),
    reader,
    sweepAfterMs: Math.min(config.retention.completed.ageSeconds, config.retention.failed.ageSeconds) * 1000,
    sweepIntervalMs: config.reconcileIntervalMs,
  });
  // Drops the index entries of jobs that retention removed (see jobs/lister.ts).
  const sweeping = every(
    config.reconcileIntervalMs,
    () => jobList.sweep(),
    (error) => logger.warn({ event: 'index-sweep.failed', err: error }, 'job index sweep failed'),
  );
  const app = createApp({
    idempotency: createIdempotencyStore({
      redis: parts.commands,
      prefix: config.prefix,
      ttlSeconds: config.idempotencyTtlSeconds,
      staleClaimMs: config.idempotencyStaleClaimMs,
    }),
    dispatcher: createDispatcher({
      ledger,
      queues,
      connection: parts.commands,
      jobOptions: jobOptionsFrom(config),
      logger,
      metrics: parts.metrics,
      indexKey: jobIndexKey(config.prefix),
      retryAfterSeconds: Math.max(1, Math.ceil(config.taskDurationMs / 1000)),
      afterAddStep: parts.afterAddStep,
    }),
    jobs: reader,
    jobList,
    canceller: createCanceller({
      redis: parts.commands,
      keys: cancels,
      reader,
      cancelWaiting: createCancelWaiting({ redis: parts.commands, queues }),
      ledger,
      metrics: parts.metrics,
      logger,
      unroutedWorker: DELAYED_QUEUE,
    }),
    snapshot: () => ledger.snapshot(),
    metrics: parts.metrics,
    scrape: createScrape({ cluster: parts.hostMetrics, snapshot: () => ledger.snapshot(), queues }),
    health: async () => ({
      redis: await parts.commands.ping().then(
        () => true,
        () => false,
      ),
      consumer: consumer.isRunning(),
    }),
    logger,
    bodyLimitBytes: config.bodyLimitBytes,
    bulk: { maxTasks: config.bulkMax, bodyLimitBytes: config.bulkBodyLimitBytes },
    limits: { maxDurationMs: config.maxTaskDurationMs, maxTimeoutMs: config.jobTimeoutMs },
    apiKey: config.apiKey,
    metricsPublic: config.metricsPublic,
    admin: config.adminUi ? createAdminUi({ workerIds: () => ledger.knownWorkers(), queues, logger }) : undefined,
  });
  const server = await listen(app.listen.bind(app), config.port, config.host).catch((error: unknown) => {
    if ((error as { code?: unknown }).code !== 'EADDRINUSE') throw error;
    // Taken since the primary checked it: forking this worker again would not help.
    logger.fatal(
      { event: 'http.port-in-use', port: config.port, host: config.host },
      portInUse(config.port, config.host),
    );
    process.exit(EXIT_PORT_IN_USE);
  });
  answerClientErrors(server, logger);
  logger.info(
    {
      event: 'process.ready',
      port: config.port,
      host: config.host,
      concurrency: config.concurrency,
      handlers: parts.handlers.names,
    },
    'process ready',
  );

  return {
    server,
    consumer,
    leaseKeeper,
    loops: [
      { stop: () => (draining = true) },
      { stop: () => delayedRouter.close() },
      { stop: () => stealer.stop() },
      reconciling,
      sweeping,
      { stop: () => retiring },
    ],
  };
}

function listen(
  listenFn: (port: number, host: string, callback: (error?: Error) => void) => Server,
  port: number,
  host: string,
): Promise<Server> {
  return new Promise((resolveListen, rejectListen) => {
    const server = listenFn(port, host, (error) => (error ? rejectListen(error) : resolveListen(server)));
    server.once('error', rejectListen);
  });
}
