/**
 * Forgetting a retired worker id's queue: its last keys go once no job is in it. BullMQ's
 * `obliterate` does not fit: it pauses the queue and then deletes whatever the queue holds, so a job
 * added after its caller looked (a request that reserved the id just before it was retired, or the
 * id started again) would be deleted with it. Here the check and the deletion are one script (see
 * lua/forget-n.lua): a job that came first keeps the queue.
 */
import { fileURLToPath } from 'node:url';
import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/connections.js';
import { scriptsIn } from '../redis/scripts.js';

const LUA_DIRECTORY = fileURLToPath(new URL('./lua/', import.meta.url));

/** What holds jobs: a queue with any of these is not forgotten. */
const JOB_LISTS = [
  'wait',
  'paused',
  'active',
  'prioritized',
  'delayed',
  'completed',
  'failed',
  'waiting-children',
  'repeat',
] as const;
/** The queue's own keys, those BullMQ's obliterate deletes and the rate limiter's. */
const QUEUE_KEYS = [
  'meta',
  'events',
  'id',
  'pc',
  'marker',
  'stalled',
  'stalled-check',
  'limiter',
  'delay',
  'metrics:completed',
  'metrics:completed:data',
  'metrics:failed',
  'metrics:failed:data',
] as const;

/** Deletes the queue's keys unless a job is in it; answers whether it did. */
export type ForgetQueue = (queue: Pick<Queue, 'toKey'>) => Promise<boolean>;

export function createForgetQueue(redis: RedisClient): ForgetQueue {
  const forgetScript = scriptsIn(redis, LUA_DIRECTORY)('forget');
  return async (queue) => {
    const keys = [...JOB_LISTS, ...QUEUE_KEYS].map((type) => queue.toKey(type));
    return (await forgetScript(keys, [JOB_LISTS.length])) === 1;
  };
}
