/**
 * Reads one job for `GET /jobs/:id`. The worker it was routed to is part of its id, so one lookup in
 * that worker's queue answers; ids naming a worker that never existed are answered without touching
 * a queue, so made-up ids cannot make the process open handles without bound.
 */
import type { Job } from 'bullmq';
import { parseJobId } from './names.js';
import type { QueueRegistry } from './queues.js';

export interface JobView {
  readonly jobId: string;
  readonly jobName: string;
  readonly state: string;
  readonly assignedWorker: string;
  readonly data: unknown;
  readonly progress: unknown;
  readonly result: unknown;
  readonly failedReason: string | null;
  readonly attemptsMade: number;
  /** How many times the job started: retries, and re-runs after a crash, included. */
  readonly attemptsStarted: number;
  readonly attempts: number;
  readonly timestamps: {
    readonly enqueuedAt: string | null;
    readonly startedAt: string | null;
    readonly finishedAt: string | null;
  };
}

export interface JobReader {
  read(jobId: string): Promise<JobView | undefined>;
}

export interface JobReaderOptions {
  readonly queues: Pick<QueueRegistry, 'forWorker'>;
  readonly isKnownWorker: (workerId: string) => Promise<boolean>;
}

export function createJobReader({ queues, isKnownWorker }: JobReaderOptions): JobReader {
  return {
    async read(jobId) {
      const parsed = parseJobId(jobId);
      if (!parsed || !(await isKnownWorker(parsed.workerId))) return undefined;
      // State first: a job seen finished is then read with its result, never the other way round.
      const queue = queues.forWorker(parsed.workerId);
      const state = await queue.getJobState(jobId);
      if (state === 'unknown') return undefined;
      const job: Job | undefined = await queue.getJob(jobId);
      if (!job) return undefined;
      return {
        jobId,
        jobName: job.name,
        state,
        assignedWorker: parsed.workerId,
        data: job.data,
        progress: job.progress,
        result: job.returnvalue ?? null,
        failedReason: job.failedReason || null,
        attemptsMade: job.attemptsMade,
        attemptsStarted: job.attemptsStarted,
        attempts: job.opts.attempts ?? 1,
        timestamps: {
          enqueuedAt: iso(job.timestamp),
          startedAt: iso(job.processedOn),
          finishedAt: iso(job.finishedOn),
        },
      };
    },
  };
}

function iso(ms: number | undefined): string | null {
  return ms === undefined || ms === 0 ? null : new Date(ms).toISOString();
}
