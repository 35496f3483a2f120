/**
 * How a cancel reaches a job that is running, or about to run, somewhere in the cluster: a message
 * on one pub/sub channel, heard by every process (the one running the job stops it, and each
 * remembers it), and a tombstone. Before a job starts, the consumer asks whether it was cancelled:
 * a job fetched just as it was cancelled, or on its way between queues, was heard of; a process
 * that was not listening when the cancel came (restarting, or cut off from Redis) asks the
 * tombstone instead. Asking only then keeps a Redis round trip off every job's start.
 *
 * A cancel published while this process's subscriber was reconnecting is lost for a job already
 * running here: once subscribed again, the process asks the tombstones of the jobs it runs, one
 * EXISTS each, and stops those it finds.
 */
import type { RedisClient } from '../redis/connections.js';
import type { Logger } from '../logging/logger.js';
import { parseJobId } from '../contracts/names.js';

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

/** A cancel heard is remembered as long as its tombstone lives. */
const HEARD_TTL_MS = TOMBSTONE_TTL_MS;
/** Past this many cancels remembered, the oldest are forgotten (and the tombstones asked instead). */
const MAX_HEARD = 100_000;
/**
 * How far apart two hosts' clocks may be, and how long a (re)subscription may take to be in force
 * after the connection is ready: a job enqueued this long after listening began is one whose cancel
 * would have been heard.
 */
const LISTEN_MARGIN_MS = 5_000;

export interface CancelWatch {
  /** Subscribes; the returned promise settles once cancels are heard. */
  start(): Promise<void>;
  /** Called with each job id heard of (the consumer stops it if it runs here). */
  onHeard(listener: (jobId: string) => void): void;
  /**
   * Whether a job about to start was cancelled. A job enqueued after this process began listening
   * (without a break since) is answered from the cancels heard, at no cost; any other job asks Redis
   * for its tombstone.
   */
  wasCancelled(jobId: string, token: string, enqueuedAt: number): Promise<boolean>;
  /**
   * The ids of the jobs running here: after each resubscription their tombstones are asked, and
   * those cancelled meanwhile are handed to the `onHeard` listeners as if heard.
   */
  watchRunning(jobIds: () => Iterable<string>): void;
}

/**
 * Watches for cancels on `subscriber` (a connection given to this alone: a subscribed connection
 * can send nothing else), asking `redis` for tombstones. ioredis subscribes again by itself after a
 * reconnect; what was published meanwhile is missed, so jobs enqueued before the latest
 * (re)subscription are checked against their tombstones instead.
 */
export function createCancelWatch({
  subscriber,
  redis,
  keys,
  logger,
}: {
  readonly subscriber: RedisClient;
  /** Asked for tombstones; a connection that waits out outages, so that a check is not lost to one. */
  readonly redis: Pick<RedisClient, 'exists'>;
  readonly keys: CancelKeys;
  readonly logger: Logger;
}): CancelWatch {
  const heard = new Map<string, number>();
  const listeners: ((jobId: string) => void)[] = [];
  /** Since when (ms, this host's clock) cancels are heard without a break; +Infinity while not. */
  let listeningSince = Number.POSITIVE_INFINITY;
  let started = false;

  const remember = (jobId: string) => {
    const now = Date.now();
    heard.delete(jobId);
    heard.set(jobId, now);
    // Oldest first: the map keeps insertion order.
    for (const [id, at] of heard) {
      if (heard.size <= MAX_HEARD && now - at < HEARD_TTL_MS) break;
      heard.delete(id);
      // A forgotten cancel could be for a job still to come: ask the tombstones for older jobs.
      listeningSince = Math.max(listeningSince, at);
    }
  };

  const hear = (jobId: string) => {
    remember(jobId);
    for (const listener of listeners) {
      try {
        listener(jobId);
      } catch (error) {
        logger.warn({ event: 'cancel.failed', err: error, jobId }, 'could not cancel a job');
      }
    }
  };
  let running: () => Iterable<string> = () => [];
  /**
   * After a reconnect: subscribed again (ioredis does it too; this one's answer says when it holds),
   * every later cancel is heard, and every earlier one wrote its tombstone before it was published.
   */
  const recheckRunning = async () => {
    await subscriber.subscribe(keys.channel);
    const jobIds = [...running()];
    const found = await Promise.all(
      jobIds.map(async (jobId) => (await redis.exists(keys.tombstone(parseJobId(jobId)?.token ?? jobId))) === 1),
    );
    for (const [i, jobId] of jobIds.entries()) if (found[i] === true && !heard.has(jobId)) hear(jobId);
  };

  subscriber.on('message', (channel: string, jobId: string) => {
    if (channel === keys.channel) hear(jobId);
  });
  subscriber.on('close', () => (listeningSince = Number.POSITIVE_INFINITY));
  // After a reconnect ioredis subscribes again as the connection becomes ready.
  subscriber.on('ready', () => {
    if (!started || listeningSince !== Number.POSITIVE_INFINITY) return;
    listeningSince = Date.now();
    // Once ioredis has sent what it sends on `ready` (its own resubscription among them).
    setImmediate(() => {
      recheckRunning().catch((error: unknown) =>
        logger.warn(
          { event: 'cancel.recheck-failed', err: error },
          'could not check the running jobs for cancels missed while reconnecting',
        ),
      );
    });
  });

  return {
    async start() {
      await subscriber.subscribe(keys.channel);
      started = true;
      listeningSince = Date.now();
    },
    onHeard(listener) {
      listeners.push(listener);
    },
    async wasCancelled(jobId, token, enqueuedAt) {
      if (heard.has(jobId)) return true;
      if (listeningSince + LISTEN_MARGIN_MS < enqueuedAt) return false;
      return (await redis.exists(keys.tombstone(token))) === 1;
    },
    watchRunning(jobIds) {
      running = jobIds;
    },
  };
}
