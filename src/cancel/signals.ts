/**
 * How a cancel reaches a job that is running, or about to run, somewhere in the cluster: a message
 * on one pub/sub channel, heard by every worker process (only the one running the job acts on it),
 * and a tombstone that a consumer checks before it starts a job. The message stops a run at once;
 * the tombstone covers what a message cannot: a job fetched just as it was cancelled, a process that
 * was not listening (restarting, or cut off from Redis), a job between two queues.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../logging/logger.js';

/** Longer than any attempt may run, so a job cannot outlive its tombstone while it runs. */
export const TOMBSTONE_TTL_MS = 24 * 3_600_000;

export interface CancelKeys {
  /** pub/sub channel: messages are job ids. */
  readonly channel: string;
  /** string per cancelled job, by token, with a TTL. */
  tombstone(token: string): string;
}

export function cancelKeys(prefix: string): CancelKeys {
  return Object.freeze({
    channel: `${prefix}:cancel`,
    tombstone: (token: string) => `${prefix}:cancelled:${token}`,
  });
}

export interface CancelListener {
  close(): Promise<void>;
}

/**
 * Subscribes `subscriber` (a connection given to this alone: a subscribed connection can send
 * nothing else) and hands every job id heard to `onCancel`. ioredis subscribes again by itself
 * after a reconnect; a message sent meanwhile is lost, and the tombstone stops that job instead.
 */
export async function listenForCancels({
  subscriber,
  keys,
  onCancel,
  logger,
}: {
  readonly subscriber: Redis;
  readonly keys: CancelKeys;
  readonly onCancel: (jobId: string) => void;
  readonly logger: Logger;
}): Promise<CancelListener> {
  const onMessage = (channel: string, jobId: string) => {
    if (channel !== keys.channel) return;
    try {
      onCancel(jobId);
    } catch (error) {
      logger.warn({ err: error, jobId }, 'could not cancel a job');
    }
  };
  subscriber.on('message', onMessage);
  await subscriber.subscribe(keys.channel);
  return {
    async close() {
      subscriber.off('message', onMessage);
      await subscriber.unsubscribe(keys.channel).catch(() => {});
    },
  };
}
