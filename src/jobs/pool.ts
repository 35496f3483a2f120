/**
 * The thread pool that runs job bodies. One thread per consumer slot, so a long job never blocks the
 * event loop that serves HTTP and renews BullMQ's locks. By default every thread is started up front
 * and never idled away, so a job never waits for a thread to boot; fewer warm threads trade that wait
 * for a lighter start (each thread is a V8 isolate of its own, tens of milliseconds of CPU).
 */
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { JobProgress } from '../../workers/handler.js';
import type { RunnerMessage, RunnerTask } from '../../workers/runner.js';

/** How long a settled run waits for its last progress at most, should the port never say it drained. */
const PROGRESS_DRAIN_MS = 1_000;

export interface JobRun extends Omit<RunnerTask, 'progressPort'> {
  /** Stops the job: its thread is terminated and replaced, and the run rejects. */
  readonly signal: AbortSignal;
  readonly onProgress: (progress: JobProgress) => void;
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
  const piscina = new Piscina<RunnerTask, unknown>({
    filename: runnerFile,
    minThreads: warmThreads,
    maxThreads: threads,
    resourceLimits: { maxOldGenerationSizeMb: memoryLimitMb },
    // Only threads beyond the warm ones ever idle out.
    idleTimeout: 60_000,
    concurrentTasksPerWorker: 1,
  });
  return {
    async run({ onProgress, signal, ...job }) {
      const { port1, port2 } = new MessageChannel();
      // Progress crosses a port of its own, which keeps no order with the run's outcome: the last
      // progress may still be on its way when the run settles, whether the body returned, threw or
      // was stopped. So every run waits for its port to drain before it settles: the thread's last
      // message says it is done, and a thread that dies or is stopped closes the port instead.
      let markDrained = () => {};
      const drained = new Promise<void>((resolveDrained) => (markDrained = resolveDrained));
      port1.on('message', (message: RunnerMessage) => {
        if ('done' in message) markDrained();
        else onProgress(message.progress);
      });
      port1.once('close', markDrained);
      try {
        return await piscina.run({ ...job, progressPort: port2 }, { transferList: [port2], signal });
      } finally {
        // A run refused before it reached a thread never handed its port over: closing it here
        // ends the wait at once (on a port handed over, close does nothing).
        port2.close();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          drained,
          new Promise((resolveLate) => (timer = setTimeout(resolveLate, PROGRESS_DRAIN_MS))),
        ]);
        clearTimeout(timer);
        port1.close();
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
