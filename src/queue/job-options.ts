/**
 * What every job runs with: retries with exponential backoff, stored on each job; and bounded
 * retention of finished jobs, given to the consumer instead. BullMQ applies a consumer's retention to
 * every job that does not carry its own, and a waiting job then holds about 90 bytes less in Redis.
 */
import type { JobsOptions, KeepJobs } from 'bullmq';
import type { Config } from '../config/config.js';

export function jobOptionsFrom(config: Pick<Config, 'jobAttempts' | 'jobBackoffMs'>): JobsOptions {
  return Object.freeze({
    attempts: config.jobAttempts,
    backoff: { type: 'exponential', delay: config.jobBackoffMs },
  });
}

export interface Retention {
  readonly removeOnComplete: KeepJobs;
  readonly removeOnFail: KeepJobs;
}

export function retentionFrom(config: Pick<Config, 'retention'>): Retention {
  const { completed, failed } = config.retention;
  return Object.freeze({
    removeOnComplete: { age: completed.ageSeconds, count: completed.count },
    removeOnFail: { age: failed.ageSeconds, count: failed.count },
  });
}

/**
 * The job option that bounds one attempt. BullMQ has no per-job time-out, but it stores options it
 * does not know with the job and gives them back, so the consumer reads it from there.
 */
export const TIMEOUT_OPTION = 'timeoutMs';

/** The attempt time-out a job was enqueued with, if any. */
export function timeoutOption(opts: Readonly<Record<string, unknown>>): number | undefined {
  const value = opts[TIMEOUT_OPTION];
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 ? value : undefined;
}
