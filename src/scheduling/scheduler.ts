/**
 * The load ledger in Redis: for each worker, the jobs assigned to it and whether each is waiting or
 * running, with per-worker counters of both. Selection, reservation and every state change are single Lua scripts, keyed by the job's
 * token, so concurrent callers on any host see one consistent picture and the counters cannot drift
 * from the reservations they count.
 */
import type { Redis } from 'ioredis';
import { fileURLToPath } from 'node:url';
import { defineScripts, readScripts, type ScriptCall } from '../redis/scripts.js';
import { schedulerKeys, type SchedulerKeys } from './keys.js';

const LUA_DIRECTORY = new URL('./lua/', import.meta.url);

export type ReservationState = 'queued' | 'active';

export interface Reservation {
  readonly token: string;
  readonly state: ReservationState;
  readonly reservedAt: number;
}

export type ReserveOutcome =
  | { readonly kind: 'reserved'; readonly workerId: string }
  | { readonly kind: 'no-live-worker' }
  | { readonly kind: 'backlog-full' };

export interface WorkerInfo {
  readonly id: string;
  readonly hostId: string;
  readonly pid: number;
  readonly concurrency: number;
  readonly startedAt: number;
}

export interface WorkerLoad extends WorkerInfo {
  readonly queued: number;
  readonly active: number;
  readonly alive: boolean;
  /** Milliseconds since the last heartbeat, by the Redis clock; undefined when none was ever seen. */
  readonly heartbeatAgeMs: number | undefined;
}

export interface Scheduler {
  readonly keys: SchedulerKeys;
  /** Picks the least-loaded live worker and reserves a slot on it. */
  reserve(token: string): Promise<ReserveOutcome>;
  /** The same for several jobs in one Redis call, chosen one after another as separate calls would. */
  reserveMany(tokens: readonly string[]): Promise<ReserveOutcome[]>;
  markStarted(workerId: string, token: string): Promise<boolean>;
  markRequeued(workerId: string, token: string): Promise<boolean>;
  /** Releases the reservation, whatever its state; a second call is a no-op. */
  release(workerId: string, token: string): Promise<boolean>;
  /** Releases a reservation wherever it is: for a reserve whose answer was lost. */
  cancel(token: string): Promise<boolean>;
  heartbeat(info: WorkerInfo): Promise<void>;
  /** Takes a worker out of selection at once, instead of waiting for its heartbeat to age. */
  deregister(workerId: string): Promise<void>;
  /** Whether a worker with this id has ever registered under this prefix. */
  isKnownWorker(workerId: string): Promise<boolean>;
  /** One worker's reservations, read incrementally so that a large backlog does not block Redis. */
  reservations(workerId: string): AsyncIterable<Reservation>;
  /** Rebuilds one worker's counters from its reservations. */
  recount(workerId: string): Promise<number>;
  /** One consistent read of every known worker with its counters and liveness. */
  snapshot(): Promise<readonly WorkerLoad[]>;
}

export interface SchedulerOptions {
  readonly redis: Redis;
  readonly prefix: string;
  readonly workerTtlMs: number;
  /** Jobs assigned but not started, over all workers, beyond which nothing more is reserved. */
  readonly maxBacklog?: number;
}

export function createScheduler({ redis, prefix, workerTtlMs, maxBacklog = Number.MAX_SAFE_INTEGER }: SchedulerOptions): Scheduler {
  const keys = schedulerKeys(prefix);
  const scripts = defineScripts(redis, readScripts(fileURLToPath(LUA_DIRECTORY)));
  const script = (name: string): ScriptCall => {
    const call = scripts.get(name);
    if (!call) throw new Error(`Lua script ${name} is missing from ${fileURLToPath(LUA_DIRECTORY)}`);
    return call;
  };
  const reserveScript = script('reserve');
  const transitionScript = script('transition');
  const heartbeatScript = script('heartbeat');
  const recountScript = script('recount');
  const cancelScript = script('cancel');
  const ledger = (workerId: string) => [keys.jobs(workerId), keys.queued, keys.active];

  const reserveMany = async (tokens: readonly string[]): Promise<ReserveOutcome[]> => {
    if (tokens.length === 0) return [];
    const replies = await reserveScript(
      [keys.heartbeats, keys.capacity, keys.queued, keys.active, keys.cursor],
      [workerTtlMs, maxBacklog, keys.jobsPrefix, ...tokens],
    );
    if (!Array.isArray(replies) || replies.length !== tokens.length) throw new Error('reserve answered the wrong number of outcomes');
    return replies.map((reply: unknown): ReserveOutcome => {
      if (typeof reply === 'string') return { kind: 'reserved', workerId: reply };
      return reply === -1 ? { kind: 'backlog-full' } : { kind: 'no-live-worker' };
    });
  };

  const transition = async (workerId: string, token: string, op: string): Promise<boolean> =>
    (await transitionScript(ledger(workerId), [workerId, token, op])) === 1;

  return {
    keys,
    async reserve(token) {
      const [outcome] = await reserveMany([token]);
      if (!outcome) throw new Error('reserve answered nothing');
      return outcome;
    },
    reserveMany,
    markStarted: (workerId, token) => transition(workerId, token, 'start'),
    markRequeued: (workerId, token) => transition(workerId, token, 'requeue'),
    release: (workerId, token) => transition(workerId, token, 'finish'),
    async cancel(token) {
      return (await cancelScript([keys.heartbeats, keys.queued, keys.active], [token, keys.jobsPrefix])) === 1;
    },
    async heartbeat(info) {
      await heartbeatScript([keys.heartbeats, keys.capacity], [info.id, info.concurrency]);
      await redis.hset(keys.workers, info.id, JSON.stringify(info));
    },
    async deregister(workerId) {
      await redis.zrem(keys.heartbeats, workerId);
    },
    async isKnownWorker(workerId) {
      return (await redis.hexists(keys.workers, workerId)) === 1;
    },
    async *reservations(workerId) {
      let cursor = '0';
      do {
        const [next, flat] = await redis.hscan(keys.jobs(workerId), cursor, 'COUNT', 500);
        cursor = next;
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const reservation = parseReservation(flat[i] ?? '', flat[i + 1] ?? '');
          if (reservation) yield reservation;
        }
      } while (cursor !== '0');
    },
    async recount(workerId) {
      return Number(await recountScript(ledger(workerId), [workerId]));
    },
    async snapshot() {
      const results = await redis
        .multi()
        .time()
        .hgetall(keys.workers)
        .zrange(keys.heartbeats, 0, -1, 'WITHSCORES')
        .hgetall(keys.capacity)
        .hgetall(keys.queued)
        .hgetall(keys.active)
        .exec();
      if (!results) throw new Error('snapshot transaction was aborted');
      for (const [error] of results) if (error) throw error;
      const [time, workers, beats, capacity, queued, active] = results.map(([, value]) => value) as [
        [string, string],
        Record<string, string>,
        string[],
        Record<string, string>,
        Record<string, string>,
        Record<string, string>,
      ];
      const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
      const lastBeat = new Map<string, number>();
      for (let i = 0; i + 1 < beats.length; i += 2) lastBeat.set(beats[i] ?? '', Number(beats[i + 1]));
      const ids = new Set([...Object.keys(workers), ...lastBeat.keys(), ...Object.keys(queued), ...Object.keys(active)]);
      return [...ids].sort().map((id): WorkerLoad => {
        const info = parseWorkerInfo(id, workers[id]);
        const beat = lastBeat.get(id);
        const heartbeatAgeMs = beat === undefined ? undefined : Math.max(0, now - beat);
        return {
          ...info,
          concurrency: Number(capacity[id] ?? info.concurrency),
          queued: Number(queued[id] ?? 0),
          active: Number(active[id] ?? 0),
          alive: heartbeatAgeMs !== undefined && heartbeatAgeMs <= workerTtlMs,
          heartbeatAgeMs,
        };
      });
    },
  };
}

function parseReservation(token: string, value: string): Reservation | undefined {
  const match = /^(?<state>[qa])\|(?<since>\d+)$/.exec(value);
  if (!match?.groups) return undefined;
  const { state, since } = match.groups as { state: string; since: string };
  return { token, state: state === 'a' ? 'active' : 'queued', reservedAt: Number(since) };
}

function parseWorkerInfo(id: string, json: string | undefined): WorkerInfo {
  const fallback: WorkerInfo = { id, hostId: '', pid: 0, concurrency: 0, startedAt: 0 };
  if (json === undefined) return fallback;
  try {
    const parsed = JSON.parse(json) as Partial<WorkerInfo>;
    return { ...fallback, ...parsed, id };
  } catch {
    return fallback;
  }
}
