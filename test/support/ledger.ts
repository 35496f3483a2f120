/** Ledger helpers for tests that drive the scripts without worker processes. */
import { createLeases } from '../../src/ledger/lease.js';
import { createLedger, type ReserveOutcome, type WorkerInfo } from '../../src/ledger/ledger.js';
import type { RedisClient } from '../../src/redis/connections.js';

/**
 * Makes a worker id live as a worker process would: takes its lease, renews it (which marks it
 * routable with its capacity) and registers it. Each id gets an instance of its own.
 */
export async function joinAsWorker(
  redis: RedisClient,
  prefix: string,
  info: WorkerInfo,
  ttlMs = 60_000,
): Promise<void> {
  const instance = `test-${info.id}`;
  const leases = createLeases({
    redis,
    prefix,
    instance,
    owner: `${instance}/${info.pid}`,
    ttlMs,
    retireMs: ttlMs * 2,
  });
  const taken = await leases.acquire(info.id);
  if (!taken.taken) throw new Error(`${info.id} is held by ${taken.holder}`);
  await leases.renew(info.id, info.concurrency, true);
  await createLedger({ redis, prefix, workerTtlMs: ttlMs }).register(info);
}

/**
 * Makes each of `ids` live as `joinAsWorker` does, as worker processes of their host would (the host
 * being the id without its index: `bulk` for `bulk-0`), each with `concurrency` slots.
 */
export async function joinWorkers(
  redis: RedisClient,
  prefix: string,
  ids: readonly string[],
  concurrency = 8,
): Promise<void> {
  for (const id of ids) {
    const hostId = id.slice(0, id.lastIndexOf('-'));
    await joinAsWorker(redis, prefix, { id, hostId, pid: 1, concurrency, startedAt: Date.now() });
  }
}

/** A reserve outcome without its time, for comparing where a job went. */
export function placement(outcome: ReserveOutcome): {
  readonly kind: ReserveOutcome['kind'];
  readonly workerId?: string;
} {
  if (outcome.kind !== 'reserved') return outcome;
  return { kind: outcome.kind, workerId: outcome.workerId };
}
