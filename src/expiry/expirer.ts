/**
 * Expires jobs at their deadline, wherever they wait, so that the slot or the place in line they hold
 * is given back at once rather than when a worker would have started them. Every job enqueued with an
 * expiry has an entry in one sorted set in the ledger's slot (`expiries`, contracts/keys.ts), written
 * with its add and dropped when it starts. Every process runs a pass every EXPIRY_INTERVAL_MS: one
 * script claims the due entries by Redis's clock (see lua/claim-1.lua), and for each the job is read
 * where it is now (its worker's queue, the queue it moved to, the held queue or the delayed queue). A
 * job that has not started is taken out and filed as failed with the reason `expired`, with its slot
 * or place in line given back, as a cancel does (queue/cancel-waiting.ts); a job that runs or ended
 * loses its entry; a job between two queues, or being routed, is looked at again shortly.
 *
 * The consumer checks a job's expiry again as it starts it (by its own clock), and so does the
 * delayed router as a job falls due: a job this pass has not reached yet still never runs.
 */
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '../redis/connections.js';
import { scriptsIn } from '../redis/scripts.js';
import type { Logger } from '../logging/logger.js';
import type { TakeOut } from '../queue/cancel-waiting.js';
import type { JobReader, JobView } from '../jobs/reader.js';
import type { ProcessMetrics } from '../metrics/process-metrics.js';
import { EXPIRED_REASON } from '../contracts/stored-job.js';
import { parseJobId } from '../contracts/names.js';

const LUA_DIRECTORY = fileURLToPath(new URL('./lua/', import.meta.url));

/** How often each process looks for due expiries: a job expires within about this much of its time. */
export const EXPIRY_INTERVAL_MS = 250;
/** Entries claimed at once; a pass claims again while it gets full batches, up to MAX_BATCHES. */
const BATCH = 100;
const MAX_BATCHES = 10;
/** How long a claimed entry is left to its claimer before another process may take it. */
const LEASE_MS = 15_000;
/** When a job between two queues (or being routed) is looked at again. */
const LOOK_AGAIN_MS = 500;
/**
 * An entry whose job is found nowhere is dropped only this long after its expiry: the entry of a lone
 * task goes out just ahead of its add, and the add of a job whose expiry is due at once may follow.
 */
const GONE_GRACE_MS = 60_000;

const ENDED = new Set(['completed', 'failed', 'cancelled', 'expired']);

/** What to do with a due entry, given the job as the reader found it now. */
export type ExpiryAction = 'take-out' | 'drop-entry' | 'look-again';

/**
 * A job expires only if it has not started. One in a worker's queue that ran before (it waits for a
 * retry) has started; in the delayed queue a job's starts count its routings, so they say nothing.
 */
export function expiryAction(view: Pick<JobView, 'state' | 'assignedWorker' | 'attemptsStarted'>): ExpiryAction {
  if (ENDED.has(view.state)) return 'drop-entry';
  if (view.assignedWorker === null) return view.state === 'active' ? 'look-again' : 'take-out';
  return view.state === 'active' || view.attemptsStarted > 0 ? 'drop-entry' : 'take-out';
}

export interface Expirer {
  /** One pass over the due entries; answers how many jobs it expired. */
  pass(): Promise<number>;
  /** Waits for the pass under way, if any. */
  settle(): Promise<void>;
}

export interface ExpirerOptions {
  readonly redis: RedisClient;
  /** `ledgerKeys(prefix).expiries`. */
  readonly expiriesKey: string;
  readonly reader: Pick<JobReader, 'read'>;
  /** Takes a job that has not started out of its queue, giving back its slot or place in line. */
  readonly takeOut: TakeOut;
  readonly metrics: Pick<ProcessMetrics, 'jobExpired'>;
  readonly logger: Logger;
}

interface Due {
  readonly jobId: string;
  readonly dueAt: number;
}

export function createExpirer({ redis, expiriesKey, reader, takeOut, metrics, logger }: ExpirerOptions): Expirer {
  const claimScript = scriptsIn(redis, LUA_DIRECTORY)('claim');
  let running: Promise<number> | undefined;

  const claim = async (): Promise<{ now: number; due: Due[] }> => {
    const reply = (await claimScript([expiriesKey], [BATCH, LEASE_MS, ''])) as (string | number)[];
    const due: Due[] = [];
    for (let i = 1; i + 1 < reply.length; i += 2) due.push({ jobId: String(reply[i]), dueAt: Number(reply[i + 1]) });
    return { now: Number(reply[0]), due };
  };

  /** Settles one due entry: true when this process expired its job. */
  const settleOne = async ({ jobId, dueAt }: Due, now: number): Promise<ExpiryAction | 'expired'> => {
    const view = await reader.read(jobId);
    if (view === undefined) return now - dueAt > GONE_GRACE_MS ? 'drop-entry' : 'look-again';
    const action = expiryAction(view);
    if (action !== 'take-out') return action;
    const token = parseJobId(jobId)?.token ?? jobId;
    const job = { jobId, token, assignedWorker: view.assignedWorker };
    // Not taken out: it started just now (the next look drops its entry), or it is between two queues.
    if (!(await takeOut(job, EXPIRED_REASON, { unstartedOnly: true }))) return 'look-again';
    metrics.jobExpired(view.jobName);
    logger.info({ event: 'job.expired', jobId, jobName: view.jobName, by: 'expirer' }, 'job expired before it started');
    return 'expired';
  };

  const batch = async (): Promise<{ expired: number; claimed: number }> => {
    const { now, due } = await claim();
    if (due.length === 0) return { expired: 0, claimed: 0 };
    const outcomes = await Promise.all(
      due.map((entry) =>
        settleOne(entry, now).catch((error: unknown) => {
          logger.warn({ event: 'expiry.settle-failed', err: error, jobId: entry.jobId }, 'could not expire a job');
          return 'look-again' as const;
        }),
      ),
    );
    const done = due.filter((_, i) => outcomes[i] !== 'look-again').map(({ jobId }) => jobId);
    const later = due
      .filter((_, i) => outcomes[i] === 'look-again')
      .flatMap(({ jobId }) => [now + LOOK_AGAIN_MS, jobId]);
    const pipeline = redis.pipeline();
    if (done.length > 0) pipeline.zrem(expiriesKey, ...done);
    // XX: an entry dropped meanwhile (its job started) is not written again.
    if (later.length > 0) pipeline.zadd(expiriesKey, 'XX', ...later);
    const results = await pipeline.exec();
    const failure = results?.find(([error]) => error !== null)?.[0];
    if (failure) throw failure;
    return { expired: outcomes.filter((outcome) => outcome === 'expired').length, claimed: due.length };
  };

  const pass = async (): Promise<number> => {
    let expired = 0;
    for (let i = 0; i < MAX_BATCHES; i += 1) {
      const outcome = await batch();
      expired += outcome.expired;
      if (outcome.claimed < BATCH) break;
    }
    return expired;
  };

  return {
    pass() {
      running ??= pass().finally(() => (running = undefined));
      return running;
    },
    async settle() {
      await running?.catch(() => {});
    },
  };
}
