/**
 * The queue's side of ending a job that has not started, cancelled (`DELETE /jobs/:id`) or expired: one
 * script takes it out of its queue's waiting lists and files it as failed with the reason given (see
 * lua/cancel-7.lua), so that BullMQ's consumer can never take it afterwards. `createTakeOut` does that
 * wherever the job waits, and gives back what it held there: its slot in the ledger, or its place in
 * its group's line. Shared by the canceller and the expirer, which differ only in the reason.
 */
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '../redis/connections.js';
import { scriptsIn } from '../redis/scripts.js';
import { CANCELLED_REASON } from '../contracts/stored-job.js';
import { HELD_QUEUE } from '../contracts/names.js';
import type { JobLedgerPort } from '../ledger/ledger.js';
import type { GroupLedger } from '../ledger/groups.js';
import type { Logger } from '../logging/logger.js';
import type { QueueRegistry } from './queues.js';

const LUA_DIRECTORY = fileURLToPath(new URL('./lua/', import.meta.url));

export type WaitingList = 'wait' | 'prioritized' | 'delayed';

/**
 * Takes a job out of one queue's waiting lists, filed as failed with `reason` (CANCELLED_REASON when
 * not given); with `unstartedOnly`, only a job that never started. Answers the list it left, or
 * undefined when it was not waiting there.
 */
export type CancelWaiting = (
  workerId: string,
  jobId: string,
  reason?: string,
  unstartedOnly?: boolean,
) => Promise<WaitingList | undefined>;

export function createCancelWaiting({
  redis,
  queues,
}: {
  readonly redis: RedisClient;
  readonly queues: Pick<QueueRegistry, 'forWorker'>;
}): CancelWaiting {
  const cancelScript = scriptsIn(redis, LUA_DIRECTORY)('cancel');
  return async (workerId, jobId, reason = CANCELLED_REASON, unstartedOnly = false) => {
    const queue = queues.forWorker(workerId);
    const { wait, paused, prioritized, delayed, failed } = queue.keys;
    const jobKey = queue.toKey(jobId);
    const reply = await cancelScript(
      [wait, paused, prioritized, delayed, failed, jobKey, `${jobKey}:lock`].map(String),
      [jobId, reason, unstartedOnly ? '1' : ''],
    );
    return reply === 'wait' || reply === 'prioritized' || reply === 'delayed' ? reply : undefined;
  };
}

/** A job to take out: where the reader found it (null: the delayed or the held queue). */
export interface WaitingJob {
  readonly jobId: string;
  readonly token: string;
  readonly assignedWorker: string | null;
}

/**
 * Takes a job that has not started out of wherever it waits, filed as failed with `reason`, and gives
 * back its slot or its place in line; false when it was not waiting (it runs, it ended, or it is
 * between two queues). With `unstartedOnly`, a job that started before (waiting for a retry) stays.
 */
export type TakeOut = (job: WaitingJob, reason: string, options?: { unstartedOnly?: boolean }) => Promise<boolean>;

export interface TakeOutOptions {
  readonly cancelWaiting: CancelWaiting;
  readonly ledger: Pick<JobLedgerPort, 'release'>;
  /** Where a held job leaves its group's line. */
  readonly groups: Pick<GroupLedger, 'unhold'>;
  /** The key of a job in the held queue. */
  readonly heldJobKey: (jobId: string) => string;
  readonly logger: Logger;
  /** Where a job waits while it has no worker yet (delayed jobs): this queue id (the delayed queue). */
  readonly unroutedWorker: string;
  /** The first part of the events logged when a slot or a place in line could not be given back. */
  readonly eventPrefix: string;
}

export function createTakeOut(options: TakeOutOptions): TakeOut {
  const { cancelWaiting, ledger, groups, logger, eventPrefix } = options;
  return async ({ jobId, token, assignedWorker }, reason, { unstartedOnly = false } = {}) => {
    const workerId = assignedWorker ?? options.unroutedWorker;
    // In the delayed queue a job's start count also counts its routing attempts: it says nothing there.
    if (await cancelWaiting(workerId, jobId, reason, unstartedOnly && assignedWorker !== null)) {
      if (assignedWorker !== null) {
        await ledger.release(workerId, token).catch((error: unknown) => {
          logger.warn(
            { event: `${eventPrefix}.release-failed`, err: error, jobId },
            'could not release the slot of a job taken out of its queue; the reconciler frees it',
          );
        });
      }
      return true;
    }
    // Held for its group's turn: filed as failed in the held queue, then out of its line (a release
    // that took it meanwhile finds it finished and gives its slot back).
    if (await cancelWaiting(HELD_QUEUE, jobId, reason, unstartedOnly)) {
      await groups.unhold(options.heldJobKey(jobId)).catch((error: unknown) => {
        logger.warn(
          { event: `${eventPrefix}.unhold-failed`, err: error, jobId },
          'could not take a job out of its group line; its release gives its slot back',
        );
      });
      return true;
    }
    return false;
  };
}
