/**
 * What a process does besides answering HTTP, started once it holds its worker id and has recovered:
 * it hears cancels, consumes the id's queue, keeps the id's lease (and retires dead ids it is told
 * are due), steals from the busiest worker, routes delayed jobs that come due, reconciles the
 * ledger and drops what it holds of ids that are gone. The order matters: the first heartbeat goes
 * out as soon as the consumer runs.
 */
import type { Config } from '../config/config.js';
import { createDelayedRouter, type DelayedRouter } from '../enqueue/delayed-router.js';
import { cancelKeys, createCancelWatch, type CancelWatch } from '../cancel/signals.js';
import { createStealer, type Stealer } from '../ownership/stealer.js';
import { keepLease } from '../ownership/lease-keeper.js';
import { createConsumer, type Consumer } from '../execution/consumer.js';
import { retentionFrom } from '../queue/job-options.js';
import { ledgerKeys } from '../contracts/keys.js';
import { every, type Periodic } from '../platform/periodic.js';
import type { ProcessParts } from './build.js';
import { pruneEvery } from './prune.js';

/**
 * How often a process looks for held jobs that may start without a slot freeing here: a group whose
 * rate limit lets it start again, a worker that joined, a release another process left half done.
 */
const RELEASE_TICK_MS = 200;

export interface Background {
  readonly consumer: Consumer;
  /** The lease's heartbeat: it runs until the running jobs are done. */
  readonly leaseKeeper: Periodic;
  /**
   * Stopped first, in this order: taking new work (draining), delayed routing, stealing, reconciling,
   * pruning the state of gone worker ids.
   */
  readonly loops: readonly { stop(): unknown }[];
  /** Stopped last: starts no retirement from then on, and waits for the one under way, if any. */
  readonly retirement: { stop(): unknown };
}

export async function startBackground(
  parts: ProcessParts,
  config: Config,
  onLeaseLost: () => void,
): Promise<Background> {
  const { workerId, logger, running } = parts;
  const cancelWatch = createCancelWatch({
    subscriber: parts.subscriber,
    redis: parts.consumerConnection,
    keys: cancelKeys(config.prefix),
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
  const consumer = await startConsumer(parts, config, cancelWatch, stealer);
  // A process that drains takes on no retirement: it would hold the shutdown for its moves.
  const retirement = oneRetirementAtATime(parts, () => draining);
  const leaseKeeper = keepLease({
    workerId,
    concurrency: config.concurrency,
    leases: parts.leases,
    intervalMs: config.heartbeatIntervalMs,
    ttlMs: config.workerTtlMs,
    routable: () => !draining && consumer.isRunning(),
    onLost: onLeaseLost,
    onDue: retirement.retire,
    onBeat: () => {
      if (config.workStealing) stealer.trigger();
    },
    logger,
  });
  // The first beat goes out as soon as the consumer runs: a re-forked id runs its recovered jobs from
  // here on, and should read as alive (and routable) while it does, not only after the rest starts.
  await leaseKeeper.runNow();
  const delayedRouter = await startDelayedRouter(parts, config, cancelWatch);
  return {
    consumer,
    leaseKeeper,
    loops: [
      { stop: () => (draining = true) },
      { stop: () => delayedRouter.close() },
      { stop: () => stealer.stop() },
      every(
        RELEASE_TICK_MS,
        () => {
          parts.releaser.poke();
          return parts.releaser.settle();
        },
        () => {},
      ),
      reconcileEvery(parts, config),
      pruneEvery(parts, config),
    ],
    retirement: { stop: retirement.stop },
  };
}

async function startConsumer(
  parts: ProcessParts,
  config: Config,
  cancelWatch: CancelWatch,
  stealer: Stealer,
): Promise<Consumer> {
  const { workerId, jobLedger } = parts;
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
      started: (token) => jobLedger.markStarted(workerId, token),
      // A job that ended for good hands its slot to the next held job in the same ledger step.
      ended: (token, outcome) =>
        outcome === 'retrying' ? jobLedger.markRequeued(workerId, token) : parts.releaser.finished(workerId, token),
      handsOn: () => parts.releaser.handsOn(),
    },
    logger: parts.logger,
    metrics: parts.metrics,
    tracing: parts.tracing,
    running: parts.running,
    onSlotFree: () => {
      if (config.workStealing) stealer.slotFreed();
    },
    wasCancelled: (jobId, token, enqueuedAt) => cancelWatch.wasCancelled(jobId, token, enqueuedAt),
    forgetExpiry: forgetExpiry(parts, config),
  });
  cancelWatch.onHeard((jobId) => consumer.cancel(jobId));
  cancelWatch.watchRunning(() => consumer.runningJobs());
  await consumer.waitUntilReady();
  return consumer;
}

/**
 * One retirement at a time in this process; ids due again while one runs wait for the next beat. None
 * starts once `draining` holds or once stopped: the heartbeat goes on while running jobs finish, and
 * still names the ids that are due, but a retirement begun then would be cut off by this process's own stop.
 */
export function oneRetirementAtATime(
  {
    retirer,
    logger,
  }: { readonly retirer: Pick<ProcessParts['retirer'], 'retire'>; readonly logger: ProcessParts['logger'] },
  draining: () => boolean,
): {
  readonly retire: (ids: readonly string[]) => void;
  /** No retirement starts from now on; resolves once the one under way, if any, has ended. */
  readonly stop: () => Promise<unknown> | undefined;
  /** The retirement under way, if any. */
  readonly underWay: () => Promise<unknown> | undefined;
} {
  let retiring: Promise<unknown> | undefined;
  let stopped = false;
  return {
    retire: (ids) => {
      if (stopped || draining()) return;
      retiring ??= (async () => {
        for (const id of ids) await retirer.retire(id);
      })()
        .catch((error: unknown) =>
          logger.warn({ event: 'retirement.failed', err: error }, 'retirement pass failed; the next one retries'),
        )
        .finally(() => (retiring = undefined));
    },
    stop: () => {
      stopped = true;
      return retiring;
    },
    underWay: () => retiring,
  };
}

async function startDelayedRouter(
  parts: ProcessParts,
  config: Config,
  cancelWatch: CancelWatch,
): Promise<DelayedRouter> {
  const locations = ledgerKeys(config.prefix);
  const forget = forgetExpiry(parts, config);
  const delayedRouter = createDelayedRouter({
    connection: parts.consumerConnection,
    prefix: config.prefix,
    ledger: parts.jobLedger,
    groups: parts.jobGroups,
    onHeld: () => parts.releaser.poke(),
    queues: parts.moveQueues,
    locationKey: (token) => locations.location(token),
    locationTtlMs: parts.locationTtlMs,
    lockDurationMs: config.lockDurationMs,
    wasCancelled: (jobId, token, enqueuedAt) => cancelWatch.wasCancelled(jobId, token, enqueuedAt),
    onRouted: (routedTo, jobName) => parts.metrics.jobEnqueued(routedTo, jobName),
    onExpired: (jobId, jobName) => {
      parts.metrics.jobExpired(jobName);
      void forget(jobId).catch(() => {});
    },
    logger: parts.logger,
    afterStep: parts.afterAddStep,
  });
  await delayedRouter.waitUntilReady();
  return delayedRouter;
}

/** Drops a job's entry from the expiries, on the consumer's connection (see expiry/expirer.ts). */
function forgetExpiry(parts: ProcessParts, config: Config): (jobId: string) => Promise<unknown> {
  const key = ledgerKeys(config.prefix).expiries;
  return (jobId) => parts.consumerConnection.zrem(key, jobId);
}

/** Fixes the ledger from BullMQ's own state, finishes moves whose executor died, cleans retired queues. */
function reconcileEvery(parts: ProcessParts, config: Config): Periodic {
  // Each step logs its own failure (see reconcilePass): nothing is left for this but the unforeseen.
  return every(config.reconcileIntervalMs, reconcilePass({ ...parts, graceMs: config.reservationGraceMs }), (error) =>
    parts.logger.warn({ event: 'reconcile.failed', err: error }, 'reconcile pass failed'),
  );
}

/**
 * The periodic pass's three steps, in turn and each on its own: one that fails is logged, and the
 * next still runs, so that a ledger Redis refuses does not stop moves from being finished.
 */
export function reconcilePass({
  reconciler,
  mover,
  retirer,
  releaser,
  jobLedger,
  graceMs,
  logger,
}: {
  readonly reconciler: Pick<ProcessParts['reconciler'], 'reconcile'>;
  readonly mover: Pick<ProcessParts['mover'], 'recover'>;
  readonly retirer: Pick<ProcessParts['retirer'], 'purge'>;
  readonly releaser: Pick<ProcessParts['releaser'], 'recover'>;
  readonly jobLedger: Pick<ProcessParts['jobLedger'], 'now'>;
  readonly graceMs: number;
  readonly logger: ProcessParts['logger'];
}): () => Promise<void> {
  const steps = [
    { event: 'reconcile.failed', run: () => reconciler.reconcile(), msg: 'reconcile pass failed' },
    { event: 'move.recovery-failed', run: () => mover.recover(), msg: 'finishing interrupted moves failed' },
    {
      event: 'release.recovery-failed',
      run: async () => releaser.recover(graceMs, await jobLedger.now()),
      msg: 'finishing interrupted releases failed',
    },
    { event: 'retirement.purge-failed', run: () => retirer.purge(), msg: 'cleaning retired queues failed' },
  ];
  return async () => {
    for (const { event, run, msg } of steps) {
      try {
        await run();
      } catch (error) {
        logger.warn({ event, err: error }, msg);
      }
    }
  };
}
