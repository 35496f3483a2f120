/**
 * Notices a consumer that has stopped fetching. After a Redis Cluster master fails and returns,
 * BullMQ's fetch loop in a process whose own master was never down can stay parked for good: its
 * wait for the next job never settles, so jobs sit in the queue with every slot free. Nothing in
 * BullMQ reports it, so this watches from outside: a free slot, work in the queue that is due, and
 * no job fetched, over several checks in a row, means the loop is parked, and a fresh BullMQ Worker
 * takes its place (the consumer's and the delayed router's).
 */
import type { Worker } from 'bullmq';
import type { RedisClient } from '../redis/connections.js';
import type { Logger } from '../logging/logger.js';

/**
 * How soon a consumer tries again after a Redis error (BullMQ's `runRetryDelay`). BullMQ's 15 s
 * default stacks up over an outage of a Redis Cluster master, whose commands fail rather than queue.
 */
export const RETRY_AFTER_ERROR_MS = 1_000;

/** One look at the consumer and its queue. */
export interface FetchSample {
  /** Jobs fetched so far by this consumer. */
  readonly fetches: number;
  readonly freeSlot: boolean;
  /** A job waits that could start now: waiting, prioritized, or delayed and due. */
  readonly dueWork: boolean;
}

/**
 * Checks in a row that must each see a free slot and due work, with no fetch between the first and
 * the last, before the loop is called parked. BullMQ wakes its loop at least every drain delay (5 s)
 * plus 1 s, and waits 1 s after an error: three checks 5 s apart leave a healthy loop ample time.
 */
export const PARKED_AFTER_CHECKS = 3;

/** Folds samples into a verdict: returns the next state and whether the loop is parked. */
export function nextStreak(
  streak: { readonly count: number; readonly fetches: number },
  sample: FetchSample,
): { readonly count: number; readonly fetches: number; readonly parked: boolean } {
  const stuck = sample.freeSlot && sample.dueWork;
  if (!stuck) return { count: 0, fetches: sample.fetches, parked: false };
  const count = streak.count > 0 && sample.fetches === streak.fetches ? streak.count + 1 : 1;
  const parked = count >= PARKED_AFTER_CHECKS;
  return { count: parked ? 0 : count, fetches: sample.fetches, parked };
}

/** BullMQ's delayed set scores a job by its due time (ms) times 4096, plus a counter. */
const DELAYED_SCORE_FACTOR = 0x1000;

/**
 * Whether a job in the queue could start now. The keys share the queue's hash tag, so on a cluster
 * the three reads go to one master.
 */
export async function hasDueWork(
  redis: Pick<RedisClient, 'llen' | 'zcard' | 'zrange'>,
  keys: { readonly wait: string; readonly prioritized: string; readonly delayed: string },
  now: number,
): Promise<boolean> {
  const [waiting, prioritized, firstDelayed] = await Promise.all([
    redis.llen(keys.wait),
    redis.zcard(keys.prioritized),
    redis.zrange(keys.delayed, 0, 0, 'WITHSCORES'),
  ]);
  const score = firstDelayed[1];
  const dueAt = score === undefined ? Number.POSITIVE_INFINITY : Number(score) / DELAYED_SCORE_FACTOR;
  return waiting > 0 || prioritized > 0 || dueAt <= now;
}

/** How often a worker's queue is looked at. */
const FETCH_CHECK_INTERVAL_MS = 5_000;

/** A consumer (BullMQ Worker) that is replaced by a fresh one when its fetch loop parks. */
export interface SupervisedConsumer {
  /** The consumer fetching now. */
  current(): Worker;
  /** It and the replaced ones still closing: a cancel or a close must reach them all. */
  all(): Worker[];
  /** Stops watching; closing the Workers is the caller's. */
  stop(): void;
}

/**
 * Starts a consumer with `start` and watches it. `busy` counts its jobs in hand and `fetches` the jobs
 * it has fetched so far. A replaced consumer is asked to close: it fetches no more and finishes the
 * jobs it runs (their locks are still renewed), however long its parked loop stays.
 */
export function superviseConsumer({
  start,
  redis,
  concurrency,
  busy,
  fetches,
  logger,
  name,
}: {
  readonly start: () => Worker;
  readonly redis: Pick<RedisClient, 'llen' | 'zcard' | 'zrange'>;
  readonly concurrency: number;
  readonly busy: () => number;
  readonly fetches: () => number;
  readonly logger: Logger;
  /** What the consumer is, for the log line. */
  readonly name: string;
}): SupervisedConsumer {
  let consumer = start();
  const replaced = new Set<Worker>();
  const watchdog = startFetchWatchdog({
    intervalMs: FETCH_CHECK_INTERVAL_MS,
    sample: async () => {
      const { keys } = consumer;
      const queue = { wait: String(keys.wait), prioritized: String(keys.prioritized), delayed: String(keys.delayed) };
      return {
        fetches: fetches(),
        freeSlot: busy() < concurrency,
        dueWork: await hasDueWork(redis, queue, Date.now()),
      };
    },
    onParked: () => {
      const parked = consumer;
      consumer = start();
      replaced.add(parked);
      void closeReplaced(parked, logger, name).finally(() => replaced.delete(parked));
      logger.warn(
        { event: 'consumer.replaced', consumer: name, busy: busy() },
        `the ${name} fetched nothing while jobs were due and slots free (its fetch loop parked after a Redis fault): started a fresh one`,
      );
    },
    onError: (error) => logger.debug({ err: error }, 'fetch watchdog: could not look at the queue'),
  });
  return { current: () => consumer, all: () => [consumer, ...replaced], stop: () => watchdog.stop() };
}

/**
 * Closes a replaced consumer. A close that fails is logged: left unhandled, its rejection would end
 * the process. Never rejects.
 */
export async function closeReplaced(parked: Pick<Worker, 'close'>, logger: Logger, name: string): Promise<void> {
  try {
    await parked.close();
  } catch (error) {
    logger.warn({ event: 'consumer.close-failed', consumer: name, err: error }, `a replaced ${name} failed to close`);
  }
}

export interface FetchWatchdog {
  stop(): void;
}

/** Samples every `intervalMs` and calls `onParked` each time the loop is found parked. */
export function startFetchWatchdog({
  intervalMs,
  sample,
  onParked,
  onError,
}: {
  readonly intervalMs: number;
  readonly sample: () => Promise<FetchSample>;
  readonly onParked: () => void;
  /** A sample that could not be taken (Redis away): the streak starts again. */
  readonly onError: (error: unknown) => void;
}): FetchWatchdog {
  let streak = { count: 0, fetches: 0 };
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    sample()
      .then((taken) => {
        const next = nextStreak(streak, taken);
        streak = { count: next.count, fetches: next.fetches };
        if (next.parked) onParked();
      })
      .catch((error: unknown) => {
        streak = { count: 0, fetches: 0 };
        onError(error);
      })
      .finally(() => (busy = false));
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
