/**
 * One BullMQ `Queue` handle per worker queue, made on first use and shared by everything in the
 * process that adds or reads jobs. Handles hold no connection of their own: they all use the
 * connection they are given, whose owner closes it.
 */
import { Queue } from 'bullmq';
import type { RedisClient } from '../redis/connections.js';
import { queueNameFor } from '../contracts/names.js';

export interface QueueRegistry {
  forWorker(workerId: string): Queue;
  close(): Promise<void>;
}

export function createQueueRegistry({
  connection,
  prefix,
}: {
  connection: RedisClient;
  prefix: string;
}): QueueRegistry {
  const queues = new Map<string, Queue>();
  return {
    forWorker(workerId) {
      let queue = queues.get(workerId);
      if (!queue) {
        queue = new Queue(queueNameFor(workerId), { connection, prefix });
        queues.set(workerId, queue);
      }
      return queue;
    },
    async close() {
      const closing = [...queues.values()].map((queue) => queue.close());
      queues.clear();
      await Promise.allSettled(closing);
    },
  };
}
