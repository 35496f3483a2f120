/**
 * Saves the progress a job body reports onto its BullMQ job. The rule the consumer relies on:
 * `flush()` settles only once the last value reported has been written (or its write has failed and
 * been logged), so a job never ends, completed or failed, showing older progress than its body's
 * last report. Intermediate values carry no such promise: writes go out one at a time, in order, and
 * a value reported while one is in flight replaces any value still waiting for its turn.
 */
import type { JobProgress } from '../../workers/handler.js';

export interface ProgressWriter {
  report(progress: JobProgress): void;
  /** Settles once the last value reported so far is written; never rejects. */
  flush(): Promise<void>;
}

export function createProgressWriter(
  write: (progress: JobProgress) => Promise<unknown>,
  onError: (error: unknown) => void,
): ProgressWriter {
  /** The value waiting for the write in flight to end, if any. */
  let next: { readonly progress: JobProgress } | undefined;
  /** The write in flight and those it will chain; settles when nothing is left to write. */
  let writing: Promise<void> | undefined;

  const drain = async (): Promise<void> => {
    while (next !== undefined) {
      const { progress } = next;
      next = undefined;
      try {
        await write(progress);
      } catch (error) {
        onError(error);
      }
    }
    writing = undefined;
  };

  return {
    report(progress) {
      next = { progress };
      writing ??= drain();
    },
    flush: () => writing ?? Promise.resolve(),
  };
}
