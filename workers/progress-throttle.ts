/**
 * Coalesces a job body's progress inside its thread. Each message from a thread wakes the main
 * thread of its process: sent as reported, the dummy's 11 reports made a job of `durationMs: 0` cost
 * about a tenth more CPU than a silent one (bench, scenario 12). Here a run sends at most one report
 * per interval, and what it reported last without sending travels back with its outcome instead, so
 * a body shorter than the interval sends no message at all.
 *
 * The rules:
 * - The run's start counts as a send: a report goes out at once if the interval has passed since
 *   the last send, otherwise it waits, and a later report replaces it. A report that waits is sent
 *   when the interval is up, so a body that reports and then works for a long time is seen.
 * - A number equal to the last value reported is no news, and is dropped.
 * - `finish()` stops the run's sending and hands back the last value not sent, if any. A value that
 *   waits when the thread dies or is stopped (a time-out, a cancel) is lost with it.
 */
import type { JobProgress } from '../src/contracts/thread.js';

export interface ProgressThrottle {
  report(progress: JobProgress): void;
  /** Ends the run's sending: later reports are dropped. Answers the last value not sent, if any. */
  finish(): { readonly progress: JobProgress } | undefined;
  /** How many reports were sent. */
  readonly sent: number;
}

export interface ProgressThrottleOptions {
  /** The least time between two sends; 0 sends every report that is news. */
  readonly intervalMs: number;
  readonly send: (progress: JobProgress) => void;
}

export function createProgressThrottle({ intervalMs, send }: ProgressThrottleOptions): ProgressThrottle {
  /** The latest value not yet sent, if any. */
  let waiting: { readonly progress: JobProgress } | undefined;
  let last: JobProgress | undefined;
  let lastSentAt = Date.now();
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  let finished = false;

  const sendWaiting = (): void => {
    timer = undefined;
    if (waiting === undefined) return;
    const { progress } = waiting;
    waiting = undefined;
    lastSentAt = Date.now();
    sent += 1;
    send(progress);
  };

  return {
    report(progress) {
      if (finished || (typeof progress === 'number' && progress === last)) return;
      last = progress;
      waiting = { progress };
      const waitMs = lastSentAt + intervalMs - Date.now();
      if (waitMs <= 0) {
        clearTimeout(timer);
        sendWaiting();
      } else {
        timer ??= setTimeout(sendWaiting, waitMs);
      }
    },
    finish() {
      finished = true;
      clearTimeout(timer);
      timer = undefined;
      const unsent = waiting;
      waiting = undefined;
      return unsent;
    },
    get sent() {
      return sent;
    },
  };
}
