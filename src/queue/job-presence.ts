/**
 * Whether many jobs of one queue are still to run, at a few Redis commands whatever their number:
 * the reconcile pass checks reservations against their jobs by the hundred, and a read per job made
 * its cost grow with the backlog. A batch is one EXISTS over every job's key (a count) and one
 * ZMSCORE on each of the queue's finished sets, all in the queue's slot; only when the count says
 * some job is gone are the keys asked one by one. The index sweep asks only whether jobs exist
 * (`jobsExist`), which is the first half of that.
 */
import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/connections.js';

/** `present`: the job exists and has not finished (waiting, delayed, running, or between queues). */
export type JobPresence = 'present' | 'finished' | 'missing';

export async function jobPresence(
  redis: RedisClient,
  queue: Pick<Queue, 'toKey'>,
  jobIds: readonly string[],
): Promise<JobPresence[]> {
  if (jobIds.length === 0) return [];
  const jobKeys = jobIds.map((id) => queue.toKey(id));
  const replies = await redis
    .pipeline()
    .exists(...jobKeys)
    .zmscore(queue.toKey('completed'), ...jobIds)
    .zmscore(queue.toKey('failed'), ...jobIds)
    .exec();
  const [existing, completed, failed] = valuesOf(replies, 3) as [number, (string | null)[], (string | null)[]];
  const exists = existing === jobIds.length ? jobIds.map(() => true) : await eachExists(redis, jobKeys);
  return jobIds.map((_, i) => {
    if (!exists[i]) return 'missing';
    return completed[i] != null || failed[i] != null ? 'finished' : 'present';
  });
}

/** Whether each job still has its hash in the queue, whatever its state: one EXISTS when all do. */
export async function jobsExist(
  redis: RedisClient,
  queue: Pick<Queue, 'toKey'>,
  jobIds: readonly string[],
): Promise<boolean[]> {
  if (jobIds.length === 0) return [];
  const jobKeys = jobIds.map((id) => queue.toKey(id));
  if ((await redis.exists(...jobKeys)) === jobIds.length) return jobIds.map(() => true);
  return eachExists(redis, jobKeys);
}

async function eachExists(redis: RedisClient, keys: readonly string[]): Promise<boolean[]> {
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.exists(key);
  return (valuesOf(await pipeline.exec(), keys.length) as number[]).map((count) => count === 1);
}

function valuesOf(replies: [Error | null, unknown][] | null, expected: number): unknown[] {
  if (!replies || replies.length !== expected) throw new Error('a pipeline answered the wrong number of replies');
  return replies.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
