/**
 * `DELETE /jobs/:id` from any process. A job that has not started is taken out of its queue in one
 * script and its load released at once. A running one is signalled: the process that runs it aborts
 * its thread and files it as cancelled, without a retry. Either way a tombstone is written first, so
 * a job that starts in the meantime (it was fetched, or was between two queues) is stopped before
 * its body runs. Cancelled jobs are kept as failed jobs with the reason `cancelled`, which every
 * reader shows as state `cancelled`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisClient } from '../redis/connections.js';
import type { Logger } from '../logging/logger.js';
import type { JobLedgerPort } from '../ledger/ledger.js';
import type { GroupLedger } from '../ledger/groups.js';
import { HELD_QUEUE } from '../contracts/names.js';
import type { CancelWaiting } from '../queue/cancel-waiting.js';
import type { JobReader, JobView } from '../jobs/reader.js';
import type { ProcessMetrics } from '../metrics/process-metrics.js';
import { parseJobId } from '../contracts/names.js';
import { TOMBSTONE_TTL_MS, type CancelKeys } from './signals.js';

/** How long a cancel of a running job waits to see it stopped before answering that it is on its way. */
const CONFIRM_WAIT_MS = 3_000;
const CONFIRM_POLL_MS = 50;

export type CancelOutcome =
  | { readonly kind: 'not-found' }
  | { readonly kind: 'finished'; readonly state: string }
  /** It is cancelled: now, or by an earlier request. */
  | { readonly kind: 'cancelled' }
  /** The signal is sent and the tombstone written, but the job was not seen stopped yet. */
  | { readonly kind: 'cancelling' };

export interface Canceller {
  cancel(jobId: string): Promise<CancelOutcome>;
}

export interface CancellerOptions {
  readonly redis: RedisClient;
  readonly keys: CancelKeys;
  readonly reader: JobReader;
  readonly cancelWaiting: CancelWaiting;
  readonly ledger: Pick<JobLedgerPort, 'release'>;
  /** Where a held job leaves its group's line. */
  readonly groups: Pick<GroupLedger, 'unhold'>;
  /** The key of a job in the held queue. */
  readonly heldJobKey: (jobId: string) => string;
  readonly metrics: Pick<ProcessMetrics, 'jobCancelled'>;
  readonly logger: Logger;
  /** Where a job waits while it has no worker yet (delayed jobs): this queue id (the delayed queue). */
  readonly unroutedWorker: string;
}

const FINISHED = new Set(['completed', 'failed']);

export function createCanceller(options: CancellerOptions): Canceller {
  const { redis, keys, reader, cancelWaiting, ledger, metrics, logger } = options;

  const settled = (view: JobView | undefined): CancelOutcome | undefined => {
    if (view === undefined) return { kind: 'not-found' };
    if (view.state === 'cancelled') return { kind: 'cancelled' };
    if (FINISHED.has(view.state)) return { kind: 'finished', state: view.state };
    return undefined;
  };

  return {
    async cancel(jobId) {
      const parsed = parseJobId(jobId);
      const before = parsed && (await reader.read(jobId));
      const early = settled(before);
      if (early !== undefined || before === undefined || !parsed) return early ?? { kind: 'not-found' };

      await redis.set(keys.tombstone(parsed.token), '1', 'PX', TOMBSTONE_TTL_MS);
      const workerId = before.assignedWorker ?? options.unroutedWorker;
      if (await cancelWaiting(workerId, jobId)) {
        if (before.assignedWorker !== null) {
          await ledger.release(workerId, parsed.token).catch((error: unknown) => {
            logger.warn(
              { event: 'cancel.release-failed', err: error, jobId },
              'could not release a cancelled job; the reconciler frees it',
            );
          });
        }
        // Counted here, by the process that took it out; a running one is counted where it ran.
        metrics.jobCancelled(before.jobName);
        return { kind: 'cancelled' };
      }
      // Held for its group's turn: filed as cancelled in the held queue, then out of its line (a
      // release that took it meanwhile finds it cancelled and gives its slot back).
      if (await cancelWaiting(HELD_QUEUE, jobId)) {
        await options.groups.unhold(options.heldJobKey(jobId)).catch((error: unknown) => {
          logger.warn(
            { event: 'cancel.unhold-failed', err: error, jobId },
            'could not take a cancelled job out of its group line; its release gives its slot back',
          );
        });
        metrics.jobCancelled(before.jobName);
        return { kind: 'cancelled' };
      }
      // Running, or it left the waiting lists just now: whoever runs it stops it.
      await redis.publish(keys.channel, jobId);
      const deadline = Date.now() + CONFIRM_WAIT_MS;
      for (;;) {
        const outcome = settled(await reader.read(jobId));
        if (outcome !== undefined) return outcome;
        if (Date.now() >= deadline) return { kind: 'cancelling' };
        await sleep(CONFIRM_POLL_MS);
      }
    },
  };
}
