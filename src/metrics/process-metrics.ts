/**
 * The metrics one process measures itself: jobs it accepted, ran, finished and failed, how long
 * they waited and ran, its HTTP latencies, its thread pool, the jobs it moved between workers' queues
 * and the dead workers it retired, the undo steps of refused enqueues that failed, the Redis masters it
 * followed to, and Node's default
 * process metrics. All live on an explicit
 * registry and carry the worker's id and its host's id, so that the primary can sum the processes'
 * registries without series colliding, and so that several hosts' scrapes stay apart in Prometheus.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const METRIC_PREFIX = 'bullpen_';

/**
 * Job run times, in seconds: small buckets for millisecond jobs, then fine steps over the documented
 * job lengths (the dummy's 12 s default, and the seconds-long jobs of the benchmarks and tests), then
 * coarse ones up to the ten-minute `MAX_TASK_DURATION_MS`. `histogram_quantile` interpolates inside a
 * bucket, so a p95 is only as good as the buckets around it.
 */
export const JOB_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10, 12.5, 15, 20, 30, 60, 120, 300, 600,
]);
/**
 * Enqueue to first start: a free slot starts a job within milliseconds, a busy cluster makes it wait for
 * whole jobs.
 */
export const JOB_WAIT_BUCKETS: readonly number[] = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10, 12.5, 15, 20, 30, 60, 120, 300, 600,
]);
const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** How an attempt that ran ended; `cancelled` is one stopped by `DELETE /jobs/:id`, not retried. */
export type JobOutcome = 'completed' | 'failed' | 'cancelled';

/** What a schedule's tick came to (issue 23): see schedules/scheduler.ts. */
export const SCHEDULE_TICK_OUTCOMES = ['made', 'skipped', 'missed'] as const;
export type ScheduleTickOutcome = (typeof SCHEDULE_TICK_OUTCOMES)[number];

/** Why a job left one worker's queue for another's. */
export const JOB_MOVE_REASONS = ['stolen', 'retired'] as const;
export type JobMoveReason = (typeof JOB_MOVE_REASONS)[number];

/**
 * The steps that undo a refused enqueue: cancelling a reservation whose answer was lost, removing a
 * job whose add failed, releasing the slot reserved for it.
 */
export const UNDO_OPERATIONS = ['cancel_reservation', 'remove_job', 'release_reservation'] as const;
export type UndoOperation = (typeof UNDO_OPERATIONS)[number];

/** The `job_name` label of every job without a handler of its own: labels stay bounded. */
export const OTHER_JOB_NAME = 'other';

/**
 * prom-client's default metrics that are left out: gauges whose names end in `_total`, which
 * `promtool check metrics` rejects (only counters may end in `_total`). Nothing is lost: the same
 * default metrics export each count by type, without the suffix, and
 * `sum without (type) (bullpen_nodejs_active_handles)` is the total.
 */
export const DROPPED_DEFAULT_METRICS: readonly string[] = Object.freeze(
  ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'].map(
    (name) => `${METRIC_PREFIX}${name}`,
  ),
);

export interface ProcessMetrics {
  readonly registry: Registry;
  jobEnqueued(assignedWorker: string, jobName: string): void;
  jobStarted(jobName: string, waitSeconds: number | undefined): void;
  jobFinished(jobName: string, outcome: JobOutcome, durationSeconds: number): void;
  /** A job cancelled before its body ran: taken out of its queue, or stopped as it was fetched. */
  jobCancelled(jobName: string): void;
  /** A job that reached its expiry before it started: counted once, by the process that expired it. */
  jobExpired(jobName: string): void;
  httpRequest(route: string, method: string, statusCode: number, seconds: number): void;
  /** One job moved from another worker's queue by this process. */
  jobMoved(reason: JobMoveReason): void;
  /** One dead worker id retired by this process. */
  workerRetired(): void;
  /** Ticks of schedules this process recorded: a job made, a tick skipped (overlap), ticks missed. */
  scheduleTicks(outcome: ScheduleTickOutcome, count: number): void;
  /** One step undoing a refused enqueue failed: what it would have undone is left to the reconciler. */
  undoFailed(operation: UndoOperation): void;
  /** This process's connections reconnected to a master other than the one before (a Sentinel failover). */
  masterChanged(): void;
  /**
   * Drops the enqueue series of worker ids not in `known` (retired and forgotten), so that a process
   * that outlives many deploys under new host names does not keep a series for every id it ever met.
   */
  forgetAssignedWorkers(known: ReadonlySet<string>): Promise<void>;
}

export interface ProcessMetricsOptions {
  readonly workerId: string;
  /** The host this process runs on (`HOST_ID`); the `host` label of every series. */
  readonly hostId: string;
  /**
   * Job names become label values only when they have a handler; the rest fold into `other`. The
   * job counters start at 0 for each of them and for `other`.
   */
  readonly knownJobNames: readonly string[];
  readonly pool: { readonly threads: number; readonly queueSize: number };
}

export function createProcessMetrics({ workerId, hostId, knownJobNames, pool }: ProcessMetricsOptions): ProcessMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ worker: workerId, host: hostId });
  const registers = [registry];
  const known = new Set(knownJobNames);
  const jobLabel = (name: string) => (known.has(name) ? name : OTHER_JOB_NAME);
  /** Every value the `job_name` label can take in this process. */
  const jobLabels = [...new Set([...knownJobNames, OTHER_JOB_NAME])];

  const enqueued = new Counter({
    name: `${METRIC_PREFIX}jobs_enqueued_total`,
    help: 'Tasks accepted by POST /enqueue-task, by the worker they were routed to (assigned_worker); worker is the process that accepted them.',
    labelNames: ['assigned_worker', 'job_name'],
    registers,
  });
  const completed = new Counter({
    name: `${METRIC_PREFIX}jobs_completed_total`,
    help: 'Job attempts that completed.',
    labelNames: ['job_name'],
    registers,
  });
  const failed = new Counter({
    name: `${METRIC_PREFIX}jobs_failed_total`,
    help: 'Job attempts that failed (retried or final); cancelled ones are not.',
    labelNames: ['job_name'],
    registers,
  });
  const cancelled = new Counter({
    name: `${METRIC_PREFIX}jobs_cancelled_total`,
    help: 'Jobs cancelled by DELETE /jobs/:id: taken out of a queue before they started, or stopped as they ran.',
    labelNames: ['job_name'],
    registers,
  });
  const expired = new Counter({
    name: `${METRIC_PREFIX}jobs_expired_total`,
    help: 'Jobs that reached their expiry (options.expiresInMs or expiresAt) before they started, and so never ran.',
    labelNames: ['job_name'],
    registers,
  });
  // Every known series exists from the start at 0, so that rate() and increase() have series before
  // the first event (a failed-jobs panel shows 0, not "No data"). Any worker may be assigned a task,
  // but this process only knows its own id for sure; the others start at 0 in their own processes.
  for (const job_name of jobLabels) {
    enqueued.inc({ assigned_worker: workerId, job_name }, 0);
    completed.inc({ job_name }, 0);
    failed.inc({ job_name }, 0);
    cancelled.inc({ job_name }, 0);
    expired.inc({ job_name }, 0);
  }
  const duration = new Histogram({
    name: `${METRIC_PREFIX}job_duration_seconds`,
    help: 'Run time of job attempts, start to end.',
    labelNames: ['job_name'],
    buckets: [...JOB_DURATION_BUCKETS],
    registers,
  });
  const wait = new Histogram({
    name: `${METRIC_PREFIX}job_wait_seconds`,
    help: 'Time from enqueue to the first start of a job.',
    labelNames: ['job_name'],
    buckets: [...JOB_WAIT_BUCKETS],
    registers,
  });
  const http = new Histogram({
    name: `${METRIC_PREFIX}http_request_duration_seconds`,
    help: 'HTTP request duration by route, method and status.',
    labelNames: ['route', 'method', 'status_code'],
    buckets: HTTP_BUCKETS,
    registers,
  });
  const moved = new Counter({
    name: `${METRIC_PREFIX}jobs_moved_total`,
    help:
      "Jobs moved from one worker's queue to another's, by reason (stolen: a worker with a free slot took waiting work; " +
      'retired: the jobs of a dead worker id went to live workers).',
    labelNames: ['reason'],
    registers,
  });
  // Both series exist from the start, so that rate() and increase() see the first move.
  for (const reason of JOB_MOVE_REASONS) moved.inc({ reason }, 0);
  const retired = new Counter({
    name: `${METRIC_PREFIX}workers_retired_total`,
    help: 'Dead worker ids retired by this process: their waiting and interrupted jobs moved to live workers and their ledger entries removed.',
    registers,
  });
  const scheduleTicks = new Counter({
    name: `${METRIC_PREFIX}schedule_ticks_total`,
    help:
      'Ticks of recurring schedules, by outcome: made (a job), skipped (its previous job still waited or ran, ' +
      'overlap skip), missed (they fell while no process ran; one job may stand for several).',
    labelNames: ['outcome'],
    registers,
  });
  for (const outcome of SCHEDULE_TICK_OUTCOMES) scheduleTicks.inc({ outcome }, 0);
  const undoFailures = new Counter({
    name: `${METRIC_PREFIX}undo_failures_total`,
    help:
      'Steps undoing a refused enqueue that failed, by operation (cancel_reservation, remove_job, release_reservation); ' +
      'the reconciler frees what they leave behind, and a job that could not be removed may still run.',
    labelNames: ['operation'],
    registers,
  });
  for (const operation of UNDO_OPERATIONS) undoFailures.inc({ operation }, 0);
  const masterChanges = new Counter({
    name: `${METRIC_PREFIX}redis_master_changes_total`,
    help: 'Reconnections of this process to a Redis master other than the one before: promotions by Redis Sentinel that it followed.',
    registers,
  });
  new Gauge({
    name: `${METRIC_PREFIX}pool_threads`,
    help: 'Threads in the job thread pool.',
    registers,
    collect() {
      this.set(pool.threads);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}pool_queue_size`,
    help: 'Tasks waiting for a thread in the job thread pool.',
    registers,
    collect() {
      this.set(pool.queueSize);
    },
  });
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name);

  return {
    registry,
    jobEnqueued: (assignedWorker, jobName) =>
      enqueued.inc({ assigned_worker: assignedWorker, job_name: jobLabel(jobName) }),
    jobStarted(jobName, waitSeconds) {
      if (waitSeconds !== undefined && waitSeconds >= 0) wait.observe({ job_name: jobLabel(jobName) }, waitSeconds);
    },
    jobFinished(jobName, outcome, durationSeconds) {
      ({ completed, failed, cancelled })[outcome].inc({ job_name: jobLabel(jobName) });
      duration.observe({ job_name: jobLabel(jobName) }, durationSeconds);
    },
    jobCancelled: (jobName) => cancelled.inc({ job_name: jobLabel(jobName) }),
    jobExpired: (jobName) => expired.inc({ job_name: jobLabel(jobName) }),
    httpRequest: (route, method, statusCode, seconds) =>
      http.observe({ route, method, status_code: String(statusCode) }, seconds),
    jobMoved: (reason) => moved.inc({ reason }),
    workerRetired: () => retired.inc(),
    scheduleTicks: (outcome, count) => scheduleTicks.inc({ outcome }, count),
    undoFailed: (operation) => undoFailures.inc({ operation }),
    masterChanged: () => masterChanges.inc(),
    async forgetAssignedWorkers(known) {
      for (const { labels } of (await enqueued.get()).values) {
        const assigned = String(labels.assigned_worker);
        if (assigned !== workerId && !known.has(assigned)) enqueued.remove(labels);
      }
    },
  };
}
