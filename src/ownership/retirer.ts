/**
 * Retirement of dead worker ids. An id whose lease has been expired for WORKER_RETIRE_MS belongs to
 * a process that is gone for good (a host replaced under a new name, a scaled-down replica). One live
 * process claims it, puts the jobs its owner left running back to waiting, moves every job that has
 * not started to the least-loaded live workers, releases what is left of its reservations, and
 * removes the id from the ledger: it then counts toward neither capacity nor backlog.
 *
 * Later passes clean the retired id's finished jobs as they age, and forget the id (its queue
 * included) once nothing is left in it: no key, hash field or queue handle of it is left then. An id
 * that starts again takes its lease anew and starts empty.
 */
import type { RedisClient } from '../redis/connections.js';
import type { Logger } from '../logging/logger.js';
import type { Leases } from '../ledger/lease.js';
import type { Ledger } from '../ledger/ledger.js';
import type { MoveLedger } from '../ledger/moves.js';
import { requeueInterrupted } from '../queue/interrupted.js';
import { parseJobId } from '../contracts/names.js';
import type { QueueRegistry } from '../queue/queues.js';
import type { Transfer } from '../queue/transfer.js';
import { createForgetQueue } from '../queue/forget-queue.js';
import type { Mover } from './mover.js';

const BATCH = 100;
const CLEAN_BATCH = 1_000;
const STILL_QUEUED = new Set(['waiting', 'prioritized', 'delayed', 'active', 'paused', 'waiting-children']);

export interface Retirer {
  /** Retires the id if this process can claim it; answers whether the id is now retired. */
  retire(workerId: string): Promise<boolean>;
  /** Cleans the finished jobs of retired ids, and forgets ids with nothing left. */
  purge(): Promise<void>;
}

export interface RetirerOptions {
  readonly redis: RedisClient;
  readonly leases: Pick<Leases, 'claimRetirement' | 'finishRetirement' | 'retired' | 'forgetRetired'>;
  readonly ledger: Pick<Ledger, 'reservations' | 'markRequeued' | 'release'>;
  readonly moves: Pick<MoveLedger, 'pending'>;
  readonly queues: Pick<QueueRegistry, 'forWorker' | 'drop'>;
  readonly transfer: Pick<Transfer, 'notStarted'>;
  readonly mover: Pick<Mover, 'move'>;
  readonly retention: {
    readonly completed: { readonly ageSeconds: number };
    readonly failed: { readonly ageSeconds: number };
  };
  readonly onRetired: () => void;
  readonly logger: Logger;
}

export function createRetirer(options: RetirerOptions): Retirer {
  const { redis, leases, ledger, queues, transfer, mover, logger } = options;
  const forgetQueue = createForgetQueue(redis);

  /** Moves every job of the id that has not started; false when no live worker can take them. */
  const moveAway = async (workerId: string): Promise<boolean> => {
    let moved = 0;
    for (;;) {
      const ids = await transfer.notStarted(workerId, BATCH);
      let progress = false;
      for (const jobId of ids) {
        const token = parseJobId(jobId)?.token;
        if (token === undefined) continue;
        const outcome = await mover.move({ jobId, token, source: workerId, target: undefined, reason: 'retired' });
        if (outcome === 'no-target') return false;
        if (outcome === 'moved') {
          moved += 1;
          progress = true;
        }
      }
      if (!progress || !(await leases.claimRetirement(workerId))) break;
    }
    if (moved > 0)
      logger.info(
        { event: 'retirement.moved', retiring: workerId, moved },
        'moved the jobs of a dead worker id to live workers',
      );
    return true;
  };

  /** Releases reservations whose jobs are neither queued in the id's queue nor in a move. */
  const releaseLeftovers = async (workerId: string): Promise<void> => {
    const moving = new Set((await options.moves.pending()).map((intent) => intent.token));
    const queue = queues.forWorker(workerId);
    for await (const reservation of ledger.reservations(workerId)) {
      if (moving.has(reservation.token)) continue;
      if (STILL_QUEUED.has(await queue.getJobState(reservation.jobId))) continue;
      await ledger.release(workerId, reservation.token);
    }
  };

  return {
    async retire(workerId) {
      if (!(await leases.claimRetirement(workerId))) return false;
      logger.info({ event: 'retirement.started', retiring: workerId }, 'retiring a dead worker id');
      const queue = queues.forWorker(workerId);
      for (const jobId of await requeueInterrupted(queue, redis)) {
        const token = parseJobId(jobId)?.token;
        if (token !== undefined) await ledger.markRequeued(workerId, token);
      }
      if (!(await moveAway(workerId))) {
        logger.warn(
          { event: 'retirement.deferred', retiring: workerId },
          'no live worker can take the jobs of a dead worker id; retrying later',
        );
        return false;
      }
      await releaseLeftovers(workerId);
      const outcome = await leases.finishRetirement(workerId);
      if (outcome === 'retired') {
        options.onRetired();
        logger.info({ event: 'retirement.done', retired: workerId }, 'worker id retired');
      }
      return outcome === 'retired';
    },

    async purge() {
      const ageMs = (seconds: number) => seconds * 1000;
      const retired = [...(await leases.retired()).keys()];
      if (retired.length === 0) return;
      // A move cut short after its shift may still keep its job's source copy in the retired id's
      // queue, in no list: the id is forgotten once the move has ended and nothing of its queue is left.
      const moving = new Set((await options.moves.pending()).flatMap((intent) => [intent.source, intent.target]));
      for (const workerId of retired) {
        const queue = queues.forWorker(workerId);
        // Jobs added after the retirement (a request that reserved this id just before it died).
        const late = await transfer.notStarted(workerId, BATCH);
        if (late.length > 0) {
          await moveAway(workerId);
          continue;
        }
        await queue.clean(ageMs(options.retention.completed.ageSeconds), CLEAN_BATCH, 'completed');
        await queue.clean(ageMs(options.retention.failed.ageSeconds), CLEAN_BATCH, 'failed');
        const counts = await queue.getJobCounts();
        if (Object.values(counts).some((count) => count > 0) || moving.has(workerId)) continue;
        // What was just read may be out of date: the id may have started again, or been given a job
        // (added late by a request that reserved it before it was retired). So the id must still be
        // retired, and its queue's keys go only in a script that finds no job in it: a job that came
        // meanwhile keeps the queue, and the next pass moves it away.
        if (!(await leases.retired()).has(workerId) || !(await forgetQueue(queue))) continue;
        await leases.forgetRetired(workerId);
        // Other processes drop their handles of the id when they next find it unknown.
        await queues.drop([workerId]);
        logger.info(
          { event: 'retirement.forgotten', retired: workerId },
          'forgot a retired worker id: nothing is left in its queue',
        );
      }
    },
  };
}
