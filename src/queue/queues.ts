/**
 * One BullMQ `Queue` handle per worker queue, made on first use and shared by everything in the
 * process that adds or reads jobs. Handles hold no connection of their own: they all use the
 * connection they are given, whose owner closes it.
 *
 * The handles of ids that are gone for good are dropped, so that the registry holds the ids in use,
 * not every id the process has met. Closing a handle only detaches it from the shared connection: a
 * request still using it finishes its commands, and a later `forWorker` makes a new one.
 */
import { Queue } from './bullmq.js';
import type { RedisClient } from '../redis/connections.js';
import { queueNameFor } from '../contracts/names.js';

export interface QueueRegistry {
  forWorker(workerId: string): Queue;
  /** The ids this registry holds a handle for, sorted. */
  held(): readonly string[];
  /** Closes and forgets the handles of these ids, if it holds them. */
  drop(workerIds: Iterable<string>): Promise<void>;
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
  const closeAll = async (closing: readonly Queue[]) => {
    await Promise.allSettled(closing.map((queue) => queue.close()));
  };
  /**
   * BullMQ sets a handle up once, asking Redis for its version, and a handle whose set-up failed
   * fails every command after it with that error, for good. A handle made while Redis was away (its
   * version check timed out: a new worker id placed on, or a job read, during a failover) would
   * leave its queue unreachable from this process until it restarts. Such a handle is forgotten
   * (closing it leaves the shared connection open): the command that made it fails, the next one
   * gets a fresh handle.
   */
  const forgetIfSetUpFails = (workerId: string, queue: Queue) => {
    queue.waitUntilReady().catch(() => {
      if (queues.get(workerId) === queue) queues.delete(workerId);
      void queue.close().catch(ignore);
    });
  };
  return {
    forWorker(workerId) {
      let queue = queues.get(workerId);
      if (!queue) {
        // A handle writes nothing by being made (BullMQ would write the queue's meta hash): one made
        // for a retired id whose queue is gone (another process's purge pass, a read of a moved job's
        // history) must not bring a key of it back. BullMQ's scripts still write the hash's defaults
        // when they first add an event to the queue.
        queue = new Queue(queueNameFor(workerId), { connection, prefix, skipMetasUpdate: true });
        // A handle's errors are its connection's, which the connection's owner logs (redis/connections.ts),
        // and a handle whose set-up failed fails its next command, whose caller reports it. Unheard,
        // BullMQ prints each of them raw, a multi-line dump per handle on every reconnect attempt.
        queue.on('error', ignore);
        queues.set(workerId, queue);
        forgetIfSetUpFails(workerId, queue);
      }
      return queue;
    },
    held() {
      return [...queues.keys()].sort();
    },
    async drop(workerIds) {
      const closing: Queue[] = [];
      for (const workerId of workerIds) {
        const queue = queues.get(workerId);
        if (!queue) continue;
        queues.delete(workerId);
        closing.push(queue);
      }
      await closeAll(closing);
    },
    async close() {
      const closing = [...queues.values()];
      queues.clear();
      await closeAll(closing);
    },
  };
}

/** See `forWorker`: the error is reported where it happened. */
function ignore(): void {}
