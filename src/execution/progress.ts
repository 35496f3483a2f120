/**
 * Saves the progress a job body reports onto its BullMQ job, coalesced. Every write is a script call
 * plus an entry in the queue's event stream, and a short job reports more often than anyone reads:
 * written as reported, progress cost a short job more than everything else around its body.
 *
 * The rules:
 * - At most one write every `intervalMs`, counted from the job's start, each carrying the latest
 *   value; a number just written is not written again. Writes go one at a time.
 * - `finish()` writes the last value reported if it is not written yet, after any write in flight.
 *   The caller need not wait for it: it is sent on the connection that will also carry the job's
 *   completion, and a job that has ended still takes a progress write. A job shorter than the
 *   interval thus costs one write, its final value.
 */
import type { JobProgress } from '../contracts/thread.js';

export interface ProgressWriter {
  report(progress: JobProgress): void;
  /** Writes the last value if it is not written yet; settles once it is (or failed); never rejects. */
  finish(): Promise<void>;
}

export interface ProgressWriterOptions {
  readonly write: (progress: JobProgress) => Promise<unknown>;
  readonly onError: (error: unknown) => void;
  /** The least time between two writes; 0 writes each value as soon as the one before is done. */
  readonly intervalMs: number;
}

export function createProgressWriter({ write, onError, intervalMs }: ProgressWriterOptions): ProgressWriter {
  /** The latest value not yet written, if any. */
  let pending: { readonly progress: JobProgress } | undefined;
  let inFlight: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  let lastWritten: JobProgress | undefined;
  /** When the last write began: the next may begin `intervalMs` later. The job's start counts as one. */
  let lastWriteAt = Date.now();

  const writeNow = (): Promise<void> => {
    const { progress } = pending as { readonly progress: JobProgress };
    pending = undefined;
    lastWritten = progress;
    lastWriteAt = Date.now();
    const done = write(progress).then(
      () => undefined,
      (error: unknown) => onError(error),
    );
    inFlight = done.then(() => {
      inFlight = undefined;
      schedule();
    });
    return inFlight;
  };

  /** Arms the timer for the next write, if a value waits and nothing else will write it. */
  const schedule = (): void => {
    if (pending === undefined || finished || inFlight !== undefined || timer !== undefined) return;
    const waitMs = Math.max(0, lastWriteAt + intervalMs - Date.now());
    timer = setTimeout(() => {
      timer = undefined;
      if (pending !== undefined && !finished && inFlight === undefined) void writeNow();
    }, waitMs);
    // A timer must not keep a stopping process alive; finish() writes the value anyway.
    timer.unref();
  };

  return {
    report(progress) {
      if (finished) return;
      // A number reported again (a body that reports on a timer) is no news.
      if (pending === undefined && typeof progress === 'number' && progress === lastWritten) return;
      pending = { progress };
      schedule();
    },
    async finish() {
      finished = true;
      clearTimeout(timer);
      timer = undefined;
      if (inFlight !== undefined) await inFlight;
      if (pending !== undefined) await writeNow();
    },
  };
}
