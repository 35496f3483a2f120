/**
 * Jobs left active by a process that is gone: back to waiting at once, instead of after BullMQ's
 * lock duration and two stalled-check passes. Only a caller that holds the queue's lease (its new
 * owner, or the process retiring a dead id) may do this: nobody else can be running these jobs.
 */
import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/connections.js';

/** Requeues every active job of the queue; answers their ids. */
export async function requeueInterrupted(queue: Queue, redis: RedisClient): Promise<readonly string[]> {
  const requeued: string[] = [];
  for (const job of await queue.getActive()) {
    if (job.id === undefined) continue;
    const lock = await redis.get(`${queue.toKey(job.id)}:lock`);
    await job.moveToWait(lock ?? '0');
    requeued.push(job.id);
  }
  return requeued;
}
