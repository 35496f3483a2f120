/**
 * The options a job keeps when it is added again to another queue under its id (a delayed job routed
 * when due, a held job handed to its worker): what it was enqueued with, without its delay, with its
 * enqueue time.
 */
import type { Job, JobsOptions } from './bullmq.js';
import {
  EXPIRES_OPTION,
  groupOption,
  groupOptions,
  scheduleOption,
  scheduleOptions,
  TIMEOUT_OPTION,
  traceOption,
  traceOptions,
} from '../contracts/stored-job.js';

export function carriedOptions(job: Job, jobId: string): JobsOptions {
  const { attempts, backoff, priority } = job.opts;
  const stored = job.opts as Record<string, unknown>;
  const timeoutMs = stored[TIMEOUT_OPTION];
  const expiresAt = stored[EXPIRES_OPTION];
  return {
    jobId,
    timestamp: job.timestamp,
    ...(attempts === undefined ? {} : { attempts }),
    ...(backoff === undefined ? {} : { backoff }),
    ...(priority ? { priority } : {}),
    ...(timeoutMs === undefined ? {} : { [TIMEOUT_OPTION]: timeoutMs }),
    ...(expiresAt === undefined ? {} : { [EXPIRES_OPTION]: expiresAt }),
    ...groupOptions(groupOption(stored)),
    ...scheduleOptions(scheduleOption(stored)),
    ...traceOptions(traceOption(stored)),
  };
}
