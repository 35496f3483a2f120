/**
 * What every job is added with: retries with exponential backoff, and bounded retention of finished
 * jobs so that Redis does not grow with history.
 */
import type { JobsOptions } from 'bullmq';
import type { Config } from '../config/config.js';

export function jobOptionsFrom(config: Pick<Config, 'jobAttempts' | 'jobBackoffMs' | 'retention'>): JobsOptions {
  return Object.freeze({
    attempts: config.jobAttempts,
    backoff: { type: 'exponential', delay: config.jobBackoffMs },
    removeOnComplete: { age: config.retention.completed.ageSeconds, count: config.retention.completed.count },
    removeOnFail: { age: config.retention.failed.ageSeconds, count: config.retention.failed.count },
  });
}
