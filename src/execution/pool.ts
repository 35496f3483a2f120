/**
 * The thread pool that runs job bodies. One thread per consumer slot, so a long job never blocks the
 * event loop that serves HTTP and renews BullMQ's locks. By default every thread is started up front
 * and never idled away, so a job never waits for a thread to boot; fewer warm threads trade that wait
 * for a lighter start (each thread is a V8 isolate of its own, tens of milliseconds of CPU).
 */
import { Piscina } from 'piscina';
import type { JobProgress, ProgressMessage, RunnerOutcome, RunnerTask } from '../contracts/thread.js';

/**
 * How long a run that ended waits at most for progress messages still on their way. They normally
 * arrive within microseconds; a thread that died takes its unsent messages with it.
 */
const PROGRESS_DRAIN_MS = 1_000;

export interface JobRun extends Omit<RunnerTask, 'runKey'> {
  /** Stops the job: its thread is terminated and replaced, and the run rejects. */
  readonly signal: AbortSignal;
  /**
   * Takes the body's progress, coalesced by its thread (at most one value per `progressIntervalMs`),
   * in the order reported; the last value comes before the run settles. A value the body reported
   * shortly before its thread was stopped or died may never come.
   */
  readonly onProgress: (progress: JobProgress) => void;
  /** Told which thread ran the body, once it has (for the run's span). */
  readonly onThread?: ((threadId: number) => void) | undefined;
}

export interface JobPool {
  run(job: JobRun): Promise<unknown>;
  readonly threads: number;
  readonly queueSize: number;
  /** Waits for running jobs, then stops the threads. */
  close(): Promise<void>;
  /** Stops the threads now, failing whatever runs on them. */
  destroy(): Promise<void>;
}

export interface JobPoolOptions {
  readonly runnerFile: string;
  readonly threads: number;
  /** Threads started with the pool and kept; the others start on demand and stop when idle. */
  readonly warmThreads: number;
  /** Heap limit of each thread: a job that needs more fails alone, its process carries on. */
  readonly memoryLimitMb: number;
}

export function createJobPool({ runnerFile, threads, warmThreads, memoryLimitMb }: JobPoolOptions): JobPool {
  const piscina = new Piscina<RunnerTask, RunnerOutcome>({
    filename: runnerFile,
    minThreads: warmThreads,
    maxThreads: threads,
    resourceLimits: { maxOldGenerationSizeMb: memoryLimitMb },
    // Only threads beyond the warm ones ever idle out.
    idleTimeout: 60_000,
    concurrentTasksPerWorker: 1,
    // Piscina's own run and wait histograms: nothing reads them, and each task would pay for them.
    recordTiming: false,
  });
  /** Runs in flight by key: where their progress goes, and how many reports arrived so far. */
  const runs = new Map<number, { readonly onProgress: JobRun['onProgress']; received: number; arrived(): void }>();
  let lastKey = 0;
  piscina.on('message', (message: unknown) => {
    if (!isProgressMessage(message)) return;
    const run = runs.get(message.bullpenRun);
    if (run === undefined) return;
    run.received += 1;
    run.onProgress(message.progress);
    run.arrived();
  });

  /** Progress and outcome travel on different channels: wait until the reports sent have arrived. */
  const drain = async (run: { received: number; arrived(): void }, sent: number): Promise<void> => {
    if (run.received >= sent) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      run.arrived = () => {
        if (run.received >= sent) resolve();
      };
      timer = setTimeout(resolve, PROGRESS_DRAIN_MS);
    });
    clearTimeout(timer);
  };

  return {
    async run({ onProgress, onThread, signal, ...job }) {
      lastKey += 1;
      const runKey = lastKey;
      const run = { onProgress, received: 0, arrived: () => {} };
      runs.set(runKey, run);
      try {
        let outcome: RunnerOutcome;
        try {
          outcome = await piscina.run({ ...job, runKey }, { signal });
        } catch (error) {
          // The thread was stopped or died: let the reports it sent before that arrive, then fail.
          await new Promise((resolve) => setImmediate(resolve));
          throw error;
        }
        onThread?.(outcome.threadId);
        await drain(run, outcome.progressMessages);
        // The last value the body reported, when its thread held it back: newer than any message.
        if (outcome.lastProgress !== undefined) onProgress(outcome.lastProgress);
        if ('threw' in outcome) throw outcome.threw;
        return outcome.returned;
      } finally {
        runs.delete(runKey);
      }
    },
    get threads() {
      return piscina.threads.length;
    },
    get queueSize() {
      return piscina.queueSize;
    },
    close: () => piscina.close({ force: false }),
    destroy: () => piscina.destroy(),
  };
}

function isProgressMessage(message: unknown): message is ProgressMessage {
  return typeof message === 'object' && message !== null && 'bullpenRun' in message && 'progress' in message;
}
