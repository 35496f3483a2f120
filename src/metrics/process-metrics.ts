/**
 * The metrics one worker process measures itself: jobs it accepted, ran, finished and failed, how long
 * they waited and ran, its HTTP latencies, its thread pool, the jobs it moved between workers' queues
 * and the dead workers it retired, and Node's default process metrics. All live on an explicit
 * registry and carry the worker's id and its host's id, so that the primary can sum the processes'
 * registries without series colliding, and so that several hosts' scrapes stay apart in Prometheus.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const METRIC_PREFIX = 'bullpen_';

/** From a millisecond job to ten minutes, with detail around the 12 s default. */
const JOB_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 12.5, 15, 20, 30, 60, 120, 300, 600];
const JOB_WAIT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export type JobOutcome = 'completed' | 'failed';

/** Why a job left one worker's queue for another's. */
export const JOB_MOVE_REASONS = ['stolen', 'retired'] as const;
export type JobMoveReason = (typeof JOB_MOVE_REASONS)[number];

export interface ProcessMetrics {
  readonly registry: Registry;
  jobEnqueued(assignedWorker: string, jobName: string): void;
  jobStarted(jobName: string, waitSeconds: number | undefined): void;
  jobFinished(jobName: string, outcome: JobOutcome, durationSeconds: number): void;
  httpRequest(route: string, method: string, statusCode: number, seconds: number): void;
  /** One job moved from another worker's queue by this process. */
  jobMoved(reason: JobMoveReason): void;
  /** One dead worker id retired by this process. */
  workerRetired(): void;
}

export interface ProcessMetricsOptions {
  readonly workerId: string;
  /** The host this process runs on (`HOST_ID`); the `host` label of every series. */
  readonly hostId: string;
  /** Job names become label values only when they have a handler; the rest fold into `other`. */
  readonly knownJobNames: readonly string[];
  readonly pool: { readonly threads: number; readonly queueSize: number };
}

export function createProcessMetrics({ workerId, hostId, knownJobNames, pool }: ProcessMetricsOptions): ProcessMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ worker: workerId, host: hostId });
  const registers = [registry];
  const known = new Set(knownJobNames);
  const jobLabel = (name: string) => (known.has(name) ? name : 'other');

  const enqueued = new Counter({
    name: `${METRIC_PREFIX}jobs_enqueued_total`,
    help: 'Tasks accepted by POST /enqueue-task, by the worker they were routed to.',
    labelNames: ['worker', 'job_name'],
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
    help: 'Job attempts that failed (retried or final).',
    labelNames: ['job_name'],
    registers,
  });
  const duration = new Histogram({
    name: `${METRIC_PREFIX}job_duration_seconds`,
    help: 'Run time of job attempts, start to end.',
    labelNames: ['job_name'],
    buckets: JOB_DURATION_BUCKETS,
    registers,
  });
  const wait = new Histogram({
    name: `${METRIC_PREFIX}job_wait_seconds`,
    help: 'Time from enqueue to the first start of a job.',
    labelNames: ['job_name'],
    buckets: JOB_WAIT_BUCKETS,
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
    help:
      'Dead worker ids retired by this process: their waiting and interrupted jobs moved to live workers and their ledger entries removed.',
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

  return {
    registry,
    jobEnqueued: (assignedWorker, jobName) => enqueued.inc({ worker: assignedWorker, job_name: jobLabel(jobName) }),
    jobStarted(jobName, waitSeconds) {
      if (waitSeconds !== undefined && waitSeconds >= 0) wait.observe({ job_name: jobLabel(jobName) }, waitSeconds);
    },
    jobFinished(jobName, outcome, durationSeconds) {
      (outcome === 'completed' ? completed : failed).inc({ job_name: jobLabel(jobName) });
      duration.observe({ job_name: jobLabel(jobName) }, durationSeconds);
    },
    httpRequest: (route, method, statusCode, seconds) =>
      http.observe({ route, method, status_code: String(statusCode) }, seconds),
    jobMoved: (reason) => moved.inc({ reason }),
    workerRetired: () => retired.inc(),
  };
}
