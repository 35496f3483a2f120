/**
 * The consumer of one worker id's queue: a BullMQ Worker running the processor (processor.ts), kept
 * running by the supervisor, its job events logged, and a close that says whether its jobs drained.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { UnrecoverableError, Worker, type Job } from '../queue/bullmq.js';
import type { RedisClient } from '../redis/connections.js';
import { reportOutage } from '../logging/outage.js';
import { CANCELLED_REASON, EXPIRED_REASON } from '../contracts/stored-job.js';
import { queueNameFor } from '../contracts/names.js';
import type { Retention } from '../queue/job-options.js';
import { RETRY_AFTER_ERROR_MS, superviseConsumer } from '../queue/supervise.js';
import { createProcessor, type ProcessorOptions } from './processor.js';

export interface ConsumerOptions extends ProcessorOptions {
  readonly connection: RedisClient;
  readonly prefix: string;
  readonly concurrency: number;
  readonly lockDurationMs: number;
  /** How long finished jobs are kept: BullMQ applies it to every job that does not carry its own. */
  readonly retention: Retention;
}

export interface Consumer {
  isRunning(): boolean;
  /** The ids of the jobs running here, whose tombstones are asked after a subscriber reconnects. */
  runningJobs(): Iterable<string>;
  /** Stops a job running here: its thread is stopped and it fails as cancelled, without a retry. */
  cancel(jobId: string): boolean;
  waitUntilReady(): Promise<void>;
  /**
   * Stops taking jobs and waits for running ones. After `timeoutMs` it gives up waiting and says so:
   * the caller must then cut the Redis connections before stopping the threads, so that the cut
   * jobs are not recorded as failed.
   */
  close(timeoutMs: number): Promise<{ readonly drained: boolean }>;
}

export function createConsumer(options: ConsumerOptions): Consumer {
  const { logger, running } = options;

  // While Redis is away BullMQ reports every reconnect attempt, of its own connection and of ours.
  const outage = reportOutage({
    logger,
    level: 'error',
    about: { consumer: 'queue consumer' },
    error: { event: 'consumer.error', msg: 'queue consumer error' },
    restored: { event: 'consumer.restored', msg: 'queue consumer connected again' },
  });
  const processor = createProcessor(options);
  const startConsumer = (): Worker => {
    const consumer = new Worker(queueNameFor(options.workerId), processor.process, {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      lockDuration: options.lockDurationMs,
      // A job whose lock lapsed (its process hung, or Redis was away longer than the lock) is found
      // within one lock duration, instead of BullMQ's fixed 30 s.
      stalledInterval: options.lockDurationMs,
      // After a Redis error BullMQ waits this long before fetching or finishing a job again; its 15 s
      // default stacks up over an outage of a Redis Cluster master, whose commands fail rather than queue.
      runRetryDelay: RETRY_AFTER_ERROR_MS,
      name: options.workerId,
      removeOnComplete: options.retention.removeOnComplete,
      removeOnFail: options.retention.removeOnFail,
    });
    consumer.on('completed', (job) => {
      if (logger.isLevelEnabled('debug')) {
        logger.debug(
          { event: 'job.completed', jobId: job.id, jobName: job.name, durationMs: elapsed(job) },
          'job completed',
        );
      }
    });
    consumer.on('failed', (job, error) => {
      if (error.message === CANCELLED_REASON && error instanceof UnrecoverableError) {
        logger.info({ event: 'job.cancelled', jobId: job?.id, jobName: job?.name }, 'job cancelled');
        return;
      }
      if (error.message === EXPIRED_REASON && error instanceof UnrecoverableError) {
        logger.info(
          { event: 'job.expired', jobId: job?.id, jobName: job?.name, by: 'consumer' },
          'job expired before it started',
        );
        return;
      }
      const final = job !== undefined && job.finishedOn !== undefined;
      logger[final ? 'error' : 'warn'](
        {
          event: final ? 'job.failed' : 'job.attempt-failed',
          jobId: job?.id,
          jobName: job?.name,
          attemptsMade: job?.attemptsMade,
          reason: error.message,
        },
        final ? 'job failed' : 'job attempt failed; it will be retried',
      );
    });
    consumer.on('error', (error) => outage.error(error));
    consumer.getBackend().on('ready', () => outage.restored());
    return consumer;
  };

  const supervised = superviseConsumer({
    start: startConsumer,
    redis: options.connection,
    concurrency: options.concurrency,
    busy: () => running.size,
    fetches: processor.fetches,
    logger,
    name: 'queue consumer',
  });

  let closing: Promise<{ drained: boolean }> | undefined;
  return {
    isRunning: () => supervised.current().isRunning() && closing === undefined,
    runningJobs: () => processor.runningJobs,
    cancel: (jobId) => supervised.all().some((each) => each.cancelJob(jobId, CANCELLED_REASON)),
    waitUntilReady: async () => {
      await supervised.current().waitUntilReady();
    },
    close(timeoutMs) {
      closing ??= (async () => {
        supervised.stop();
        const [current, ...replaced] = supervised.all();
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), timeoutMs);
        });
        // A replaced consumer's close may wait on its parked loop for ever: its jobs are done when no
        // job of this process runs any more.
        const drained = Promise.all([
          current?.close(),
          replaced.length === 0 ? undefined : until(() => running.size === 0),
        ]).then(() => 'drained' as const);
        // BullMQ cannot turn a graceful close into a forced one, so on time-out the close is left to
        // run on: the caller cuts the connections, and the jobs stay active in Redis, to be recovered
        // by this worker id's next start.
        const outcome = await Promise.race([drained, timedOut]);
        clearTimeout(timer);
        if (outcome === 'timeout') {
          logger.warn(
            { event: 'shutdown.timeout', running: running.size },
            'shutdown timeout: leaving running jobs to be recovered at next start',
          );
        }
        return { drained: outcome === 'drained' };
      })();
      return closing;
    },
  };
}

/** Resolves once `done` holds, looking every 50 ms. */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await sleep(50);
}

function elapsed(job: Job): number | undefined {
  return job.finishedOn !== undefined && job.processedOn !== undefined ? job.finishedOn - job.processedOn : undefined;
}
