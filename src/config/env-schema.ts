/**
 * The environment variables the service understands, as one zod schema: each one's form, range and
 * default, and the rules between them (one Redis mode, time-outs in order). `loadConfig` parses the
 * environment with it and turns the result into the typed `Config`.
 */
import { z } from 'zod';
import { TRACING_ENV } from './tracing-config.js';
import { JOB_NAME_MAX_LENGTH, JOB_NAME_PATTERN } from '../http/schemas.js';
import { clusterNodesSchema, sentinelListSchema } from '../redis/target.js';

/** The job names the built-in dummy runs besides its own example (see execution/handlers.ts): `*` for any. */
export type DummyJobNames = '*' | readonly string[];

/**
 * A claim on an Idempotency-Key this old belonged to a request that died between claiming the key
 * and creating its job. Every Redis call of a request is bounded by COMMAND_TIMEOUT_MS, so only a
 * frozen process takes this long; a retry meanwhile answers 409 with Retry-After.
 */
export const DEFAULT_STALE_CLAIM_MS = 30_000;

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
export const MAX_WORKERS = 256;

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

export const envSchema = z
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

/** The environment variables whose names the config understands, for docs and compose checks. */
export const CONFIG_VARIABLES: readonly string[] = Object.freeze(Object.keys(envSchema.shape));
