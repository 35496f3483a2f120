/**
 * What the enqueue path hands on and gets back: a task to dispatch, with its overrides of the job
 * defaults; where it went; and a record written with its jobs (an idempotency key's answer). Shared by
 * the HTTP routes, the dispatcher, the atomic add of the queue layer and the idempotency store, which
 * would otherwise have to import each other.
 */
import type { ScheduleMark, StoredTrace } from './stored-job.js';

export interface DispatchRequest {
  readonly jobName: string;
  readonly data: Readonly<Record<string, unknown>>;
  /** Its tenant group; DEFAULT_GROUP (contracts/stored-job.ts) when not given. */
  readonly group?: string | undefined;
  /** Overrides of the service's job defaults. */
  readonly options?: JobOverrides | undefined;
  /** The schedule and tick that made it, for a job a schedule makes (schedules/scheduler.ts). */
  readonly schedule?: ScheduleMark | undefined;
  /** The trace context of its enqueue, stored on the job (set by the dispatcher when tracing is on). */
  readonly trace?: StoredTrace | undefined;
}

export interface JobOverrides {
  /** 1 runs first among one worker's waiting jobs; jobs without a priority run before any with one. */
  readonly priority?: number | undefined;
  readonly attempts?: number | undefined;
  /** First retry delay; it doubles with each attempt. */
  readonly backoffMs?: number | undefined;
  /** How long one attempt may run, below the service's limit. */
  readonly timeoutMs?: number | undefined;
  /** Run no earlier than this many ms from now; the worker is chosen when it is due. */
  readonly delayMs?: number | undefined;
  /** When (ms since the epoch) a job that has not started by then expires and never runs. */
  readonly expiresAt?: number | undefined;
}

/**
 * A task's overrides as a client gives them (`POST /enqueue-task`, a schedule's task): its expiry
 * relative (`expiresInMs`) or as a time (`expiresAt`, ISO 8601), where the dispatcher takes one time.
 */
export type ClientOverrides = Omit<JobOverrides, 'expiresAt'> & {
  readonly expiresInMs?: number | undefined;
  readonly expiresAt?: string | undefined;
};

/** When a task's job expires (ms since the epoch), from either form: `expiresInMs` counts from `now`. */
export function expiryOf(options: ClientOverrides | undefined, now: number): number | undefined {
  if (options?.expiresInMs !== undefined) return now + options.expiresInMs;
  return options?.expiresAt === undefined ? undefined : Date.parse(options.expiresAt);
}

/** A task's overrides as the dispatcher takes them: its expiry, in either form, as one time from `now`. */
export function overridesAt(options: ClientOverrides, now: number): JobOverrides {
  const { expiresInMs, expiresAt, ...overrides } = options;
  const expiry = expiryOf({ expiresInMs, expiresAt }, now);
  return expiry === undefined ? overrides : { ...overrides, expiresAt: expiry };
}

/**
 * A Redis string written in the same transaction as the jobs, or not at all (an idempotency key's
 * answer). On a Redis Cluster, where the jobs' slots differ from the record's, `plan` is written
 * before the jobs, each queue's transaction leaves a marker named by `marker`, and `value` is written
 * after them (see queue/add-jobs.ts).
 */
export interface AtomicRecord {
  readonly key: string;
  readonly value: string;
  readonly plan: string;
  readonly marker: string;
  /** How long the markers live: as long as the record. */
  readonly ttlSeconds: number;
}

export interface Dispatched {
  readonly jobId: string;
  /** Null for a delayed job: its worker is chosen when it is due (see enqueue/delayed-router.ts). */
  readonly workerId: string | null;
}
