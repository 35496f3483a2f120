/**
 * Saves the progress a job body reports onto its BullMQ job. Every save is a script call plus an
 * entry in the queue's event stream, so values come here already coalesced by the job's thread (at
 * most one per PROGRESS_INTERVAL_MS, see workers/progress-throttle.ts); what is left to do here is
 * the order of the saves while Redis is slow.
 *
 * The rules:
 * - One save at a time: values reported while one is in flight collapse into the latest, saved
 *   when it is done.
 * - `finish()` sends the last value reported, if it is not saved yet, at once, even with a save in
 *   flight: the saves and the job's completion go out on one connection, so Redis runs them in the
 *   order they were sent. Waiting for the save in flight first would send the last value behind
 *   the completion, and a reader could see a completed job with its last value but one (a job that
 *   has ended still takes a progress save, so the value would come, late). The caller need not wait.
 */
import type { JobProgress } from '../contracts/thread.js';

export interface ProgressWriter {
  report(progress: JobProgress): void;
  /** Saves the last value if it is not saved yet; settles once it is (or failed); never rejects. */
  finish(): Promise<void>;
}

export interface ProgressWriterOptions {
  readonly write: (progress: JobProgress) => Promise<unknown>;
  readonly onError: (error: unknown) => void;
}

export function createProgressWriter({ write, onError }: ProgressWriterOptions): ProgressWriter {
  /** The latest value not yet written, if any. */
  let pending: { readonly progress: JobProgress } | undefined;
  let inFlight: Promise<void> | undefined;
  let finished = false;

  const writeNow = (): Promise<void> => {
    const { progress } = pending as { readonly progress: JobProgress };
    pending = undefined;
    const done = write(progress).then(
      () => undefined,
      (error: unknown) => onError(error),
    );
    inFlight = done.then(() => {
      inFlight = undefined;
      // After finish(), finish() writes what is left.
      if (pending !== undefined && !finished) void writeNow();
    });
    return inFlight;
  };

  return {
    report(progress) {
      if (finished) return;
      pending = { progress };
      if (inFlight === undefined) void writeNow();
    },
    async finish() {
      finished = true;
      const earlier = inFlight;
      const last = pending === undefined ? undefined : writeNow();
      await Promise.all([earlier, last]);
    },
  };
}
