/**
 * The options a job keeps when it is added again to another queue under its id (a delayed job routed
 * when due, a held job handed to its worker): what it was enqueued with, without its delay, with its
 * enqueue time.
 */
import { Job, type JobsOptions } from './bullmq.js';
import type { HeldPayload } from '../ledger/groups.js';
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

export function carriedOptions(job: Pick<Job, 'opts' | 'timestamp'>, jobId: string): JobsOptions {
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

/** A job's add to another queue: its name, its data and the options it keeps. */
export interface HeldAdd {
  readonly name: string;
  readonly data: unknown;
  readonly options: JobsOptions;
}

/** The add of a held job from its payload: the fields the held queue stores, decoded as BullMQ decodes them. */
export function heldAdd(payload: HeldPayload, jobId: string): HeldAdd {
  const stored = { opts: Job.optsFromJSON(payload.opts), timestamp: Number(payload.timestamp) };
  return { name: payload.name, data: JSON.parse(payload.data) as unknown, options: carriedOptions(stored, jobId) };
}
