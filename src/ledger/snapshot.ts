/**
 * One consistent read of every worker in the ledger, for `/workers`, the load gauges and the
 * dashboard: what it is (pid, host, capacity), its counters, its liveness by the ledger's clock and
 * its lease.
 */
import type { RedisClient } from '../redis/connections.js';
import type { LedgerKeys } from '../contracts/keys.js';
import { redisMillis, type Clock } from './scripts.js';
import { parseLease, type LeaseView } from './lease.js';

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
  readonly lease: LeaseView | undefined;
}

export async function readSnapshot(
  redis: RedisClient,
  keys: LedgerKeys,
  workerTtlMs: number,
  clock: Clock | undefined,
): Promise<readonly WorkerLoad[]> {
  const results = await redis
    .multi()
    .time()
    .hgetall(keys.workers)
    .zrange(keys.heartbeats, 0, -1, 'WITHSCORES')
    .hgetall(keys.capacity)
    .hgetall(keys.queued)
    .hgetall(keys.active)
    .hgetall(keys.leases)
    .exec();
  if (!results) throw new Error('snapshot transaction was aborted');
  for (const [error] of results) if (error) throw error;
  const [time, workers, beats, capacity, queued, active, leases] = results.map(([, value]) => value) as [
    [string, string],
    Record<string, string>,
    string[],
    Record<string, string>,
    Record<string, string>,
    Record<string, string>,
    Record<string, string>,
  ];
  const now = clock?.() ?? redisMillis(time);
  const lastBeat = new Map<string, number>();
  for (let i = 0; i + 1 < beats.length; i += 2) lastBeat.set(beats[i] ?? '', Number(beats[i + 1]));
  const ids = new Set([
    ...Object.keys(workers),
    ...lastBeat.keys(),
    ...Object.keys(queued),
    ...Object.keys(active),
    ...Object.keys(leases),
  ]);
  return [...ids].sort().map((id): WorkerLoad => {
    const info = parseWorkerInfo(id, workers[id]);
    const beat = lastBeat.get(id);
    const heartbeatAgeMs = beat === undefined ? undefined : Math.max(0, now - beat);
    const lease = leases[id];
    return {
      ...info,
      concurrency: Number(capacity[id] ?? info.concurrency),
      queued: Number(queued[id] ?? 0),
      active: Number(active[id] ?? 0),
      alive: heartbeatAgeMs !== undefined && heartbeatAgeMs <= workerTtlMs,
      heartbeatAgeMs,
      lease: lease === undefined ? undefined : parseLease(lease, now),
    };
  });
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
