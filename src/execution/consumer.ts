/**
 * The consumer of one worker id's queue: a BullMQ Worker whose processor runs each job body in the
 * thread pool and records in the load ledger when the job starts and ends. Ledger updates never fail
 * a job: if Redis refuses one, the reconciler corrects the ledger from BullMQ's own state.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { UnrecoverableError, Worker, type Job } from '../queue/bullmq.js';
import type { RedisClient } from '../redis/connections.js';
import { JobTimeoutError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { reportOutage } from '../logging/outage.js';
import type { HandlerRegistry } from './handlers.js';
import type { JobPool } from './pool.js';
import type { ProcessMetrics } from '../metrics/process-metrics.js';
import { CANCELLED_REASON, EXPIRED_REASON, expiresOption, pastExpiry, timeoutOption } from '../contracts/stored-job.js';
import { parseJobId, queueNameFor } from '../contracts/names.js';
import type { Retention } from '../queue/job-options.js';
import { createProgressWriter } from './progress.js';
import { RETRY_AFTER_ERROR_MS, superviseConsumer } from '../queue/supervise.js';
import { attemptSignal } from './attempt-signal.js';
import { durationFor, timeoutFor } from './job-limits.js';
import { isRecord } from '../platform/is-record.js';
import type { Tracing } from '../tracing/tracing.js';
import { runInSpan, tracedAttempts } from './attempt-span.js';

/**
 * What the consumer tells the load ledger about its jobs, and nothing more: a job started, or an
 * attempt ended (for good, or to be retried).
 */
export interface JobLedger {
  started(token: string): Promise<unknown>;
  /**
   * A job that ended for good resolves once the add of a held job given its slot is written to the
   * consumer's connection, so that BullMQ's completion, sent after it, fetches that job.
   */
  ended(token: string, outcome: 'finished' | 'retrying'): Promise<unknown>;
  /** Whether held work waits: an end then hands this slot on, and the consumer waits for `ended`. */
  handsOn(): boolean;
}

export interface ConsumerOptions {
  readonly workerId: string;
  readonly connection: RedisClient;
  readonly prefix: string;
  readonly concurrency: number;
  readonly lockDurationMs: number;
  readonly defaultDurationMs: number;
  readonly maxDurationMs: number;
  /** The longest an attempt may run; a job's `options.timeoutMs` may ask for less. */
  readonly jobTimeoutMs: number;
  readonly progressIntervalMs: number;
  /** How long finished jobs are kept: BullMQ applies it to every job that does not carry its own. */
  readonly retention: Retention;
  readonly pool: Pick<JobPool, 'run'>;
  readonly handlers: Pick<HandlerRegistry, 'resolve'>;
  readonly ledger: JobLedger;
  readonly logger: Logger;
  readonly metrics: Pick<ProcessMetrics, 'jobStarted' | 'jobFinished' | 'jobCancelled' | 'jobExpired'>;
  /** Filled with the tokens of the jobs running in this process; shared with the reconciler. */
  readonly running: Set<string>;
  /** Called when a job body ends and its slot frees (work stealing listens). */
  readonly onSlotFree?: () => void;
  /** Whether a job was cancelled: asked before a job starts (see cancel/signals.ts). */
  readonly wasCancelled: (jobId: string, token: string, enqueuedAt: number) => Promise<boolean>;
  /**
   * Drops a job's entry from the expiries (see expiry/expirer.ts) as it starts, or expires, here; not
   * awaited: an entry left behind is dropped by the expirer, which finds the job started.
   */
  readonly forgetExpiry: (jobId: string) => Promise<unknown>;
  /** The clock a job's expiry is judged by as it starts: this process's (Date.now) unless a test sets it. */
  readonly now?: () => number;
  /** The spans of each attempt (attempt-span.ts); nothing when tracing is off. */
  readonly tracing: Tracing;
}

/**
 * Whether a job about to start must not run: it reached its expiry. Only a first start is judged: a
 * job that started before (a retry, or a re-run after a crash) has started, and expiry never stops
 * a job that started.
 */
export function expiredAtStart(job: Pick<Job, 'opts' | 'attemptsStarted'>, now: number): boolean {
  return job.attemptsStarted <= 1 && pastExpiry(job.opts as Record<string, unknown>, now);
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
  const { ledger: jobLedger, logger, running, metrics, tracing } = options;

  const ledger = async (what: string, jobId: string, update: () => Promise<unknown>): Promise<void> => {
    try {
      await update();
    } catch (error) {
      logger.warn(
        { event: 'ledger.update-failed', err: error, jobId, update: what },
        'load ledger update failed; the reconciler will correct it',
      );
    }
  };

  // While Redis is away BullMQ reports every reconnect attempt, of its own connection and of ours.
  const outage = reportOutage({
    logger,
    level: 'error',
    about: { consumer: 'queue consumer' },
    error: { event: 'consumer.error', msg: 'queue consumer error' },
    restored: { event: 'consumer.restored', msg: 'queue consumer connected again' },
  });
  /** Jobs fetched: the fetch watchdog's sign of life. */
  let fetches = 0;
  const runningJobs = new Set<string>();

  // BullMQ hands a processor that takes three parameters the signal that `cancelJob` fires.
  const untracedJob = async (job: Job, _lock?: string, cancelled?: AbortSignal): Promise<unknown> => {
    fetches += 1;
    const jobId = job.id ?? '';
    const token = parseJobId(jobId)?.token ?? jobId;
    // A job cancelled while it was on its way here never starts. Failing it unrecoverably files it
    // as cancelled; its reservation goes with it.
    if (await options.wasCancelled(jobId, token, job.timestamp)) {
      await ledger('finish', jobId, () => jobLedger.ended(token, 'finished'));
      metrics.jobCancelled(job.name);
      tracing.addEvent('job.cancelled');
      throw new UnrecoverableError(CANCELLED_REASON);
    }
    if (expiresOption(job.opts as Record<string, unknown>) !== undefined) {
      void options
        .forgetExpiry(jobId)
        .catch((error: unknown) =>
          logger.debug({ err: error, jobId }, 'expiry entry not dropped; the expirer drops it'),
        );
      // Not started by its expiry: it never runs, and its slot goes at once, as for a cancel.
      if (expiredAtStart(job, (options.now ?? Date.now)())) {
        await ledger('finish', jobId, () => jobLedger.ended(token, 'finished'));
        metrics.jobExpired(job.name);
        tracing.addEvent('job.expired');
        throw new UnrecoverableError(EXPIRED_REASON);
      }
    }
    running.add(token);
    runningJobs.add(jobId);
    try {
      // Not awaited before the body starts: it would add a Redis round trip to every dispatch. Later
      // ledger updates go on the same connection, so Redis applies them after this one, except on a
      // cluster while the ledger's slot migrates: ioredis then resends the start after a pause, and
      // the end could overtake it. So an end that comes before the start is answered waits for it.
      let startSettled = false;
      const start = ledger('start', jobId, () => jobLedger.started(token)).finally(() => (startSettled = true));
      const afterStart = (update: () => Promise<void>): Promise<void> => (startSettled ? update() : start.then(update));
      // Counts every start, retries and re-runs after a crash alike.
      const attempt = Math.max(1, job.attemptsStarted);
      // Guarded, so that above `debug` a job pays for no log line at all, not even its arguments.
      if (logger.isLevelEnabled('debug'))
        logger.debug({ event: 'job.started', jobId, jobName: job.name, attempt }, 'job started');
      const firstStart = attempt === 1 && job.processedOn !== undefined;
      // Both stamps are taken by different processes (BullMQ stamps a job fetched along with the
      // previous one's completion with the time that completion was sent), so a job added a moment
      // later can read as started before it was enqueued: that is no wait, not a missing one.
      metrics.jobStarted(job.name, firstStart ? Math.max(0, (job.processedOn ?? 0) - job.timestamp) / 1000 : undefined);
      const startedAt = performance.now();
      const seconds = () => (performance.now() - startedAt) / 1000;
      const data = isRecord(job.data) ? job.data : {};
      // The body's thread coalesces its progress (one value per PROGRESS_INTERVAL_MS at most). The
      // last value it reported is saved whether the job completes or fails: the pool delivers it
      // before the run settles, and finish() sends it ahead of BullMQ's move of the job to completed
      // or failed, on the same connection. The job does not wait for that write.
      const progress = createProgressWriter({
        write: (value) => job.updateProgress(value),
        onError: (error) => logger.debug({ err: error, jobId }, 'progress not saved'),
      });
      const timeoutMs = timeoutFor(
        timeoutOption(job.opts as Record<string, unknown>) ?? data.timeoutMs,
        options.jobTimeoutMs,
      );
      const stop = attemptSignal(timeoutMs, cancelled);
      try {
        const result = await runInSpan(tracing, job.name, (onThread) =>
          options.pool.run({
            signal: stop.signal,
            handlerUrl: options.handlers.resolve(job.name),
            jobId,
            jobName: job.name,
            attempt,
            data,
            durationMs: durationFor(data, options.defaultDurationMs, options.maxDurationMs),
            progressIntervalMs: options.progressIntervalMs,
            onProgress: (value) => progress.report(value),
            onThread,
          }),
        );
        void progress.finish();
        // Sent on the consumer's connection after the start (answered by now, unless Redis is slow)
        // and ahead of BullMQ's own move to completed, which fetches the next job from this worker's
        // queue. With no held work it is not awaited: the slot waits no round trip. With held work the
        // end hands this slot to the next held job in turn, and waiting until that job's add is sent
        // ahead on this connection lets the completion fetch it, instead of a wake and a fetch of its
        // own afterwards.
        const finished = afterStart(() => ledger('finish', jobId, () => jobLedger.ended(token, 'finished')));
        if (jobLedger.handsOn()) await finished;
        metrics.jobFinished(job.name, 'completed', seconds());
        return result;
      } catch (caught) {
        const error = cancelled?.aborted
          ? new UnrecoverableError(CANCELLED_REASON)
          : isAbort(caught)
            ? new JobTimeoutError(timeoutMs)
            : caught;
        void progress.finish();
        metrics.jobFinished(job.name, cancelled?.aborted ? 'cancelled' : 'failed', seconds());
        if (cancelled?.aborted) tracing.addEvent('job.cancelled');
        const retries = !(error instanceof UnrecoverableError) && job.attemptsMade + 1 < (job.opts.attempts ?? 1);
        await afterStart(() =>
          ledger(retries ? 'requeue' : 'finish', jobId, () =>
            jobLedger.ended(token, retries ? 'retrying' : 'finished'),
          ),
        );
        throw error;
      } finally {
        stop.done();
      }
    } finally {
      running.delete(token);
      runningJobs.delete(jobId);
      options.onSlotFree?.();
    }
  };

  const processJob = tracedAttempts(tracing, options.workerId, untracedJob);
  const startConsumer = (): Worker => {
    const consumer = new Worker(queueNameFor(options.workerId), processJob, {
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
    fetches: () => fetches,
    logger,
    name: 'queue consumer',
  });

  let closing: Promise<{ drained: boolean }> | undefined;
  return {
    isRunning: () => supervised.current().isRunning() && closing === undefined,
    runningJobs: () => runningJobs,
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

function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');
}

function elapsed(job: Job): number | undefined {
  return job.finishedOn !== undefined && job.processedOn !== undefined ? job.finishedOn - job.processedOn : undefined;
}
