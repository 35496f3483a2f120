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
import type { TakeOut } from '../queue/cancel-waiting.js';
import type { JobReader, JobView } from '../jobs/reader.js';
import type { ProcessMetrics } from '../metrics/process-metrics.js';
import { parseJobId } from '../contracts/names.js';
import { CANCELLED_REASON } from '../contracts/stored-job.js';
import { TOMBSTONE_TTL_MS, type CancelKeys } from './signals.js';
import type { Tracing } from '../tracing/tracing.js';

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
  /** Takes a job that has not started out of its queue, giving back its slot or place in line. */
  readonly takeOut: TakeOut;
  readonly metrics: Pick<ProcessMetrics, 'jobCancelled'>;
  /** The request's span hears of a job it took out (a running one's own span hears it where it runs). */
  readonly tracing?: Pick<Tracing, 'addEvent'> | undefined;
}

const FINISHED = new Set(['completed', 'failed', 'expired']);

export function createCanceller(options: CancellerOptions): Canceller {
  const { redis, keys, reader, takeOut, metrics } = options;

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
      if (await takeOut({ jobId, token: parsed.token, assignedWorker: before.assignedWorker }, CANCELLED_REASON)) {
        // Counted here, by the process that took it out; a running one is counted where it ran.
        metrics.jobCancelled(before.jobName);
        options.tracing?.addEvent('job.cancelled', { 'messaging.message.id': jobId });
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
