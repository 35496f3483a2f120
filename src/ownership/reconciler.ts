/**
 * Keeps the load ledger honest for one worker id. The ledger is updated as jobs move, but a process
 * can die between a job's move in BullMQ and its ledger update, or an update can fail while Redis is
 * away. Each worker id is the only consumer of its queue, so its own process can tell for certain
 * which of its jobs are really running and correct everything else:
 *
 * - at start-up, once it holds the id's lease, jobs left active in its queue by a dead predecessor go
 *   straight back to waiting (instead of waiting out BullMQ's lock duration) and their ledger
 *   entries back to queued;
 * - periodically, it reads what can be wrong, not every waiting job, so that a pass costs the same
 *   with a million jobs waiting as with none:
 *   - the entries listed as running (a handful) that this process is not running are requeued;
 *   - reservations whose job has not been seen yet (made since the last pass, or just requeued) are
 *     checked once past their grace period: released when the job finished or was never added,
 *     confirmed otherwise;
 *   - a sweep reads a bounded page of all the reservations each pass, with a cursor kept here, and
 *     corrects the same two kinds of drift in it, so that whatever went wrong some other way (an
 *     update lost after its job was confirmed, an entry edited by hand) is found within one full
 *     sweep;
 * - finished jobs past their retention age are cleaned even when no new job completes.
 *
 * Jobs are checked by the batch (queue/job-presence.ts): a few commands for a thousand jobs.
 */
import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/connections.js';
import type { Logger } from '../logging/logger.js';
import { requeueInterrupted } from '../queue/interrupted.js';
import { jobPresence } from '../queue/job-presence.js';
import type { Ledger, Reservation } from '../ledger/ledger.js';

export interface ReconcilerOptions {
  readonly workerId: string;
  readonly redis: RedisClient;
  readonly queue: Queue;
  readonly ledger: Pick<
    Ledger,
    'runningTokens' | 'unconfirmed' | 'entries' | 'confirm' | 'reservationPage' | 'markRequeued' | 'release' | 'now'
  >;
  readonly running: ReadonlySet<string>;
  /**
   * Which tokens belong to held jobs on their way to this worker (fairness/releaser.ts): their job is
   * not in the queue yet, and the releaser's recovery, not this pass, finishes or undoes the move.
   */
  readonly releasing: (tokens: readonly string[]) => Promise<ReadonlySet<string>>;
  readonly graceMs: number;
  readonly retention: {
    readonly completed: { readonly ageSeconds: number };
    readonly failed: { readonly ageSeconds: number };
  };
  readonly logger: Logger;
  /** Unconfirmed reservations one pass checks at most (UNCONFIRMED_PER_PASS); tests lower it. */
  readonly unconfirmedPerPass?: number;
  /** Reservations the sweep reads per pass, about (SWEEP_PER_PASS); tests lower it. */
  readonly sweepPerPass?: number;
}

export interface ReconcileReport {
  readonly requeued: number;
  readonly released: number;
  readonly cleaned: number;
  /** Unconfirmed reservations whose job this pass looked at. */
  readonly checked: number;
  /** Reservations the sweep read this pass. */
  readonly swept: number;
  /** This pass's page ended a full sweep over the worker's reservations. */
  readonly sweepEnded: boolean;
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
/** Jobs checked in one batch: three commands on the queue's slot. */
const CHECK_BATCH = 1_000;
/**
 * A pass checks every reservation made since the last one, up to this many (10,000 enqueues a second
 * per worker at the default interval, more than one Redis takes); the rest waits for the next pass.
 */
export const UNCONFIRMED_PER_PASS = 50_000;
/**
 * The sweep's page: at the default interval a worker holding 250,000 reservations (a million jobs
 * over four workers) is swept in full every 125 passes, about ten minutes, for a few commands a pass.
 */
export const SWEEP_PER_PASS = 2_000;

export function createReconciler(options: ReconcilerOptions): Reconciler {
  const { workerId, redis, queue, ledger, running, logger } = options;
  const unconfirmedPerPass = options.unconfirmedPerPass ?? UNCONFIRMED_PER_PASS;
  const sweepPerPass = options.sweepPerPass ?? SWEEP_PER_PASS;
  /** Where the sweep goes on from: kept in memory, so a new process starts its sweep over. */
  let sweepCursor = '0';

  /** Releases the queued reservations whose job finished or is gone; answers how many. */
  const releaseGone = async (reservations: readonly Reservation[]): Promise<number> => {
    let released = 0;
    for (let i = 0; i < reservations.length; i += CHECK_BATCH) {
      const batch = reservations.slice(i, i + CHECK_BATCH);
      const moving = await options.releasing(batch.map(({ token }) => token));
      const presence = await jobPresence(
        redis,
        queue,
        batch.map((reservation) => reservation.jobId),
      );
      for (const [index, { token }] of batch.entries()) {
        // A job that started meanwhile is here to stay until it ends, and then it releases itself.
        if (presence[index] === 'present' || running.has(token) || moving.has(token)) continue;
        if (await ledger.release(workerId, token)) released += 1;
      }
    }
    return released;
  };

  /** Entries listed as running whose job this process does not run: their process is gone. */
  const requeueStale = async (): Promise<number> => {
    let requeued = 0;
    for (const token of await ledger.runningTokens(workerId)) {
      if (!running.has(token) && (await ledger.markRequeued(workerId, token))) requeued += 1;
    }
    return requeued;
  };

  /** Reservations past their grace period whose job was never seen: each is checked once. */
  const checkUnconfirmed = async (settled: number): Promise<{ checked: number; released: number }> => {
    let checked = 0;
    let released = 0;
    while (checked < unconfirmedPerPass) {
      const limit = Math.min(CHECK_BATCH, unconfirmedPerPass - checked);
      const tokens = await ledger.unconfirmed(workerId, settled, limit);
      if (tokens.length === 0) break;
      checked += tokens.length;
      const entries = await ledger.entries(workerId, tokens);
      // Entries marked running, or gone, need no check: a started job was seen, a gone one is done.
      released += await releaseGone(
        entries.filter((entry): entry is Reservation => entry?.state === 'queued' && !running.has(entry.token)),
      );
      await ledger.confirm(workerId, tokens);
      if (tokens.length < limit) break;
    }
    return { checked, released };
  };

  /** One page of every reservation: the same corrections, for drift nothing else would find. */
  const sweep = async (settled: number): Promise<{ swept: number; requeued: number; released: number }> => {
    const page = await ledger.reservationPage(workerId, sweepCursor, sweepPerPass);
    sweepCursor = page.cursor;
    let requeued = 0;
    const old: Reservation[] = [];
    for (const reservation of page.reservations) {
      if (running.has(reservation.token)) continue;
      // Requeued, it is an old queued reservation like the others below, and is checked with them.
      if (reservation.state === 'active' && (await ledger.markRequeued(workerId, reservation.token))) requeued += 1;
      if (reservation.reservedAt < settled) old.push(reservation);
    }
    return { swept: page.reservations.length, requeued, released: await releaseGone(old) };
  };

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
      // Reservations made before this are past their grace period: their job had time to be added.
      const settled = (await ledger.now()) - options.graceMs;
      // Stale running entries first: requeued, they are unconfirmed again, and checked just below.
      const stale = await requeueStale();
      const unconfirmed = await checkUnconfirmed(settled);
      const swept = await sweep(settled);

      const cleaned =
        (await queue.clean(options.retention.completed.ageSeconds * 1000, CLEAN_BATCH, 'completed')).length +
        (await queue.clean(options.retention.failed.ageSeconds * 1000, CLEAN_BATCH, 'failed')).length;

      const requeued = stale + swept.requeued;
      const released = unconfirmed.released + swept.released;
      if (requeued + released > 0)
        logger.warn({ event: 'ledger.corrected', requeued, released }, 'load ledger corrected');
      return {
        requeued,
        released,
        cleaned,
        checked: unconfirmed.checked,
        swept: swept.swept,
        sweepEnded: sweepCursor === '0',
      };
    },
  };
}
