/**
 * Hands held jobs to workers as slots free, in fair order. The ledger's release script chooses, in one
 * step, the next job in turn and the least-loaded worker with room, and reserves the slot
 * (ledger/groups.ts); this module then moves the job from the held queue to that worker's queue
 * under its id, writing where it went for readers. Any process may release to any worker, of any
 * host: the release is pool-wide.
 *
 * A slot that frees here is handed on with the end of its job, in the same ledger step (`finished`):
 * no release call of its own, no wait for one under way. A release call runs after a task was held,
 * when a group's settings change, and on a short tick (a rate-limited group's next start, a worker
 * that joined). Pokes that come while a release call runs make it run once more, never two at once.
 * The next call does not wait for the moves of the last.
 *
 * A move cut short (a crash, a Redis error) leaves its token in the releasing hash; `recover` finishes
 * it once it is older than the grace period, whoever started it.
 */
import { Job, type Queue } from '../queue/bullmq.js';
import type { RedisClient } from '../redis/connections.js';
import type { GroupLedger, Released, Releasing } from '../ledger/groups.js';
import type { JobLedgerPort } from '../ledger/ledger.js';
import type { QueueRegistry } from '../queue/queues.js';
import { carriedOptions } from '../queue/carried-options.js';
import { jobsExist } from '../queue/job-presence.js';
import { parseJobId, DELAYED_QUEUE, HELD_QUEUE } from '../contracts/names.js';
import { groupOption } from '../contracts/stored-job.js';
import type { Logger } from '../logging/logger.js';

/** Jobs handed out per release call: enough for every slot of a large pool freeing at once. */
const RELEASE_BATCH = 64;

export interface Releaser {
  /** Runs a release soon (now, or again after the one running). */
  poke(): void;
  /**
   * A job on `workerId` ended for good: its reservation ends and the slot it frees goes to the next
   * held job in turn, in one ledger step. Resolves once the adds of the jobs handed to `workerId`
   * itself are written to `connection` (not answered): a command sent on it from then on, such as
   * BullMQ's completion, which fetches the next job, reaches Redis after them. The moves to other
   * workers go on. Rejects if the ledger could not be reached (a release call is poked, and the tick
   * goes on trying).
   */
  finished(workerId: string, token: string): Promise<void>;
  /**
   * Whether the last job end here handed its slot on: held work is waiting, so a consumer that waits
   * for `finished` before its completion has BullMQ's completion fetch that job.
   */
  handsOn(): boolean;
  /** Finishes the moves older than the grace period that were cut short; answers how many. */
  recover(graceMs: number, now: number): Promise<number>;
  /** Waits for the release under way and the moves it started. */
  settle(): Promise<void>;
}

export interface ReleaserOptions {
  readonly groups: Pick<GroupLedger, 'release' | 'finishAndRelease' | 'releasing' | 'released' | 'moved' | 'holdOn'>;
  readonly ledger: Pick<JobLedgerPort, 'release'>;
  /** Queue handles on `connection`. */
  readonly queues: Pick<QueueRegistry, 'forWorker'>;
  readonly connection: RedisClient;
  /** The location record of a job by its token (`ledgerKeys(prefix).location`). */
  readonly locationKey: (token: string) => string;
  /** The reservations hash of a worker (`ledgerKeys(prefix).jobs`). */
  readonly reservationsKey: (workerId: string) => string;
  readonly locationTtlMs: number;
  readonly logger: Logger;
  /** Fault tests only: awaited after a release answered, before its moves (step `released`). */
  readonly afterStep?: ((step: string) => Promise<void>) | undefined;
  /** Told of each delayed job handed to a worker (see `move`). */
  readonly onReleased?: (workerId: string, jobName: string) => void;
}

export function createReleaser(options: ReleaserOptions): Releaser {
  const { groups, ledger, queues, connection, logger } = options;
  const heldQueue = (): Queue => queues.forWorker(HELD_QUEUE);
  const heldCopy = (jobId: string) => ({ jobKey: heldQueue().toKey(jobId), delayedKey: heldQueue().toKey('delayed') });
  let running: Promise<void> | undefined;
  let again = false;

  /** A delayed job was held by the delayed router when due: its id names the delayed queue. */
  const cameFromDelayed = (jobId: string): boolean => parseJobId(jobId)?.workerId === DELAYED_QUEUE;

  /** Where readers find a moved job: it never was in the queue of the worker its id names. */
  const locationOf = (token: string, jobId: string, workerId: string) => ({
    key: options.locationKey(token),
    // The 202 named the worker in the id as where the job would go; a delayed job came from the
    // delayed queue. Readers show neither queue as moved from.
    value: `${workerId}|${cameFromDelayed(jobId) ? `${DELAYED_QUEUE},${HELD_QUEUE}` : HELD_QUEUE}`,
    ttlMs: options.locationTtlMs,
  });

  /**
   * The job, from the held queue to its worker's queue; its held copy goes once the add is done.
   * `sent` is told once the add is under way on `connection`: a command sent on it after that, by the
   * next turn of the event loop, reaches Redis after the add.
   */
  const move = async ({ jobId, workerId }: Released, sent?: () => void): Promise<void> => {
    const parsed = parseJobId(jobId);
    const token = parsed?.token ?? jobId;
    const job = await Job.fromId(heldQueue(), jobId);
    if (job === undefined || job.finishedOn !== undefined) {
      // Cancelled (or its add was undone) while it waited: the slot it was given goes back.
      await ledger.release(workerId, token);
      await groups.released(token);
      return;
    }
    const adding = queues.forWorker(workerId).add(job.name, job.data, carriedOptions(job, jobId));
    sent?.();
    await adding;
    // The location goes with the end of the move, after the add (see `finish`).
    await groups.moved(token, jobId, heldCopy(jobId), locationOf(token, jobId, workerId));
    // A task held at enqueue was counted then, with the worker its 202 named; a delayed one is
    // counted where it goes, as the delayed router counts those it routes.
    if (cameFromDelayed(jobId)) options.onReleased?.(workerId, job.name);
  };

  const failed = (error: unknown) =>
    logger.warn({ event: 'release.failed', err: error }, 'could not hand held jobs to workers; trying again shortly');

  /** Release calls and moves under way: a release does not wait for the moves of the last, `settle` does. */
  const underWay = new Set<Promise<unknown>>();
  const track = (work: Promise<unknown>): Promise<unknown> => {
    const tracked = work.catch(failed).finally(() => underWay.delete(tracked));
    underWay.add(tracked);
    return tracked;
  };
  let handedOn = false;

  /**
   * Starts the moves of the jobs a release handed out; answers, for each, when its add is under way
   * (or its move ended without one).
   */
  const moveAll = async (released: readonly Released[]): Promise<Promise<void>[]> => {
    if (released.length > 0) await options.afterStep?.('released');
    return released.map(
      (each) =>
        new Promise<void>((sent) => {
          void track(move(each, sent)).then(() => sent());
        }),
    );
  };

  /** One release call, its moves started (not awaited); answers how many jobs it handed out. */
  const releaseOnce = async (): Promise<number> => (await moveAll(await groups.release(RELEASE_BATCH))).length;

  const releaseAll = async (): Promise<void> => {
    for (;;) {
      again = false;
      const count = await releaseOnce();
      if (!again && count < RELEASE_BATCH) return;
    }
  };

  const poke = () => {
    if (running !== undefined) {
      again = true;
      return;
    }
    running = releaseAll()
      .catch(failed)
      .finally(() => {
        running = undefined;
      });
  };

  /** A held job whose slot went before it was moved takes its place in its group's line again. */
  const holdAgain = async (jobId: string): Promise<void> => {
    const job = await Job.fromId(heldQueue(), jobId);
    if (job === undefined || job.finishedOn !== undefined) return;
    const multi = connection.multi();
    groups.holdOn(multi, {
      jobKey: heldQueue().toKey(jobId),
      jobId,
      group: groupOption(job.opts as Record<string, unknown>),
      priority: job.opts.priority,
    });
    await multi.exec();
  };

  /**
   * A move older than the grace period, whose held copy is still there. The job in its worker's queue,
   * or a location that names a worker (a steal moved it on from there), says the add happened: the
   * move ends. Otherwise the job is added again if its worker still holds its reservation (an add of
   * an id the queue holds changes nothing); if the reservation went meanwhile (its worker retired),
   * the job takes its place in line again. Never dropped: a job is lost only if nothing holds it.
   */
  const finish = async ({ token, jobId, workerId }: Releasing): Promise<void> => {
    const [held] = await jobsExist(connection, heldQueue(), [jobId]);
    if (held) {
      const [added] = await jobsExist(connection, queues.forWorker(workerId), [jobId]);
      const location = await connection.get(options.locationKey(token));
      if (added === true || (location !== null && !location.startsWith(`${HELD_QUEUE}|`))) {
        await groups.moved(token, jobId, heldCopy(jobId), locationOf(token, jobId, workerId));
        return;
      }
      if ((await connection.hget(options.reservationsKey(workerId), token)) !== null) {
        await move({ jobId, workerId });
        return;
      }
      await holdAgain(jobId);
    }
    await groups.released(token);
  };

  return {
    poke,
    async finished(workerId, token) {
      const released = await groups.finishAndRelease(workerId, token, RELEASE_BATCH).catch((error: unknown) => {
        // The end is retried by the reconciler; a release call hands the slot on once Redis answers.
        poke();
        throw error;
      });
      handedOn = released.length > 0;
      // A full batch may leave more to hand out: a release call follows for those.
      if (released.length === RELEASE_BATCH) poke();
      const moves = await moveAll(released);
      const own = moves.filter((_, i) => released[i]?.workerId === workerId);
      if (own.length === 0) return;
      await Promise.all(own);
      // BullMQ writes its commands some promise steps after it is called; by the next turn of the
      // event loop the adds are written to the connection, ahead of the completion that follows.
      await new Promise<void>((resolve) => setImmediate(resolve));
    },
    handsOn: () => handedOn,
    async recover(graceMs, now) {
      const stale = (await groups.releasing()).filter(({ since }) => since < now - graceMs);
      for (const entry of stale) await finish(entry);
      if (stale.length > 0)
        logger.warn({ event: 'release.recovered', count: stale.length }, 'finished moves of held jobs cut short');
      return stale.length;
    },
    async settle() {
      await running;
      await Promise.all(underWay);
    },
  };
}
