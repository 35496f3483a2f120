/**
 * `GET /jobs`: every job of the deployment, newest first, page by page, over every worker's queue.
 * BullMQ can list one queue, but not many queues in one order, and not with a cost bounded per page:
 * so pages are read from the job index (`jobIndexKey` in contracts/keys.ts, one sorted set by enqueue time that the
 * dispatcher writes with each job), and each job of a page is read by the job reader, which finds it
 * wherever it is now (moved, or still held as a delayed job not yet routed). The reads of a chunk
 * are issued together on one connection, so a chunk costs a few round trips, not a few per job.
 *
 * Bounded cost. A page reads at most `scanBudget(limit)` index entries (SCAN_FACTOR × `limit`,
 * at most MAX_SCAN), in chunks of at most `limit`, filtered or not: with a filter that few jobs
 * match, a page may hold fewer than `limit` jobs, even none, while `nextCursor` is not null. The
 * cursor is the position of the last entry the page went past, so the next page goes on from there
 * and every entry is visited once; `index-range-1.lua` finds that place exactly even among entries of
 * equal score, and even when the entry itself was dropped since.
 *
 * Trimming the index. An entry outlives its job once retention removes the job. Two things drop such
 * entries, both only after reading the job twice and finding it nowhere (a moving job is always in
 * one of its two queues, so a second read finds a job that the first missed during its move):
 * - the listing drops those it meets;
 * - `sweep()`, which every process runs once per reconcile interval and one of them at a time
 *   actually does (a lock that expires after one interval), walks the oldest entries. Without it an
 *   index nobody lists would grow by one entry per job forever. Dropping entries by age alone is not
 *   safe: a job may wait, be delayed (up to 30 days) or keep being retried far longer than any
 *   retention, and must stay listed. So the sweep looks only at entries older than the shortest
 *   retention age (younger ones are more often live, and the listing meets the newest anyway) and
 *   asks whether each job still exists before dropping it (`JobReader.gone`: an EXISTS over the
 *   batch's jobs per queue, never a read of a job's state, which scans its queue's list). It looks
 *   at most SWEEP_BATCH × SWEEP_BATCHES entries a pass (2000 per 5 s by default) and keeps its
 *   position in Redis, so live old jobs (a long backlog) are stepped over instead of asked about
 *   again each pass; once it reaches the young entries it starts again
 *   from the oldest. The index thus stays near (enqueue rate × shortest retention) plus the live
 *   jobs, as long as jobs are enqueued more slowly than the passes examine entries.
 */
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '../redis/connections.js';
import { scriptsIn } from '../redis/scripts.js';
import { decodeCursor, encodeCursor, type IndexPosition } from './index-cursor.js';
import type { JobReader, JobView } from './reader.js';

const LUA_DIRECTORY = fileURLToPath(new URL('./lua/', import.meta.url));

/** The states a listing can be filtered by: BullMQ's, with cancelled and expired jobs told apart from failed. */
export const LISTED_STATES = [
  'waiting',
  'prioritized',
  'delayed',
  'active',
  'completed',
  'failed',
  'cancelled',
  'expired',
] as const;
export type ListedState = (typeof LISTED_STATES)[number];

export const DEFAULT_LIST_LIMIT = 50;
export const MAX_LIST_LIMIT = 500;
/** A page reads at most this many index entries per job it may return… */
export const SCAN_FACTOR = 4;
/** …and never more than this many in all. */
export const MAX_SCAN = 1_000;

/** Younger index entries are never dropped: their job may be on its way (see the dispatcher). */
const YOUNG_ENTRY_MS = 60_000;

/** Index entries one sweep batch reads, and batches one pass runs at most. */
export const SWEEP_BATCH = 500;
export const SWEEP_BATCHES = 4;

/** How many index entries a page of `limit` jobs reads at most. */
export function scanBudget(limit: number): number {
  return Math.max(limit, Math.min(MAX_SCAN, limit * SCAN_FACTOR));
}

export interface JobFilter {
  readonly state?: ListedState | undefined;
  /** The worker whose queue holds the job now (`assignedWorker`). */
  readonly worker?: string | undefined;
  readonly jobName?: string | undefined;
  readonly group?: string | undefined;
  /** The schedule that made the job. */
  readonly schedule?: string | undefined;
}

export interface ListRequest {
  readonly filter: JobFilter;
  readonly limit: number;
  /** Where the previous page ended; undefined for the first page. */
  readonly after?: IndexPosition | undefined;
}

export interface JobPage {
  readonly jobs: JobView[];
  readonly nextCursor: string | null;
  /**
   * Index entries this page went past (for logs and tests). The jobs it read are at most
   * `scanBudget(limit)`; this is at most that too.
   */
  readonly scanned: number;
  /** Entries of jobs found gone, dropped from the index. */
  readonly dropped: number;
}

export interface SweepOutcome {
  /** False when another process swept within the last interval. */
  readonly ran: boolean;
  readonly examined: number;
  readonly dropped: number;
}

export interface JobLister {
  list(request: ListRequest): Promise<JobPage>;
  /** One bounded pass over the oldest entries, dropping those of jobs that are gone. */
  sweep(): Promise<SweepOutcome>;
}

export interface JobListerOptions {
  readonly redis: RedisClient;
  /** `jobIndexKey(prefix)`; the sweep keeps its position and lock in keys named after it. */
  readonly indexKey: string;
  readonly reader: Pick<JobReader, 'read' | 'gone'>;
  /** Entries younger than this are left to the listing: the shortest retention age, in ms. */
  readonly sweepAfterMs: number;
  /** How long one process's sweep keeps the others from sweeping: its reconcile interval. */
  readonly sweepIntervalMs: number;
  /** Overrides of SWEEP_BATCH and SWEEP_BATCHES, for tests. */
  readonly sweepBatch?: number;
  readonly sweepBatches?: number;
}

interface Entry extends IndexPosition {
  readonly view: JobView | undefined;
}

export function createJobLister(options: JobListerOptions): JobLister {
  const { redis, indexKey, reader } = options;
  const range = scriptsIn(redis, LUA_DIRECTORY)('index-range');
  const sweepPositionKey = `${indexKey}:sweep-position`;
  const sweepLockKey = `${indexKey}:sweep-lock`;
  const sweepBatch = options.sweepBatch ?? SWEEP_BATCH;
  const sweepBatches = options.sweepBatches ?? SWEEP_BATCHES;

  /** Up to `count` entries after `after`, in the given order. */
  const entriesAfter = async (
    order: 'newest' | 'oldest',
    after: IndexPosition | undefined,
    count: number,
  ): Promise<IndexPosition[]> => {
    const flat = (await range([indexKey], [order, count, after?.score ?? '', after?.member ?? ''])) as string[];
    const entries: IndexPosition[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) entries.push({ member: flat[i] ?? '', score: Number(flat[i + 1]) });
    return entries;
  };

  /** Reads the jobs of some entries together; drops the entries of jobs that are gone. */
  const readEntries = async (positions: readonly IndexPosition[]): Promise<{ entries: Entry[]; dropped: number }> => {
    const views = await Promise.all(positions.map(({ member }) => reader.read(member)));
    // An entry is written as its job's slot is reserved, a moment before the job is added: a young
    // entry without a job is skipped, not dropped.
    const settled = Date.now() - YOUNG_ENTRY_MS;
    const missing = positions
      .filter(({ score }, i) => views[i] === undefined && score < settled)
      .map(({ member }) => member);
    if (missing.length === 0) {
      return { entries: positions.map((position, i) => ({ ...position, view: views[i] })), dropped: 0 };
    }
    // Read again: a job found in neither queue during its move is in its new one by now.
    const again = new Map<string, JobView | undefined>(
      await Promise.all(missing.map(async (id) => [id, await reader.read(id)] as const)),
    );
    const gone = missing.filter((id) => again.get(id) === undefined);
    if (gone.length > 0) await redis.zrem(indexKey, ...gone);
    return {
      entries: positions.map((position, i) => ({ ...position, view: views[i] ?? again.get(position.member) })),
      dropped: gone.length,
    };
  };

  /**
   * Drops the entries of jobs that are gone, asked twice: a job found in neither of its queues while
   * it moved is in its new one by the second asking. Only whether each job exists is asked, never
   * its state: a sweep of old entries meets many live jobs of a long backlog.
   */
  const dropGone = async (jobIds: readonly string[]): Promise<number> => {
    const first = await reader.gone(jobIds);
    const gone = first.length === 0 ? [] : await reader.gone(first);
    if (gone.length > 0) await redis.zrem(indexKey, ...gone);
    return gone.length;
  };

  const matches = (view: JobView, { state, worker, jobName, group, schedule }: JobFilter): boolean =>
    (state === undefined || view.state === state) &&
    (worker === undefined || view.assignedWorker === worker) &&
    (jobName === undefined || view.jobName === jobName) &&
    (group === undefined || view.group === group) &&
    (schedule === undefined || view.schedule?.name === schedule);

  return {
    async list({ filter, limit, after }) {
      const budget = scanBudget(limit);
      const jobs: JobView[] = [];
      let position = after;
      let scanned = 0;
      let dropped = 0;
      let exhausted = false;
      while (!exhausted && jobs.length < limit && scanned < budget) {
        const want = Math.min(limit, budget - scanned);
        // One more than is read, to know whether anything follows.
        const found = await entriesAfter('newest', position, want + 1);
        const chunk = await readEntries(found.slice(0, want));
        dropped += chunk.dropped;
        let consumed = 0;
        for (const entry of chunk.entries) {
          consumed += 1;
          position = entry;
          if (entry.view !== undefined && matches(entry.view, filter)) jobs.push(entry.view);
          if (jobs.length === limit) break;
        }
        scanned += consumed;
        exhausted = found.length <= want && consumed === chunk.entries.length;
      }
      return {
        jobs,
        nextCursor: exhausted || position === undefined ? null : encodeCursor(position),
        scanned,
        dropped,
      };
    },

    async sweep() {
      const locked = await redis.set(sweepLockKey, '1', 'PX', options.sweepIntervalMs, 'NX');
      if (locked !== 'OK') return { ran: false, examined: 0, dropped: 0 };
      const cutoff = Date.now() - options.sweepAfterMs;
      const saved = await redis.get(sweepPositionKey);
      let position = saved === null ? undefined : decodeCursor(saved);
      let examined = 0;
      let dropped = 0;
      for (let batch = 0; batch < sweepBatches; batch += 1) {
        const found = await entriesAfter('oldest', position, sweepBatch);
        const old = found.filter((entry) => entry.score < cutoff);
        if (old.length > 0) {
          dropped += await dropGone(old.map(({ member }) => member));
          examined += old.length;
          position = old[old.length - 1];
        }
        // The young entries, or the end of the index: the next pass starts again from the oldest.
        if (old.length < sweepBatch) {
          await redis.del(sweepPositionKey);
          return { ran: true, examined, dropped };
        }
      }
      if (position !== undefined) await redis.set(sweepPositionKey, encodeCursor(position));
      return { ran: true, examined, dropped };
    },
  };
}
