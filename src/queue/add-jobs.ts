/**
 * Adding several jobs, with the index entries they lack and a record (an idempotency answer), all or
 * none: one MULTI on one Redis. BullMQ queues its add script on a transaction synchronously, as its
 * own bulk add relies on.
 *
 * A Redis Cluster refuses a transaction over several slots, and each worker's queue has a slot of
 * its own. There the record's plan is written first, then each queue's jobs in a transaction that
 * also leaves a marker in that queue's slot, then the answer: a request that dies part-way leaves a
 * plan that its retry resumes, adding only the queues whose marker is missing (see
 * idempotency/store.ts). Without a record there is nothing to resume from: a failed add is undone by
 * the dispatcher, best effort.
 */
import type { Job, Queue } from 'bullmq';
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from '../redis/connections.js';
import type { AtomicRecord } from '../contracts/dispatch.js';

export interface JobToAdd {
  readonly queue: Queue;
  readonly job: Job;
  /** Whether its index entry exists already (its reservation wrote it). */
  readonly indexed: boolean;
  /** When it expires (ms), for its entry in the expiries; undefined for a job without an expiry. */
  readonly expiresAt?: number | undefined;
  /** Commands that go in the transaction of the job's add, just after it (a held job's hold). */
  readonly alongside?: ((pipeline: object) => void) | undefined;
}

/** Steps of a slot-by-slot add, for the fault tests' kill hook: `planned`, then `added <n>` per queue. */
export type AddStepHook = (step: string) => Promise<void>;

/** The marker a queue's add leaves for an idempotency record's plan; in the queue's slot. */
export function addMarkerKey(queue: Queue, marker: string): string {
  return `${queue.qualifiedName}:added:${marker}`;
}

/** The sorted sets written with the jobs: the job index, and the expiries (both in the ledger's slot). */
export interface AddedEntryKeys {
  readonly index: string;
  readonly expiries: string;
}

/**
 * Adds the jobs with the index entries they lack, and the expiry entries of those with an expiry, and
 * writes the record if any: in one MULTI on one Redis; slot by slot on a cluster, or when `resume`
 * finishes a plan. BullMQ queues its add script on the transaction synchronously, as its own bulk add
 * relies on. Every queue shares the connection the dispatcher was given, so one transaction covers
 * them all.
 */
export async function addInOneTransaction(
  jobs: readonly JobToAdd[],
  keys: AddedEntryKeys,
  record: AtomicRecord | undefined,
  { resume = false, afterStep }: { resume?: boolean; afterStep?: AddStepHook | undefined } = {},
): Promise<void> {
  const first = jobs[0];
  if (first === undefined) return;
  const client = await first.queue.backend.client;
  if (client.isCluster || resume) {
    await addSlotBySlot(jobs, keys, record, resume, afterStep);
    return;
  }
  const multi = client.multi();
  // BullMQ's transaction is ioredis's own (with a few commands added); its type only lists those.
  const commands = multi as unknown as ChainableCommander;
  // Their outcomes are read from the transaction's results below.
  for (const { job, alongside } of jobs) {
    job.addJob(multi).catch(() => {});
    alongside?.(multi);
  }
  const entries = indexEntries(jobs);
  if (entries.length > 0) commands.zadd(keys.index, ...entries);
  const expiries = expiryEntries(jobs);
  if (expiries.length > 0) commands.zadd(keys.expiries, ...expiries);
  if (record !== undefined) commands.set(record.key, record.value, 'KEEPTTL');
  await execAll(multi);
}

/** The same steps, one transaction per queue (per slot), with the plan before and the answer after. */
async function addSlotBySlot(
  jobs: readonly JobToAdd[],
  keys: AddedEntryKeys,
  record: AtomicRecord | undefined,
  resume: boolean,
  afterStep: AddStepHook = async () => {},
): Promise<void> {
  const client = (await jobs[0]?.queue.backend.client) as unknown as RedisClient;
  if (record !== undefined && !resume) {
    await client.set(record.key, record.plan, 'KEEPTTL');
    await afterStep('planned');
  }
  // Ahead of the jobs, so that a request that dies part-way leaves no job without its entry; an entry
  // whose job was never added is dropped by the expirer.
  const expiries = expiryEntries(jobs);
  if (expiries.length > 0) await client.zadd(keys.expiries, ...expiries);
  const byQueue = new Map<Queue, JobToAdd[]>();
  for (const entry of jobs) byQueue.set(entry.queue, [...(byQueue.get(entry.queue) ?? []), entry]);
  let added = 0;
  for (const [queue, queued] of byQueue) {
    const marker = record === undefined ? undefined : addMarkerKey(queue, record.marker);
    // A resumed plan skips the queues its first request reached: their jobs exist, or ran.
    if (resume && marker !== undefined && (await client.exists(marker)) === 1) continue;
    const multi = (await queue.backend.client).multi();
    for (const { job, alongside } of queued) {
      job.addJob(multi).catch(() => {});
      alongside?.(multi);
    }
    if (marker !== undefined && record !== undefined) {
      (multi as unknown as ChainableCommander).set(marker, '1', 'EX', record.ttlSeconds);
    }
    await execAll(multi);
    added += 1;
    await afterStep(`added ${added}`);
  }
  const entries = indexEntries(jobs);
  if (entries.length > 0) await client.zadd(keys.index, ...entries);
  if (record !== undefined) await client.set(record.key, record.value, 'KEEPTTL');
}

function indexEntries(jobs: readonly JobToAdd[]): (string | number)[] {
  return jobs.flatMap(({ job, indexed }) => (indexed ? [] : [job.timestamp, job.id ?? '']));
}

function expiryEntries(jobs: readonly JobToAdd[]): (string | number)[] {
  return jobs.flatMap(({ job, expiresAt }) => (expiresAt === undefined ? [] : [expiresAt, job.id ?? '']));
}

/** Runs a transaction and throws its first failure. */
async function execAll(multi: { exec(): Promise<[Error | null, unknown][] | null> }): Promise<void> {
  const results = await multi.exec();
  if (results === null) throw new Error('the transaction was discarded');
  const error = results.find(([failure]) => failure !== null)?.[0];
  if (error) throw error;
}
