/**
 * Configuration, parsed once.
 *
 * Every setting the service has comes from the environment through this module, is validated with
 * zod, filled with its default and frozen. The composition roots call `loadConfig(process.env)` once
 * and pass the typed result down; nothing else reads `process.env`, so tests can build a config from
 * a plain object and an invalid value stops start-up with a message naming the variable.
 */
import { availableParallelism, hostname } from 'node:os';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import type { TracingConfig } from '../tracing/tracing.js';
import { TRACING_ENV, tracingConfigOf } from './tracing-config.js';
import { JOB_NAME_MAX_LENGTH, JOB_NAME_PATTERN } from '../http/schemas.js';
import {
  clusterNodesSchema,
  sentinelListSchema,
  sentinelTarget,
  type ClusterTarget,
  type SentinelTarget,
} from '../redis/target.js';

/**
 * A claim on an Idempotency-Key this old belonged to a request that died between claiming the key
 * and creating its job. Every Redis call of a request is bounded by COMMAND_TIMEOUT_MS, so only a
 * frozen process takes this long; a retry meanwhile answers 409 with Retry-After.
 */
const DEFAULT_STALE_CLAIM_MS = 30_000;

/** Decimal digits only: `" "` or `0x10` are mistakes, not 0 and 16. */
const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/**
 * Both end up inside Redis keys and BullMQ queue names, which may not hold `:`. Braces are allowed in
 * the prefix for a single Redis shared with other deployments; on a Redis Cluster they are refused
 * (see the refinement below).
 */
const prefixSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_.{}-]+$/, 'may contain only letters, digits and _ . - { }');
const hostIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_.-]+$/, 'may contain only letters, digits and _ . -');

/** The most worker ids one host may have: BULLPEN_WORKER_INDEX runs from 0 to 255. */
const MAX_WORKERS = 256;

const booleanFlag = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');

/** `*` (any name: demos and tests), or job names separated by commas, each as a task may give it. */
const dummyJobNamesSchema = z.string().transform((value, context): DummyJobNames => {
  const names = value.split(',').map((name) => name.trim());
  if (names.length === 1 && names[0] === '*') return '*';
  const bad = names.find((name) => name.length > JOB_NAME_MAX_LENGTH || !JOB_NAME_PATTERN.test(name));
  if (bad !== undefined) {
    context.addIssue({
      code: 'custom',
      message: `must be * or job names separated by commas (each 1-${JOB_NAME_MAX_LENGTH} letters, digits and _ . : -, starting with a letter or digit), not ${JSON.stringify(bad.slice(0, 40))}`,
    });
    return z.NEVER;
  }
  return names;
});

const schema = z
  .object({
    PORT: int(0, 65535).default(3000),
    HOST: z.string().min(1).default('127.0.0.1'),
    REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
      .optional(),
    REDIS_CLUSTER_NODES: clusterNodesSchema.optional(),
    REDIS_SENTINELS: sentinelListSchema.optional(),
    REDIS_SENTINEL_MASTER: z.string().min(1).max(256).optional(),
    /** The master's and replicas' own credentials, with REDIS_SENTINELS (a URL carries its own). */
    REDIS_USERNAME: z.string().min(1).optional(),
    REDIS_PASSWORD: z.string().min(1).optional(),
    REDIS_SENTINEL_START_TIMEOUT_MS: int(1_000, 600_000).default(15_000),
    /** `auto`: one worker id per CPU the process may use (resolved in loadConfig). */
    WORKERS: z
      .union([z.string().trim().pipe(z.literal('auto')), int(1, MAX_WORKERS)], {
        error: `must be a whole number from 1 to ${MAX_WORKERS}, or auto`,
      })
      .default(4),
    WORKER_CONCURRENCY: int(1, 1024).default(8),
    TASK_DURATION_MS: int(0, 86_400_000).default(12_000),
    MAX_TASK_DURATION_MS: int(0, 86_400_000).default(600_000),
    QUEUE_PREFIX: prefixSchema.default('bullpen'),
    HOST_ID: hostIdSchema.optional(),
    SHUTDOWN_TIMEOUT_MS: int(0, 3_600_000).default(30_000),
    HEARTBEAT_INTERVAL_MS: int(50, 60_000).default(1_000),
    WORKER_TTL_MS: int(100, 600_000).default(5_000),
    WORKER_RETIRE_MS: int(100, 86_400_000).default(10_000),
    WORK_STEALING: booleanFlag.default(true),
    RECONCILE_INTERVAL_MS: int(100, 3_600_000).default(5_000),
    RESERVATION_GRACE_MS: int(0, 3_600_000).default(5_000),
    LOCK_DURATION_MS: int(1_000, 3_600_000).default(30_000),
    JOB_ATTEMPTS: int(1, 100).default(3),
    JOB_BACKOFF_MS: int(0, 3_600_000).default(1_000),
    COMPLETED_RETENTION_SECONDS: int(0, 31_536_000).default(3_600),
    COMPLETED_RETENTION_COUNT: int(0, 1_000_000).default(1_000),
    FAILED_RETENTION_SECONDS: int(0, 31_536_000).default(7 * 24 * 3_600),
    FAILED_RETENTION_COUNT: int(0, 1_000_000).default(10_000),
    BODY_LIMIT_BYTES: int(64, 16 * 1024 * 1024).default(100 * 1024),
    JOB_TIMEOUT_MS: int(1, 86_400_000).default(900_000),
    THREAD_MEMORY_LIMIT_MB: int(16, 65_536).default(512),
    WARM_THREADS: int(0, 1024).optional(),
    PROGRESS_INTERVAL_MS: int(0, 3_600_000).default(1_000),
    IDEMPOTENCY_TTL_SECONDS: int(1, 30 * 86_400).default(86_400),
    IDEMPOTENCY_STALE_CLAIM_MS: int(1_000, 86_400_000).optional(),
    BULK_MAX: int(1, 10_000).default(1_000),
    BULK_BODY_LIMIT_BYTES: int(64, 256 * 1024 * 1024).default(8 * 1024 * 1024),
    MAX_BACKLOG: int(1, 100_000_000).default(100_000),
    PREFETCH: int(0, 10_000).default(0),
    GROUP_CONCURRENCY: int(0, 1_000_000).default(0),
    GROUP_METRICS_TOP: int(0, 10_000).default(20),
    /** The shortest interval between two ticks of a schedule (issue 23): `everyMs`, and a cron's ticks. */
    SCHEDULE_MIN_INTERVAL_MS: int(100, 86_400_000).default(1000),
    COMMAND_TIMEOUT_MS: int(50, 60_000).default(500),
    ENQUEUE_MIN_REPLICAS: int(0, 64).default(0),
    ENQUEUE_REPLICA_TIMEOUT_MS: int(10, 60_000).default(1_000),
    SSE_MAX_STREAMS: int(1, 1_000_000).default(1_000),
    SSE_MAX_LIFETIME_MS: int(1_000, 86_400_000).default(3_600_000),
    API_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
    METRICS_PUBLIC: booleanFlag.default(false),
    ALLOW_UNAUTHENTICATED: booleanFlag.default(false),
    DUMMY_JOB_NAMES: dummyJobNamesSchema.optional(),
    ADMIN_UI: booleanFlag.default(true),
    HANDLERS_DIR: z.string().min(1).optional(),
    /** Where `npm start` looks for redis-server when it must launch one. */
    PATH: z.string().optional(),
    REDIS_DATA_DIR: z.string().min(1).default('.data/redis'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    LOG_PRETTY: booleanFlag.optional(),
    /** Set by the primary on each fork; absent in the primary itself. */
    BULLPEN_WORKER_INDEX: int(0, 255).optional(),
    /** Set by the primary on each fork: one id per primary run, shared by the processes it forks. */
    BULLPEN_INSTANCE_ID: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,64}$/, 'must be letters, digits and -')
      .optional(),
    /**
     * Fault tests only: a process kills itself (SIGKILL) right after the step named in Redis, of
     * a move (`<prefix>:test:kill-after-move-step`), of a slot-by-slot add on a cluster
     * (`<prefix>:test:kill-after-add-step`) or of a release of held jobs
     * (`<prefix>:test:kill-after-release-step`) or of a schedule's tick
     * (`<prefix>:test:kill-after-tick-step`), armed by the test and consumed by the first process there.
     */
    BULLPEN_KILL_HOOK: booleanFlag.default(false),
    ...TRACING_ENV,
  })
  .superRefine((env, context) => {
    const modes = modesOf(env);
    if (modes.length <= 1) return;
    context.addIssue({
      code: 'custom',
      message: `${modes.join(' and ')} are set: set only one of REDIS_URL (one Redis), REDIS_CLUSTER_NODES (a Redis Cluster) or REDIS_SENTINELS (a master watched by Redis Sentinel)`,
      path: [modes[1] ?? 'REDIS_URL'],
    });
  })
  .refine((env) => (env.REDIS_SENTINELS === undefined) === (env.REDIS_SENTINEL_MASTER === undefined), {
    message:
      'REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together: the sentinels, and the name of the master they watch',
    path: ['REDIS_SENTINEL_MASTER'],
  })
  .superRefine((env, context) => {
    if (env.REDIS_SENTINELS !== undefined) return;
    for (const name of ['REDIS_USERNAME', 'REDIS_PASSWORD'] as const) {
      if (env[name] === undefined) continue;
      context.addIssue({
        code: 'custom',
        message:
          'is for the master found through REDIS_SENTINELS; REDIS_URL and REDIS_CLUSTER_NODES carry their own (redis://user:password@host:port)',
        path: [name],
      });
    }
  })
  .refine((env) => env.REDIS_CLUSTER_NODES === undefined || !/[{}]/.test(env.QUEUE_PREFIX), {
    message:
      'must not hold { or } on a Redis Cluster: each worker queue has a hash tag of its own, so that the queues spread over the masters, and a tag in the prefix would put every key in one slot',
    path: ['QUEUE_PREFIX'],
  })
  .refine((env) => env.ENQUEUE_MIN_REPLICAS === 0 || env.REDIS_CLUSTER_NODES === undefined, {
    message:
      'is not supported on a Redis Cluster (WAIT counts the replicas of one node only); set it with REDIS_URL or REDIS_SENTINELS, or leave it 0',
    path: ['ENQUEUE_MIN_REPLICAS'],
  })
  .refine(
    (env) =>
      env.ENQUEUE_MIN_REPLICAS === 0 ||
      env.REDIS_CLUSTER_NODES !== undefined ||
      env.REDIS_URL !== undefined ||
      env.REDIS_SENTINELS !== undefined,
    {
      message:
        'needs a Redis with replicas (REDIS_URL or REDIS_SENTINELS): the private redis-server that npm start launches has none, so no enqueue could be accepted',
      path: ['ENQUEUE_MIN_REPLICAS'],
    },
  )
  .refine((env) => env.WORKER_TTL_MS > env.HEARTBEAT_INTERVAL_MS, {
    message: 'must be greater than HEARTBEAT_INTERVAL_MS',
    path: ['WORKER_TTL_MS'],
  })
  .refine((env) => env.WORKER_RETIRE_MS > env.WORKER_TTL_MS, {
    message: 'must be greater than WORKER_TTL_MS: a worker is retired only well after it is seen dead',
    path: ['WORKER_RETIRE_MS'],
  })
  .refine((env) => env.MAX_TASK_DURATION_MS < env.JOB_TIMEOUT_MS, {
    message: 'must be greater than MAX_TASK_DURATION_MS, or the longest allowed task could never finish',
    path: ['JOB_TIMEOUT_MS'],
  })
  .refine((env) => env.TASK_DURATION_MS <= env.MAX_TASK_DURATION_MS, {
    message: 'must not exceed MAX_TASK_DURATION_MS',
    path: ['TASK_DURATION_MS'],
  })
  .refine(
    (env) => env.IDEMPOTENCY_STALE_CLAIM_MS === undefined || env.IDEMPOTENCY_STALE_CLAIM_MS > env.COMMAND_TIMEOUT_MS,
    {
      message:
        'must be greater than COMMAND_TIMEOUT_MS: a key is taken over only from a request that cannot still be running',
      path: ['IDEMPOTENCY_STALE_CLAIM_MS'],
    },
  )
  .refine((env) => env.WARM_THREADS === undefined || env.WARM_THREADS <= env.WORKER_CONCURRENCY, {
    message: 'must not exceed WORKER_CONCURRENCY, the most threads a worker runs',
    path: ['WARM_THREADS'],
  });

/** The Redis settings given, of the three that each choose a mode. */
function modesOf(
  env: Readonly<Partial<Record<'REDIS_URL' | 'REDIS_CLUSTER_NODES' | 'REDIS_SENTINELS', unknown>>>,
): string[] {
  return (['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'] as const).filter((name) => env[name] !== undefined);
}

/** The job names the built-in dummy runs besides its own example (see execution/handlers.ts): `*` for any. */
export type DummyJobNames = '*' | readonly string[];

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
  const parsed = schema.safeParse(present);
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

/** The environment variables whose names the config understands, for docs and compose checks. */
export const CONFIG_VARIABLES: readonly string[] = Object.freeze(Object.keys(schema.shape));
