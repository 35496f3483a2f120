/**
 * The load ledger in Redis: for each worker, the jobs assigned to it and whether each is waiting or
 * running, with per-worker counters of both. Selection, reservation and every state change are single
 * Lua scripts keyed by the job's token, so concurrent callers on any host see one consistent picture
 * and the counters cannot drift from the reservations they count.
 */
import type { RedisClient } from '../redis/connections.js';
import { groupKeyList, groupKeys, ledgerKeys, type GroupKeys, type LedgerKeys } from '../contracts/keys.js';
import { DEFAULT_GROUP } from '../contracts/stored-job.js';
import { clockArgument, ledgerScripts, redisMillis, type Clock } from './scripts.js';
import { reservationReads, type Reservation, type ReservationReads } from './reservations.js';
import { readSnapshot, type WorkerInfo, type WorkerLoad } from './snapshot.js';

export type { WorkerInfo, WorkerLoad } from './snapshot.js';

export type { Reservation, ReservationPage, ReservationState } from './reservations.js';

export type ReserveOutcome =
  /** `reservedAt`: when (ms, Redis's clock), and the job's score in the job index. */
  | { readonly kind: 'reserved'; readonly workerId: string; readonly reservedAt: number; readonly load?: number }
  /** The job waits for its group's turn in the held queue; its id is made for `workerId`. */
  | { readonly kind: 'held'; readonly workerId: string; readonly load?: number }
  | { readonly kind: 'no-live-worker' }
  | { readonly kind: 'backlog-full' };

/** What a running job tells the ledger: the narrow port the consumer sees. */
export interface JobLedgerPort {
  markStarted(workerId: string, token: string): Promise<boolean>;
  markRequeued(workerId: string, token: string): Promise<boolean>;
  /** Releases the reservation, whatever its state; a second call is a no-op. */
  release(workerId: string, token: string): Promise<boolean>;
}

/**
 * A job to place: its token, its group, and the queue its id was made for when that is no worker; a
 * bare token is a job of the default group.
 */
export type ReserveRequest =
  | string
  | {
      readonly token: string;
      readonly group?: string | undefined;
      readonly first?: string | undefined;
    };

export interface Ledger extends JobLedgerPort, ReservationReads {
  readonly keys: LedgerKeys;
  readonly groupKeys: GroupKeys;
  /**
   * Picks the least-loaded live worker and reserves a slot on it, or answers that the job must wait
   * for its group's turn (see reserve-n.lua). `first` names the worker the job's id was made for, when
   * that is not the worker chosen (the delayed queue, for a delayed job).
   */
  reserve(token: string, first?: string, group?: string): Promise<ReserveOutcome>;
  /** The same for several jobs in one Redis call, chosen one after another as separate calls would. */
  reserveMany(requests: readonly ReserveRequest[]): Promise<ReserveOutcome[]>;
  /** The worker ids reserve covers now (see refreshMembers). */
  memberIds(): readonly string[];
  /** Releases a reservation wherever it is: for a reserve whose answer was lost. */
  cancel(token: string): Promise<boolean>;
  /**
   * Reads again which worker ids reserve and cancel must cover: those with a lease (live, or dead and
   * not yet retired) or a heartbeat. An id retired since the last read drops out, so that each call
   * carries the ids in use rather than every id this object has seen. Call it periodically.
   */
  refreshMembers(): Promise<void>;
  /** Records what a worker is (pid, host, capacity) for `/workers`. */
  register(info: WorkerInfo): Promise<void>;
  /** Takes a worker out of selection at once, instead of waiting for its heartbeat to age. */
  deregister(workerId: string): Promise<void>;
  /** Whether a worker with this id has registered under this prefix (retired ones included). */
  isKnownWorker(workerId: string): Promise<boolean>;
  /** Every worker id registered under this prefix, retired ones included, sorted. */
  knownWorkers(): Promise<readonly string[]>;
  /** One worker's reservations, read incrementally so that a large backlog does not block Redis. */
  reservations(workerId: string): AsyncIterable<Reservation>;
  /** Rebuilds one worker's counters from its reservations. */
  recount(workerId: string): Promise<number>;
  /** Milliseconds by the clock that stamps the ledger's entries: its own node's, on a cluster. */
  now(): Promise<number>;
  /** One consistent read of every worker with its counters, liveness and lease. */
  snapshot(): Promise<readonly WorkerLoad[]>;
}

export interface LedgerOptions {
  readonly redis: RedisClient;
  readonly prefix: string;
  readonly workerTtlMs: number;
  /** Jobs assigned but not started, over all workers, beyond which nothing more is reserved. */
  readonly maxBacklog?: number;
  /**
   * Jobs a worker may hold beyond its concurrency (PREFETCH): a task goes to a worker with room, the
   * rest wait in the held queue for their group's turn. Without it every task is placed at once,
   * however busy the workers, as before groups (the ledger's own tests of placement).
   */
  readonly prefetch?: number;
  /** The concurrency of a group without its own (GROUP_CONCURRENCY; 0: no limit). */
  readonly groupConcurrency?: number;
  /**
   * Tests only: the time the scripts stamp and judge by, and that `now` and `snapshot` read, instead
   * of Redis's (see `Clock`). Heartbeats are compared with reservations' times, so a test passes
   * the same clock to every ledger object it makes.
   */
  readonly clock?: Clock;
}

/** A reserve that keeps meeting workers it was not told of gives up after this many refreshes. */
const MAX_MEMBERSHIP_REFRESHES = 3;

export function createLedger({
  redis,
  prefix,
  workerTtlMs,
  maxBacklog = Number.MAX_SAFE_INTEGER,
  prefetch = Number.MAX_SAFE_INTEGER,
  groupConcurrency = 0,
  clock,
}: LedgerOptions): Ledger {
  const keys = ledgerKeys(prefix);
  const groups = groupKeys(prefix);
  const groupList = groupKeyList(groups);
  const script = ledgerScripts(redis);
  const reserveScript = script('reserve');
  const transitionScript = script('transition');
  const recountScript = script('recount');
  const cancelScript = script('cancel');
  const counters = (workerId: string) => [keys.jobs(workerId), keys.queued, keys.active, keys.running(workerId)];
  const reads = reservationReads(redis, keys);

  // The ids whose reservation hashes reserve is given: those with a lease or a heartbeat at the last
  // read. A live id missing from it makes the script answer -2, and the list is read again.
  let members: readonly string[] = [];
  // Ids that left `members`, which cancel still covers, each with the number of the last read sent
  // when it left. A cancel follows the reserve it undoes on the same connection, and a reservation
  // whose job was never added stays on the id that reserve chose, one it was given, until released.
  // Once an id has left, no reserve is given it, so every reserve that was is ahead of any read sent
  // later, and Redis runs them in that order. Such a read that still finds no lease for the id shows
  // that it was retired after those reserves ran (only retire-finish-8.lua removes a lease, and only
  // from an id whose reservations hash is empty): each of their reservations on it was moved or
  // released first, and cancel has nothing left to find there. (A script Redis had forgotten is sent
  // again after its NOSCRIPT, out of that order; should such a reserve land on an id retired and
  // started again meanwhile, and its answer be lost, the reconciler frees that one slot after its
  // grace period, as for any cancel that fails.)
  const leaving = new Map<string, number>();
  let readsSent = 0;
  const refreshMembers = async () => {
    readsSent += 1;
    const read = readsSent;
    // Two reads, not one transaction: that an id has no lease is what lets it go, and the heartbeats
    // only add the ids a test makes live without one.
    const [beating, leased] = await Promise.all([redis.zrange(keys.heartbeats, 0, -1), redis.hkeys(keys.leases)]);
    const current = new Set([...beating, ...leased]);
    for (const id of members) if (!current.has(id)) leaving.set(id, readsSent);
    for (const [id, leftAfterRead] of leaving) if (current.has(id) || read > leftAfterRead) leaving.delete(id);
    members = [...current].sort();
  };

  const reserveMany = async (requests: readonly ReserveRequest[]): Promise<ReserveOutcome[]> => {
    if (requests.length === 0) return [];
    const tokens = requests.map((request) => {
      const { token, first, group } = typeof request === 'string' ? { token: request } : request;
      return `${token}|${first ?? ''}|${group ?? DEFAULT_GROUP}`;
    });
    for (let attempt = 0; attempt <= MAX_MEMBERSHIP_REFRESHES; attempt += 1) {
      const ids = members;
      const replies = await reserveScript(
        [
          keys.heartbeats,
          keys.capacity,
          keys.queued,
          keys.active,
          keys.cursor,
          keys.index,
          ...groupList,
          ...ids.map((id) => keys.jobs(id)),
          ...ids.map((id) => keys.unconfirmed(id)),
        ],
        [workerTtlMs, maxBacklog, ids.length, clockArgument(clock), prefetch, groupConcurrency, ...ids, ...tokens],
      );
      if (!Array.isArray(replies) || replies.length !== tokens.length + 1)
        throw new Error('reserve answered the wrong number of outcomes');
      if (replies[0] === -2) {
        await refreshMembers();
        continue;
      }
      const reservedAt = Number(replies[tokens.length]);
      return replies.slice(0, tokens.length).map((reply: unknown): ReserveOutcome => {
        if (typeof reply !== 'string') return reply === -1 ? { kind: 'backlog-full' } : { kind: 'no-live-worker' };
        // "<worker>@<load>", "+" first when held: worker ids hold no "@".
        const at = reply.lastIndexOf('@');
        const load = Number(reply.slice(at + 1));
        if (reply.startsWith('+')) return { kind: 'held', workerId: reply.slice(1, at), load };
        return { kind: 'reserved', workerId: reply.slice(0, at), reservedAt, load };
      });
    }
    throw new Error('the set of live workers kept changing during reserve');
  };

  const transition = async (workerId: string, token: string, op: string): Promise<boolean> =>
    (await transitionScript(
      [...counters(workerId), keys.unconfirmed(workerId), ...groupList],
      [workerId, token, op, clockArgument(clock), groupConcurrency],
    )) === 1;

  return {
    keys,
    groupKeys: groups,
    async reserve(token, first, group) {
      const [outcome] = await reserveMany([{ token, first, group }]);
      if (!outcome) throw new Error('reserve answered nothing');
      return outcome;
    },
    reserveMany,
    memberIds: () => members,
    refreshMembers,
    markStarted: (workerId, token) => transition(workerId, token, 'start'),
    markRequeued: (workerId, token) => transition(workerId, token, 'requeue'),
    release: (workerId, token) => transition(workerId, token, 'finish'),
    async cancel(token) {
      const ids = leaving.size === 0 ? members : [...members, ...leaving.keys()];
      return (
        (await cancelScript(
          [keys.queued, keys.active, ...groupList, ...ids.map((id) => keys.jobs(id))],
          [token, groupConcurrency, clockArgument(clock), ...ids],
        )) === 1
      );
    },
    async register(info) {
      await redis.hset(keys.workers, info.id, JSON.stringify(info));
    },
    async deregister(workerId) {
      await redis.zrem(keys.heartbeats, workerId);
    },
    async isKnownWorker(workerId) {
      const [registered, retired] = await Promise.all([
        redis.hexists(keys.workers, workerId),
        redis.hexists(keys.retired, workerId),
      ]);
      return registered === 1 || retired === 1;
    },
    async knownWorkers() {
      const [registered, retired] = await Promise.all([redis.hkeys(keys.workers), redis.hkeys(keys.retired)]);
      return [...new Set([...registered, ...retired])].sort();
    },
    ...reads,
    async *reservations(workerId) {
      let cursor = '0';
      do {
        const page = await reads.reservationPage(workerId, cursor, 500);
        cursor = page.cursor;
        yield* page.reservations;
      } while (cursor !== '0');
    },
    async recount(workerId) {
      return Number(await recountScript(counters(workerId), [workerId]));
    },
    async now() {
      if (clock !== undefined) return clock();
      // TIME names no key, so a cluster would send it to any node; in a pipeline with a ledger key
      // it goes to the ledger's master, whose clock stamped every reservation it is compared with.
      const results = await redis.pipeline().time().exists(keys.heartbeats).exec();
      const [error, time] = results?.[0] ?? [new Error('the time was not read'), undefined];
      if (error) throw error;
      return redisMillis(time as [string, string]);
    },
    snapshot: () => readSnapshot(redis, keys, workerTtlMs, clock),
  };
}
