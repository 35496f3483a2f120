/**
 * What a process's HTTP API answers from, over its request connection and the queue registry on it:
 * the job reader (which follows a moved job to its current queue), the lister, the canceller, the
 * dispatcher, the idempotency store, the event streams, the group ledger (`/groups`), the queue
 * dashboard and the scrape, as `createApp`'s options; and the expirer, which shares the reader and
 * the canceller's way of taking a waiting job out.
 * A process and the in-process test app (test/support/in-process-app.ts) both compose their API here,
 * so that what the HTTP tests serve is what a process serves: they differ only in what they pass.
 */
import type { Config } from '../config/config.js';
import type { AppOptions } from '../http/app.js';
import type { JobNames } from '../http/routes/tasks.js';
import { createAdminUi } from '../http/admin/admin-ui.js';
import { createEventStreams, type EventStreams } from '../http/event-streams.js';
import { createDispatcher, type Dispatcher } from '../enqueue/dispatcher.js';
import { createScheduler, TICK_LEASE_MS, type Scheduler } from '../schedules/scheduler.js';
import { tracedDispatcher } from '../enqueue/send-span.js';
import { noTracing, type Tracing } from '../tracing/tracing.js';
import { createScheduleStore, type ScheduleStore } from '../schedules/store.js';
import { createIdempotencyStore } from '../idempotency/store.js';
import { createCanceller, type Canceller } from '../cancel/canceller.js';
import { cancelKeys } from '../cancel/signals.js';
import { createJobReader, type JobReader } from '../jobs/reader.js';
import { createJobLister, type JobLister } from '../jobs/lister.js';
import { createExpirer, type Expirer } from '../expiry/expirer.js';
import type { HostMetricsClient } from '../metrics/host-metrics-client.js';
import type { ProcessMetrics } from '../metrics/process-metrics.js';
import { createScrape } from '../metrics/scrape.js';
import type { AddStepHook } from '../queue/add-jobs.js';
import { createCancelWaiting, createTakeOut, type TakeOut } from '../queue/cancel-waiting.js';
import { jobOptionsFrom } from '../queue/job-options.js';
import type { QueueRegistry } from '../queue/queues.js';
import type { Ledger } from '../ledger/ledger.js';
import type { GroupLedger } from '../ledger/groups.js';
import { readLocation } from '../ledger/moves.js';
import type { RedisClient } from '../redis/connections.js';
import type { ReplicaAcks } from '../redis/replica-acks.js';
import { jobIndexKey, ledgerKeys } from '../contracts/keys.js';
import { DELAYED_QUEUE, HELD_QUEUE } from '../contracts/names.js';
import type { Logger } from '../logging/logger.js';

/** What the API counts: a process's own metrics (the in-process test app counts nothing). */
export type ApiMetrics = Pick<
  ProcessMetrics,
  'httpRequest' | 'jobEnqueued' | 'undoFailed' | 'jobCancelled' | 'jobExpired' | 'scheduleTicks'
>;

export interface ApiOptions {
  readonly config: Config;
  /** The fail-fast request connection: every Redis call of a request goes through it. */
  readonly redis: RedisClient;
  /** Queue handles on `redis`. */
  readonly queues: QueueRegistry;
  /** The ledger on `redis`. */
  readonly ledger: Ledger;
  /** The group ledger on `redis`. */
  readonly groups: GroupLedger;
  /** Told after tasks were held, or a group's settings changed: the process's releaser runs (fairness/releaser.ts). */
  readonly onHeld: () => void;
  readonly logger: Logger;
  readonly metrics: ApiMetrics;
  /** The host's summed process metrics, which `GET /metrics` answers followed by the load gauges. */
  readonly hostMetrics: Pick<HostMetricsClient, 'scrape'>;
  readonly health: AppOptions['health'];
  /** The job names a task may have: the handler registry's. */
  readonly jobNames: JobNames;
  /** Durable acceptance (ENQUEUE_MIN_REPLICAS): see redis/replica-acks.ts. */
  readonly replicaAcks?: ReplicaAcks | undefined;
  /** Fault tests only: see `ProcessParts.afterAddStep`. */
  readonly afterAddStep?: AddStepHook | undefined;
  /** Spans of the requests and enqueues (tracing/tracing.ts); off when not given. */
  readonly tracing?: Tracing | undefined;
  /** Fault tests only: see `ProcessParts.afterTickStep`. */
  readonly afterTickStep?: ((step: string) => Promise<void>) | undefined;
  /** Age after which an idempotency claim is taken over; IDEMPOTENCY_STALE_CLAIM_MS by default. */
  readonly staleClaimMs?: number | undefined;
  /** How long the dashboard shows a list of worker ids before reading it again; its own default otherwise. */
  readonly adminRefreshMs?: number | undefined;
}

export interface Api {
  readonly app: AppOptions;
  /** The job index's lister, which its owner also sweeps (see jobs/lister.ts). */
  readonly jobList: JobLister;
  /** The open event streams, which the shutdown ends. */
  readonly streams: EventStreams;
  /** Makes the jobs of due schedules: its owner runs its passes (see schedules/scheduler.ts). */
  readonly scheduler: Scheduler;
  /** Expires due jobs; its owner runs its passes (see expiry/expirer.ts). */
  readonly expirer: Expirer;
}

export function composeApi(options: ApiOptions): Api {
  const { config, queues, ledger, logger } = options;
  const { reader, jobList } = jobReading(options);
  const enqueue = enqueueing(options);
  const scheduleStore = createScheduleStore({ redis: options.redis, prefix: config.prefix });
  const streams = createEventStreams({ maxStreams: config.sseMaxStreams, maxLifetimeMs: config.sseMaxLifetimeMs });
  const takeOut = takingOut(options);
  return {
    jobList,
    streams,
    scheduler: scheduling(options, scheduleStore, enqueue.dispatcher, reader),
    expirer: createExpirer({
      redis: options.redis,
      expiriesKey: ledgerKeys(config.prefix).expiries,
      reader,
      takeOut: takeOut('expiry'),
      metrics: options.metrics,
      logger,
    }),
    app: {
      ...enqueue,
      jobs: reader,
      streams,
      jobList,
      canceller: cancelling(options, reader, takeOut('cancel')),
      groups: {
        ledger: options.groups,
        // New settings may let held jobs start: this process's releaser hands them out, pool-wide.
        onChanged: options.onHeld,
        defaultConcurrency: config.groupConcurrency,
      },
      schedules: { store: scheduleStore, minIntervalMs: config.scheduleMinIntervalMs },
      snapshot: () => ledger.snapshot(),
      metrics: options.metrics,
      scrape: createScrape({
        host: options.hostMetrics,
        snapshot: () => ledger.snapshot(),
        queues,
        groups: () => options.groups.all(),
        groupLabels: { top: config.groupMetricsTop, hostId: config.hostId },
      }),
      health: options.health,
      tracing: options.tracing,
      logger,
      bodyLimitBytes: config.bodyLimitBytes,
      bulk: { maxTasks: config.bulkMax, bodyLimitBytes: config.bulkBodyLimitBytes },
      limits: { maxDurationMs: config.maxTaskDurationMs, maxTimeoutMs: config.jobTimeoutMs },
      jobNames: options.jobNames,
      apiKey: config.apiKey,
      metricsPublic: config.metricsPublic,
      admin: config.adminUi
        ? createAdminUi({ workerIds: () => ledger.knownWorkers(), queues, logger, refreshMs: options.adminRefreshMs })
        : undefined,
    },
  };
}

function jobReading({ config, redis, queues, ledger }: ApiOptions): { reader: JobReader; jobList: JobLister } {
  const reader = createJobReader({
    redis,
    queues,
    isKnownWorker: (id) => ledger.isKnownWorker(id),
    // On the request connection, like every other read of a request: the moves' own connection is
    // the consumer's, which holds commands while Redis is away, and a read would hang until it is back.
    locate: (token) => readLocation(redis, config.prefix, token),
  });
  const jobList = createJobLister({
    redis,
    indexKey: jobIndexKey(config.prefix),
    reader,
    sweepAfterMs: Math.min(config.retention.completed.ageSeconds, config.retention.failed.ageSeconds) * 1000,
    sweepIntervalMs: config.reconcileIntervalMs,
  });
  return { reader, jobList };
}

/**
 * The scheduler, enqueueing through the API's dispatcher. Its idempotency claims (one per tick) are
 * taken over once a tick's lease has passed: a claim is held only while one job is added.
 */
function scheduling(options: ApiOptions, store: ScheduleStore, dispatcher: Dispatcher, reader: JobReader): Scheduler {
  const { config, redis, logger, metrics } = options;
  return createScheduler({
    store,
    idempotency: createIdempotencyStore({
      redis,
      prefix: config.prefix,
      ttlSeconds: config.idempotencyTtlSeconds,
      staleClaimMs: TICK_LEASE_MS,
    }),
    dispatcher,
    reader,
    logger,
    onTicks: (outcome, count) => metrics.scheduleTicks(outcome, count),
    afterStep: options.afterTickStep,
    onEnqueued: ({ workerId }, jobName) => {
      // A delayed job is counted where it goes when it is due, as for a client's.
      if (workerId !== null) metrics.jobEnqueued(workerId, jobName);
    },
  });
}

function enqueueing(options: ApiOptions): Pick<AppOptions, 'idempotency' | 'dispatcher' | 'replicaAcks'> {
  const { config, redis, queues, ledger, logger, replicaAcks } = options;
  const tracing = options.tracing ?? noTracing();
  return {
    replicaAcks,
    idempotency: createIdempotencyStore({
      redis,
      prefix: config.prefix,
      ttlSeconds: config.idempotencyTtlSeconds,
      staleClaimMs: options.staleClaimMs ?? config.idempotencyStaleClaimMs,
    }),
    dispatcher: tracedDispatcher(
      createDispatcher({
        ledger,
        groups: options.groups,
        onHeld: options.onHeld,
        queues,
        connection: redis,
        jobOptions: jobOptionsFrom(config),
        logger,
        metrics: options.metrics,
        indexKey: jobIndexKey(config.prefix),
        expiriesKey: ledgerKeys(config.prefix).expiries,
        retryAfterSeconds: Math.max(1, Math.ceil(config.taskDurationMs / 1000)),
        afterAddStep: options.afterAddStep,
        replicaAcks,
        // Off, nothing is told: a placement's attributes are not even made.
        tracing: tracing.enabled ? tracing : undefined,
      }),
      tracing,
    ),
  };
}

function cancelling(options: ApiOptions, reader: JobReader, takeOut: TakeOut): Canceller {
  const { config, redis, metrics } = options;
  return createCanceller({
    redis,
    keys: cancelKeys(config.prefix),
    reader,
    takeOut,
    metrics,
    tracing: options.tracing,
  });
}

/** How a waiting job is taken out of its queue, for the canceller and the expirer (their log events differ). */
function takingOut(options: ApiOptions): (eventPrefix: string) => TakeOut {
  const { redis, queues, ledger, logger } = options;
  const cancelWaiting = createCancelWaiting({ redis, queues });
  return (eventPrefix) =>
    createTakeOut({
      cancelWaiting,
      ledger,
      groups: options.groups,
      heldJobKey: (jobId) => queues.forWorker(HELD_QUEUE).toKey(jobId),
      logger,
      unroutedWorker: DELAYED_QUEUE,
      eventPrefix,
    });
}
