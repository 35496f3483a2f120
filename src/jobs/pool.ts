/**
 * The thread pool that runs job bodies. One thread per consumer slot, all started up front and never
 * idled away, so a job never waits for a thread and a long job never blocks the event loop that
 * serves HTTP and renews BullMQ's locks.
 */
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { JobProgress } from '../../workers/handler.js';
import type { RunnerMessage, RunnerTask } from '../../workers/runner.js';

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
  /** Heap limit of each thread: a job that needs more fails alone, its process carries on. */
  readonly memoryLimitMb: number;
}

export function createJobPool({ runnerFile, threads, memoryLimitMb }: JobPoolOptions): JobPool {
  const piscina = new Piscina<RunnerTask, unknown>({
    filename: runnerFile,
    minThreads: threads,
    maxThreads: threads,
    resourceLimits: { maxOldGenerationSizeMb: memoryLimitMb },
    // Threads are meant to live as long as the pool; the idle timeout only matters if one dies.
    idleTimeout: 60_000,
    concurrentTasksPerWorker: 1,
  });
  return {
    async run({ onProgress, signal, ...job }) {
      const { port1, port2 } = new MessageChannel();
      // The thread's last message says it is done; waiting for it delivers the final progress before
      // the job is reported finished. A thread that died never sends it: don't wait long then.
      let markDrained = () => {};
      const drained = new Promise<void>((resolveDrained) => (markDrained = resolveDrained));
      port1.on('message', (message: RunnerMessage) => {
        if ('done' in message) markDrained();
        else onProgress(message.progress);
      });
      try {
        const result = await piscina.run({ ...job, progressPort: port2 }, { transferList: [port2], signal });
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([drained, new Promise((resolveLate) => (timer = setTimeout(resolveLate, PROGRESS_DRAIN_MS)))]);
        clearTimeout(timer);
        return result;
      } finally {
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
