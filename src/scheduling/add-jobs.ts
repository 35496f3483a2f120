/**
 * Adding several jobs, with the index entries they lack and a record (an idempotency answer), all or
 * none: one MULTI on one Redis. BullMQ queues its add script on a transaction synchronously, as its
 * own bulk add relies on.
 */
import type { Job, Queue } from 'bullmq';
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from '../redis/connections.js';
import type { AtomicRecord } from './dispatcher.js';

export interface JobToAdd {
  readonly queue: Queue;
  readonly job: Job;
  /** Whether its index entry exists already (its reservation wrote it). */
  readonly indexed: boolean;
}

/**
 * Adds the jobs with the index entries they lack, and writes the record if any, in one MULTI: all
 * happen, or none. BullMQ queues its add script on the transaction synchronously, as its own bulk add
 * relies on. Every queue shares the connection the dispatcher was given, so one transaction covers
 * them all. A Redis Cluster refuses a transaction over several slots: there, each queue's jobs go in
 * a transaction of their own, then the index entries, then the record (issue 12: not yet atomic).
 */
export async function addInOneTransaction(
  jobs: readonly JobToAdd[],
  indexKey: string,
  record: AtomicRecord | undefined,
): Promise<void> {
  const first = jobs[0];
  if (first === undefined) return;
  const client = await first.queue.backend.client;
  if (client.isCluster) {
    await addSlotBySlot(jobs, indexKey, record);
    return;
  }
  const multi = client.multi();
  // BullMQ's transaction is ioredis's own (with a few commands added); its type only lists those.
  const commands = multi as unknown as ChainableCommander;
  // Their outcomes are read from the transaction's results below.
  for (const { job } of jobs) job.addJob(multi).catch(() => {});
  const entries = jobs.flatMap(({ job, indexed }) => (indexed ? [] : [job.timestamp, job.id ?? '']));
  if (entries.length > 0) commands.zadd(indexKey, ...entries);
  if (record !== undefined) commands.set(record.key, record.value, 'KEEPTTL');
  const results = await multi.exec();
  if (results === null) throw new Error('the transaction was discarded');
  const error = results.find(([failure]) => failure !== null)?.[0];
  if (error) throw error;
}

/** The same steps on a Redis Cluster: one transaction per queue (per slot), then the rest. */
async function addSlotBySlot(
  jobs: readonly JobToAdd[],
  indexKey: string,
  record: AtomicRecord | undefined,
): Promise<void> {
  const byQueue = new Map<Queue, Job[]>();
  for (const { queue, job } of jobs) byQueue.set(queue, [...(byQueue.get(queue) ?? []), job]);
  for (const [queue, queued] of byQueue) {
    const multi = (await queue.backend.client).multi();
    for (const job of queued) job.addJob(multi).catch(() => {});
    const results = await multi.exec();
    if (results === null) throw new Error('the transaction was discarded');
    const error = results.find(([failure]) => failure !== null)?.[0];
    if (error) throw error;
  }
  const client = (await jobs[0]?.queue.backend.client) as unknown as RedisClient | undefined;
  const entries = jobs.flatMap(({ job, indexed }) => (indexed ? [] : [job.timestamp, job.id ?? '']));
  if (client && entries.length > 0) await client.zadd(indexKey, ...entries);
  if (client && record !== undefined) await client.set(record.key, record.value, 'KEEPTTL');
}
