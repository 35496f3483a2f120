/**
 * What every job runs with: retries with exponential backoff, stored on each job; and bounded
 * retention of finished jobs, given to the consumer instead. BullMQ applies a consumer's retention to
 * every job that does not carry its own, and a waiting job then holds about 90 bytes less in Redis.
 */
import type { JobsOptions, KeepJobs } from 'bullmq';

/** How long finished jobs are kept, by outcome: the RETAIN_* settings. */
export interface RetentionPolicy {
  readonly completed: { readonly ageSeconds: number; readonly count: number };
  readonly failed: { readonly ageSeconds: number; readonly count: number };
}

export function jobOptionsFrom(config: { readonly jobAttempts: number; readonly jobBackoffMs: number }): JobsOptions {
  return Object.freeze({
    attempts: config.jobAttempts,
    backoff: { type: 'exponential', delay: config.jobBackoffMs },
  });
}

export interface Retention {
  readonly removeOnComplete: KeepJobs;
  readonly removeOnFail: KeepJobs;
}

export function retentionFrom(config: { readonly retention: RetentionPolicy }): Retention {
  const { completed, failed } = config.retention;
  return Object.freeze({
    removeOnComplete: { age: completed.ageSeconds, count: completed.count },
    removeOnFail: { age: failed.ageSeconds, count: failed.count },
  });
}
