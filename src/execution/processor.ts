/**
 * A job's attempt on this process, from its fetch to its end: the checks that keep a cancelled or
 * expired job from starting, the body run in the thread pool, and what the load ledger is told on the
 * way. Ledger updates never fail a job: if Redis refuses one, the reconciler corrects the ledger from
 * BullMQ's own state. The consumer (consumer.ts) hands this processor to its BullMQ Worker.
 */
import { UnrecoverableError, type Job } from '../queue/bullmq.js';
import { JobTimeoutError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { HandlerRegistry } from './handlers.js';
import type { JobPool } from './pool.js';
import type { ProcessMetrics } from '../metrics/process-metrics.js';
import { CANCELLED_REASON, EXPIRED_REASON, expiresOption, pastExpiry, timeoutOption } from '../contracts/stored-job.js';
import { parseJobId } from '../contracts/names.js';
import { createProgressWriter } from './progress.js';
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

export interface ProcessorOptions {
  readonly workerId: string;
  readonly defaultDurationMs: number;
  readonly maxDurationMs: number;
  /** The longest an attempt may run; a job's `options.timeoutMs` may ask for less. */
  readonly jobTimeoutMs: number;
  readonly progressIntervalMs: number;
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

export interface Processor {
  /** What BullMQ's Worker runs for each job it fetches. */
  readonly process: (job: Job, lock?: string, cancelled?: AbortSignal) => Promise<unknown>;
  /** Jobs fetched so far: the fetch watchdog's sign of life. */
  readonly fetches: () => number;
  /** The ids of the jobs running here. */
  readonly runningJobs: ReadonlySet<string>;
}

/**
 * Whether a job about to start must not run: it reached its expiry. Only a first start is judged: a
 * job that started before (a retry, or a re-run after a crash) has started, and expiry never stops
 * a job that started.
 */
export function expiredAtStart(job: Pick<Job, 'opts' | 'attemptsStarted'>, now: number): boolean {
  return job.attemptsStarted <= 1 && pastExpiry(job.opts as Record<string, unknown>, now);
}

export function createProcessor(options: ProcessorOptions): Processor {
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

  return {
    process: tracedAttempts(tracing, options.workerId, untracedJob),
    fetches: () => fetches,
    runningJobs,
  };
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');
}
