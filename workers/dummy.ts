/**
 * The built-in job body, used for every job name that has no handler file of its own: it waits for
 * the asked duration, reporting progress as it goes, and returns a small summary. With `data.fail`
 * (true or a message) it throws at the end instead, so that retries, failures and their metrics can
 * be seen without writing a handler: then its last step reports no 100, which would read as done.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { threadId } from 'node:worker_threads';
import type { Handler } from './handler.js';

const PROGRESS_STEPS = 10;

const dummy: Handler = async ({ jobName, data, durationMs, reportProgress }) => {
  const startedAt = Date.now();
  reportProgress(0);
  const fails = data.fail !== undefined && data.fail !== false;
  for (let step = 1; step <= PROGRESS_STEPS; step += 1) {
    const waitMs = startedAt + (durationMs * step) / PROGRESS_STEPS - Date.now();
    // A step already due does not sleep: ten 0 ms timers woke the thread ten times for nothing,
    // which close to doubled the CPU of a job of `durationMs: 0` (bench, scenario 12).
    if (waitMs > 0) await sleep(waitMs);
    if (fails && step === PROGRESS_STEPS) {
      throw new Error(typeof data.fail === 'string' ? data.fail : 'the task was asked to fail');
    }
    reportProgress((step * 100) / PROGRESS_STEPS);
  }
  return { jobName, durationMs, elapsedMs: Date.now() - startedAt, threadId };
};

export default dummy;
