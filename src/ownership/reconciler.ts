/**
 * Keeps the load ledger honest for one worker id. The ledger is updated as jobs move, but a process
 * can die between a job's move in BullMQ and its ledger update, or an update can fail while Redis is
 * away. Each worker id is the only consumer of its queue, so its own process can tell for certain
 * which of its jobs are really running and correct everything else:
 *
 * - at start-up, once it holds the id's lease, jobs left active in its queue by a dead predecessor go
 *   straight back to waiting (instead of waiting out BullMQ's lock duration) and their ledger
 *   entries back to queued;
 * - periodically, entries marked running that this process is not running are requeued, and entries
 *   older than the grace period whose job is finished or was never added are released (a cheap
 *   pipelined read per entry, and only this worker's entries are read);
 * - finished jobs past their retention age are cleaned even when no new job completes.
 */
import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/connections.js';
import type { Logger } from '../logging/logger.js';
import { requeueInterrupted } from '../queue/interrupted.js';
import type { Ledger, Reservation } from '../ledger/ledger.js';

export interface ReconcilerOptions {
  readonly workerId: string;
  readonly redis: RedisClient;
  readonly queue: Queue;
  readonly ledger: Pick<Ledger, 'reservations' | 'markRequeued' | 'release' | 'now'>;
  readonly running: ReadonlySet<string>;
  readonly graceMs: number;
  readonly retention: {
    readonly completed: { readonly ageSeconds: number };
    readonly failed: { readonly ageSeconds: number };
  };
  readonly logger: Logger;
}

export interface ReconcileReport {
  readonly requeued: number;
  readonly released: number;
  readonly cleaned: number;
}

export interface Reconciler {
  /**
   * Puts jobs a dead predecessor left active back to waiting. Call with the lease held and before
   * the consumer starts: nobody else can be running them then.
   */
  recoverOrphans(): Promise<number>;
  reconcile(): Promise<ReconcileReport>;
}

const CLEAN_BATCH = 1_000;
const STATE_BATCH = 1_000;

export function createReconciler(options: ReconcilerOptions): Reconciler {
  const { workerId, redis, queue, ledger, running, logger } = options;

  return {
    async recoverOrphans() {
      const orphans = await requeueInterrupted(queue, redis);
      if (orphans.length > 0)
        logger.warn(
          { event: 'recovery.requeued', count: orphans.length },
          'requeued jobs interrupted by a previous process',
        );
      return orphans.length;
    },

    async reconcile() {
      const now = await ledger.now();
      let requeued = 0;
      const old: Reservation[] = [];
      for await (const reservation of ledger.reservations(workerId)) {
        if (running.has(reservation.token)) continue;
        if (reservation.state === 'active' && (await ledger.markRequeued(workerId, reservation.token))) requeued += 1;
        if (now - reservation.reservedAt > options.graceMs) old.push(reservation);
      }

      // Old reservations whose job finished, or was never added: one pipelined HMGET per batch
      // reads both from the job hash (no timestamp: no job; finishedOn: done for good).
      let released = 0;
      for (let i = 0; i < old.length; i += STATE_BATCH) {
        const batch = old.slice(i, i + STATE_BATCH);
        const pipeline = redis.pipeline();
        for (const { jobId } of batch) pipeline.hmget(queue.toKey(jobId), 'timestamp', 'finishedOn');
        const replies = (await pipeline.exec()) ?? [];
        for (const [index, [error, fields]] of replies.entries()) {
          const token = batch[index]?.token;
          if (error || token === undefined || running.has(token)) continue;
          const [timestamp, finishedOn] = fields as [string | null, string | null];
          if ((timestamp === null || finishedOn !== null) && (await ledger.release(workerId, token))) released += 1;
        }
      }

      const cleaned =
        (await queue.clean(options.retention.completed.ageSeconds * 1000, CLEAN_BATCH, 'completed')).length +
        (await queue.clean(options.retention.failed.ageSeconds * 1000, CLEAN_BATCH, 'failed')).length;

      if (requeued + released > 0)
        logger.warn({ event: 'ledger.corrected', requeued, released }, 'load ledger corrected');
      return { requeued, released, cleaned };
    },
  };
}
