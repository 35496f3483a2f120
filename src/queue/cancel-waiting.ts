/**
 * The queue's side of cancelling a job that has not started: one script takes it out of its worker
 * queue's waiting lists and files it as failed with the cancelled reason (see lua/cancel-7.lua), so
 * that BullMQ's consumer can never take it afterwards.
 */
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '../redis/connections.js';
import { scriptsIn } from '../redis/scripts.js';
import { CANCELLED_REASON } from '../contracts/stored-job.js';
import type { QueueRegistry } from './queues.js';

const LUA_DIRECTORY = fileURLToPath(new URL('./lua/', import.meta.url));

export type WaitingList = 'wait' | 'prioritized' | 'delayed';

export type CancelWaiting = (workerId: string, jobId: string) => Promise<WaitingList | undefined>;

export function createCancelWaiting({
  redis,
  queues,
}: {
  readonly redis: RedisClient;
  readonly queues: Pick<QueueRegistry, 'forWorker'>;
}): CancelWaiting {
  const cancelScript = scriptsIn(redis, LUA_DIRECTORY)('cancel');
  return async (workerId, jobId) => {
    const queue = queues.forWorker(workerId);
    const { wait, paused, prioritized, delayed, failed } = queue.keys;
    const jobKey = queue.toKey(jobId);
    const reply = await cancelScript(
      [wait, paused, prioritized, delayed, failed, jobKey, `${jobKey}:lock`].map(String),
      [jobId, CANCELLED_REASON],
    );
    return reply === 'wait' || reply === 'prioritized' || reply === 'delayed' ? reply : undefined;
  };
}
