/**
 * Reads one job for `GET /jobs/:id`. The worker it was routed to is part of its id, so one lookup in
 * that worker's queue answers, unless the job moved (stolen, or its worker retired): then its
 * location record names the queue it is in now, and the workers it moved from. A job found nowhere
 * else is looked for in the held queue, where it waits for its group's turn. Ids naming a worker
 * that never existed are answered without touching a queue, so made-up ids cannot make the process
 * open handles without bound.
 */
import type { Job, JobsOptions, Queue } from 'bullmq';
import {
  CANCELLED_REASON,
  EXPIRED_REASON,
  expiresOption,
  groupOption,
  scheduleOption,
  timeoutOption,
} from '../contracts/stored-job.js';
import { parseJobId, DELAYED_QUEUE, HELD_QUEUE } from '../contracts/names.js';
import { jobsExist } from '../queue/job-presence.js';
import type { QueueRegistry } from '../queue/queues.js';
import type { RedisClient } from '../redis/connections.js';

export interface JobView {
  readonly jobId: string;
  readonly jobName: string;
  /** Its tenant group: DEFAULT_GROUP when it was enqueued without one. */
  readonly group: string;
  readonly state: string;
  /** The worker whose queue holds the job now; null for a delayed job that is not due yet. */
  readonly assignedWorker: string | null;
  /** The workers the job moved away from, oldest first; empty for a job that never moved. */
  readonly movedFrom: readonly string[];
  readonly data: unknown;
  readonly progress: unknown;
  readonly result: unknown;
  readonly failedReason: string | null;
  readonly attemptsMade: number;
  /** How many times the job started: retries, and re-runs after a crash, included. */
  readonly attemptsStarted: number;
  readonly attempts: number;
  /** Its `options.priority`; null for a job without one (it runs before any job with one). */
  readonly priority: number | null;
  /** The first retry's delay (it doubles with each attempt); null without retries by back-off. */
  readonly backoffMs: number | null;
  /** Its `options.timeoutMs`; null when it runs under the service's JOB_TIMEOUT_MS. */
  readonly timeoutMs: number | null;
  /** The schedule that made it and the tick it was made for; null for a job a client enqueued. */
  readonly schedule: { readonly name: string; readonly tickAt: string } | null;
  /** When it expires if it has not started by then (ISO 8601); null for a job without an expiry. */
  readonly expiresAt: string | null;
  readonly timestamps: {
    readonly enqueuedAt: string | null;
    readonly startedAt: string | null;
    readonly finishedAt: string | null;
  };
}

export interface JobReader {
  read(jobId: string): Promise<JobView | undefined>;
  /**
   * Which of these jobs are in no queue any more (retention removed them, or they were never added),
   * at a few Redis calls per queue, however many they are: what the index sweep asks of thousands of
   * old entries at a time, where reading each (its state is found by scanning its queue's list) made
   * the sweep's cost grow with the backlog. A job that moved is looked for where it went.
   */
  gone(jobIds: readonly string[]): Promise<string[]>;
}

export interface JobLocation {
  readonly current: string;
  readonly movedFrom: readonly string[];
}

export interface JobReaderOptions {
  /** The connection the queues were made on: where `gone` asks whether job hashes exist. */
  readonly redis: RedisClient;
  readonly queues: Pick<QueueRegistry, 'forWorker'>;
  readonly isKnownWorker: (workerId: string) => Promise<boolean>;
  /** Where a moved job is now; undefined for a job that never moved. */
  readonly locate: (token: string) => Promise<JobLocation | undefined>;
}

export function createJobReader({ redis, queues, isKnownWorker, locate }: JobReaderOptions): JobReader {
  /** Whether the job is in one of the queues its location names (it moved, or was routed when due). */
  const foundWhereItWent = async (jobId: string, token: string): Promise<boolean> => {
    const location = await locate(token);
    for (const workerId of location ? [location.current, ...location.movedFrom] : []) {
      const [exists] = await jobsExist(redis, queues.forWorker(workerId), [jobId]);
      if (exists) return true;
    }
    return false;
  };

  /**
   * The jobs in neither their first queue nor the held queue. A batch all in one of the two costs one
   * EXISTS or two, whatever its size; only a batch split between them is asked about key by key.
   */
  const missingFrom = async <T extends { readonly jobId: string }>(workerId: string, jobs: readonly T[]) => {
    const keysIn = (queue: Pick<Queue, 'toKey'>) => jobs.map(({ jobId }) => queue.toKey(jobId));
    const first = queues.forWorker(workerId);
    const held = queues.forWorker(HELD_QUEUE);
    const there = await redis.exists(...keysIn(first));
    if (there === jobs.length) return [];
    if (there === 0 && (await redis.exists(...keysIn(held))) === jobs.length) return [];
    const [inFirst, inHeld] = await Promise.all(
      [first, held].map((queue) =>
        jobsExist(
          redis,
          queue,
          jobs.map(({ jobId }) => jobId),
        ),
      ),
    );
    return jobs.filter((_, i) => inFirst?.[i] !== true && inHeld?.[i] !== true);
  };

  return {
    async read(jobId) {
      const parsed = parseJobId(jobId);
      if (!parsed) return undefined;
      const location = await locate(parsed.token);
      if (!location && parsed.workerId !== DELAYED_QUEUE && !(await isKnownWorker(parsed.workerId))) return undefined;
      const current = location?.current ?? parsed.workerId;
      const movedFrom = location?.movedFrom ?? [];
      // Where it is now first; during a move the job may still be in the queue it is leaving.
      for (const workerId of new Set([current, ...[...movedFrom].reverse(), HELD_QUEUE])) {
        const queue = queues.forWorker(workerId);
        // State first: a job seen finished is then read with its result, never the other way round.
        const state = await queue.getJobState(jobId);
        const job: Job | undefined = await queue.getJob(jobId);
        if (!job) continue;
        // A job between two queues is in no list of either: it waits for its move to end. A held job
        // sits in the held queue's delayed set (HELD_DELAY_MS), waiting for its turn, not for a time.
        const waiting = state === 'unknown' || (workerId === HELD_QUEUE && state === 'delayed');
        return view(jobId, job, waiting ? 'waiting' : state, current, movedFrom);
      }
      return undefined;
    },

    async gone(jobIds) {
      const byQueue = new Map<string, { jobId: string; token: string }[]>();
      const unreadable: string[] = [];
      for (const jobId of jobIds) {
        const parsed = parseJobId(jobId);
        if (parsed === undefined) unreadable.push(jobId);
        else byQueue.set(parsed.workerId, [...(byQueue.get(parsed.workerId) ?? []), { jobId, token: parsed.token }]);
      }
      // Where each job's id says it was added first (most jobs never leave that queue), or in the
      // held queue, waiting for its group's turn (most jobs of a long backlog are).
      const elsewhere = (
        await Promise.all([...byQueue].map(async ([workerId, jobs]) => missingFrom(workerId, jobs)))
      ).flat();
      const found = await Promise.all(elsewhere.map(({ jobId, token }) => foundWhereItWent(jobId, token)));
      return [...unreadable, ...elsewhere.filter((_, i) => !found[i]).map(({ jobId }) => jobId)];
    },
  };
}

/** BullMQ's state of a job, with cancelled and expired jobs told apart from failed ones. */
export function publicState(job: Pick<Job, 'failedReason'>, state: string): string {
  if (state !== 'failed') return state;
  if (job.failedReason === CANCELLED_REASON) return 'cancelled';
  return job.failedReason === EXPIRED_REASON ? 'expired' : state;
}

function view(jobId: string, job: Job, state: string, assignedWorker: string, movedFrom: readonly string[]): JobView {
  return {
    jobId,
    jobName: job.name,
    group: groupOption(job.opts as Record<string, unknown>),
    state: publicState(job, state),
    assignedWorker: assignedWorker === DELAYED_QUEUE || assignedWorker === HELD_QUEUE ? null : assignedWorker,
    movedFrom: movedFrom.filter((from) => from !== DELAYED_QUEUE && from !== HELD_QUEUE),
    data: job.data,
    progress: job.progress,
    result: job.returnvalue ?? null,
    failedReason: job.failedReason || null,
    attemptsMade: job.attemptsMade,
    attemptsStarted: job.attemptsStarted,
    attempts: job.opts.attempts ?? 1,
    priority: job.opts.priority || null,
    backoffMs: backoffOf(job.opts.backoff),
    timeoutMs: timeoutOption(job.opts as Record<string, unknown>) ?? null,
    schedule: scheduleView(job.opts as Record<string, unknown>),
    expiresAt: iso(expiresOption(job.opts as Record<string, unknown>)),
    timestamps: {
      enqueuedAt: iso(job.timestamp),
      startedAt: iso(job.processedOn),
      finishedAt: iso(job.finishedOn),
    },
  };
}

function scheduleView(opts: Record<string, unknown>): JobView['schedule'] {
  const mark = scheduleOption(opts);
  return mark === undefined ? null : { name: mark.name, tickAt: new Date(mark.tickAt).toISOString() };
}

function backoffOf(backoff: JobsOptions['backoff']): number | null {
  if (typeof backoff === 'number') return backoff;
  return backoff?.delay ?? null;
}

function iso(ms: number | undefined): string | null {
  return ms === undefined || ms === 0 ? null : new Date(ms).toISOString();
}
