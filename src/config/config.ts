/**
 * Configuration, parsed once.
 *
 * Every setting the service has comes from the environment through this module, is validated with
 * zod, filled with its default and frozen. The composition roots call `loadConfig(process.env)` once
 * and pass the typed result down; nothing else reads `process.env`, so tests can build a config from
 * a plain object and an invalid value stops start-up with a message naming the variable.
 */
import { availableParallelism, hostname } from 'node:os';
import { ConfigError } from '../errors.js';
import type { TracingConfig } from '../tracing/tracing.js';
import { tracingConfigOf } from './tracing-config.js';
import { sentinelTarget, type ClusterTarget, type SentinelTarget } from '../redis/target.js';
import { DEFAULT_STALE_CLAIM_MS, envSchema, MAX_WORKERS, type DummyJobNames } from './env-schema.js';

export interface Config {
  readonly port: number;
  readonly host: string;
  /** Unset means: run the private redis-server of redisDataDir (see src/local-redis/server.ts). */
  readonly redisUrl: string | undefined;
  /** REDIS_CLUSTER_NODES: the seed nodes of a Redis Cluster, instead of REDIS_URL. */
  readonly redisCluster: ClusterTarget | undefined;
  /** REDIS_SENTINELS and REDIS_SENTINEL_MASTER: a master found through Redis Sentinel, instead of either. */
  readonly redisSentinel: SentinelTarget | undefined;
  /**
   * How long the primary tries to learn the master from its sentinels before it stops: a wrong name or
   * a list with no live sentinel is a mistake of configuration (see primary/preflight.ts).
   */
  readonly sentinelStartTimeoutMs: number;
  readonly processes: number;
  readonly concurrency: number;
  readonly taskDurationMs: number;
  readonly maxTaskDurationMs: number;
  readonly prefix: string;
  readonly hostId: string;
  readonly shutdownTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly workerTtlMs: number;
  /** How long a worker id's lease stays expired before a live process retires the id. */
  readonly workerRetireMs: number;
  /** Whether a worker with a free slot takes waiting jobs from busier workers. */
  readonly workStealing: boolean;
  readonly reconcileIntervalMs: number;
  readonly reservationGraceMs: number;
  readonly lockDurationMs: number;
  readonly jobAttempts: number;
  readonly jobBackoffMs: number;
  readonly retention: {
    readonly completed: { readonly ageSeconds: number; readonly count: number };
    readonly failed: { readonly ageSeconds: number; readonly count: number };
  };
  readonly bodyLimitBytes: number;
  /** Longest a job attempt may run before its thread is stopped; a request may ask for less. */
  readonly jobTimeoutMs: number;
  readonly threadMemoryLimitMb: number;
  /**
   * Threads each process starts with and keeps; the rest, up to `concurrency`, start when a job needs
   * one and stop after a minute idle.
   */
  readonly warmThreads: number;
  /** The least time between two progress reports of one job (its thread holds back the rest); the last is kept. */
  readonly progressIntervalMs: number;
  /** How long an Idempotency-Key is remembered, from its first request. */
  readonly idempotencyTtlSeconds: number;
  /**
   * How old a key's claim (or, on a Redis Cluster, its plan) must be before a retry with the same body
   * takes it over: only a request whose process died leaves one that long.
   */
  readonly idempotencyStaleClaimMs: number;
  /** Most tasks in one `POST /enqueue-tasks`. */
  readonly bulkMax: number;
  /** Largest body of `POST /enqueue-tasks`. */
  readonly bulkBodyLimitBytes: number;
  /**
   * The most jobs that may wait to start (assigned, not started), summed over every worker id in the
   * ledger: live ones, and dead ones not yet retired, whose jobs still wait. Once it is reached,
   * enqueue answers 429.
   */
  readonly maxBacklog: number;
  /**
   * Jobs a worker may hold beyond its concurrency, ready to start as a slot frees. 0 (the default)
   * keeps the fair order and priority exact: a job is handed to a worker only when a slot is free,
   * and waits in the held queue otherwise. More spares a slot the short wait for the next release
   * between two jobs, at the price of that many jobs per worker taken in arrival order, ahead of a
   * later one of higher priority or of a group whose turn comes first.
   */
  readonly prefetch: number;
  /** The most jobs of one group running at once in the whole pool, for a group without its own (0: none). */
  readonly groupConcurrency: number;
  /** How many groups `/metrics` shows by name (those with the most waiting jobs); the rest add up in `other`. */
  readonly groupMetricsTop: number;
  readonly scheduleMinIntervalMs: number;
  /** OpenTelemetry tracing (OTEL_*): undefined when off, the default. */
  readonly tracing: TracingConfig | undefined;
  /** How long an HTTP request waits for Redis before answering 503. */
  readonly commandTimeoutMs: number;
  /**
   * Durable acceptance: an enqueue is answered 202 only once this many replicas hold its jobs (0: off,
   * answered once the master has them). See redis/replica-acks.ts.
   */
  readonly enqueueMinReplicas: number;
  /** How long an enqueue waits for those replicas before answering 503 `NOT_DURABLE`. */
  readonly enqueueReplicaTimeoutMs: number;
  /** The most `GET /jobs/:id/events` streams one process keeps open; past it, 503. */
  readonly sseMaxStreams: number;
  /** How long one event stream may stay open before it ends, asking the client to reconnect. */
  readonly sseMaxLifetimeMs: number;
  readonly apiKey: string | undefined;
  readonly metricsPublic: boolean;
  /** Serve on a non-loopback HOST without API_KEY on purpose (see config/exposure.ts); refused otherwise. */
  readonly allowUnauthenticated: boolean;
  /** Names a task may have without a handler file: they run the dummy. Any other such name is refused. */
  readonly dummyJobNames: DummyJobNames;
  /** Whether each process serves the read-only queue dashboard at `/admin/queues`. */
  readonly adminUi: boolean;
  /** Folder of handler files; undefined means the built-in `workers/handlers/`. */
  readonly handlersDir: string | undefined;
  /** The PATH to search for redis-server. */
  readonly searchPath: string | undefined;
  readonly redisDataDir: string;
  readonly logLevel: string;
  /** Undefined means: pretty when stdout is a terminal. */
  readonly logPretty: boolean | undefined;
  readonly workerIndex: number | undefined;
  readonly instanceId: string | undefined;
  /** Fault tests only: see BULLPEN_KILL_HOOK. */
  readonly killHook: boolean;
}

/** Host names may hold characters that are not key-safe; keep the readable part. */
function defaultHostId(): string {
  const cleaned = hostname()
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .slice(0, 64);
  return cleaned.length > 0 ? cleaned : 'host';
}

/** What the config reads from the machine itself, apart from the environment; a test passes its own. */
export interface ConfigHost {
  /** How many CPUs the process may use, for `WORKERS=auto`. */
  readonly availableParallelism: () => number;
}

const MACHINE: ConfigHost = { availableParallelism };

export function loadConfig(env: Readonly<Record<string, string | undefined>>, host: ConfigHost = MACHINE): Config {
  // Empty strings mean "unset", as they do in most shells and compose files.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    redisUrl: e.REDIS_URL,
    redisCluster: e.REDIS_CLUSTER_NODES,
    redisSentinel:
      e.REDIS_SENTINELS === undefined || e.REDIS_SENTINEL_MASTER === undefined
        ? undefined
        : sentinelTarget(e.REDIS_SENTINELS, e.REDIS_SENTINEL_MASTER, {
            username: e.REDIS_USERNAME,
            password: e.REDIS_PASSWORD,
          }),
    sentinelStartTimeoutMs: e.REDIS_SENTINEL_START_TIMEOUT_MS,
    processes: e.WORKERS === 'auto' ? Math.min(Math.max(host.availableParallelism(), 1), MAX_WORKERS) : e.WORKERS,
    concurrency: e.WORKER_CONCURRENCY,
    taskDurationMs: e.TASK_DURATION_MS,
    maxTaskDurationMs: e.MAX_TASK_DURATION_MS,
    prefix: e.QUEUE_PREFIX,
    hostId: e.HOST_ID ?? defaultHostId(),
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    heartbeatIntervalMs: e.HEARTBEAT_INTERVAL_MS,
    workerTtlMs: e.WORKER_TTL_MS,
    workerRetireMs: e.WORKER_RETIRE_MS,
    workStealing: e.WORK_STEALING,
    reconcileIntervalMs: e.RECONCILE_INTERVAL_MS,
    reservationGraceMs: e.RESERVATION_GRACE_MS,
    lockDurationMs: e.LOCK_DURATION_MS,
    jobAttempts: e.JOB_ATTEMPTS,
    jobBackoffMs: e.JOB_BACKOFF_MS,
    retention: Object.freeze({
      completed: Object.freeze({ ageSeconds: e.COMPLETED_RETENTION_SECONDS, count: e.COMPLETED_RETENTION_COUNT }),
      failed: Object.freeze({ ageSeconds: e.FAILED_RETENTION_SECONDS, count: e.FAILED_RETENTION_COUNT }),
    }),
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    jobTimeoutMs: e.JOB_TIMEOUT_MS,
    threadMemoryLimitMb: e.THREAD_MEMORY_LIMIT_MB,
    warmThreads: e.WARM_THREADS ?? e.WORKER_CONCURRENCY,
    progressIntervalMs: e.PROGRESS_INTERVAL_MS,
    idempotencyTtlSeconds: e.IDEMPOTENCY_TTL_SECONDS,
    idempotencyStaleClaimMs: e.IDEMPOTENCY_STALE_CLAIM_MS ?? DEFAULT_STALE_CLAIM_MS,
    bulkMax: e.BULK_MAX,
    bulkBodyLimitBytes: e.BULK_BODY_LIMIT_BYTES,
    maxBacklog: e.MAX_BACKLOG,
    prefetch: e.PREFETCH,
    groupConcurrency: e.GROUP_CONCURRENCY,
    groupMetricsTop: e.GROUP_METRICS_TOP,
    scheduleMinIntervalMs: e.SCHEDULE_MIN_INTERVAL_MS,
    tracing: tracingConfigOf(e),
    commandTimeoutMs: e.COMMAND_TIMEOUT_MS,
    enqueueMinReplicas: e.ENQUEUE_MIN_REPLICAS,
    enqueueReplicaTimeoutMs: e.ENQUEUE_REPLICA_TIMEOUT_MS,
    sseMaxStreams: e.SSE_MAX_STREAMS,
    sseMaxLifetimeMs: e.SSE_MAX_LIFETIME_MS,
    apiKey: e.API_KEY,
    metricsPublic: e.METRICS_PUBLIC,
    allowUnauthenticated: e.ALLOW_UNAUTHENTICATED,
    dummyJobNames: e.DUMMY_JOB_NAMES ?? [],
    adminUi: e.ADMIN_UI,
    handlersDir: e.HANDLERS_DIR,
    searchPath: e.PATH,
    redisDataDir: e.REDIS_DATA_DIR,
    logLevel: e.LOG_LEVEL,
    logPretty: e.LOG_PRETTY,
    workerIndex: e.BULLPEN_WORKER_INDEX,
    instanceId: e.BULLPEN_INSTANCE_ID,
    killHook: e.BULLPEN_KILL_HOOK,
  });
}

/** The one place that reads the process environment. */
export function loadConfigFromProcess(): Config {
  return loadConfig(process.env);
}
