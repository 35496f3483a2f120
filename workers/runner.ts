/**
 * What runs inside each Piscina thread: load the handler module named by the task (cached by the
 * module loader after the first import), run it, and hand its progress to the main thread, since a
 * thread cannot touch the BullMQ job itself.
 *
 * Progress is coalesced here (`progress-throttle.ts`): every message wakes the main thread, so a run
 * sends at most one report per interval, over the thread's own channel to its parent (Piscina hands
 * such messages to the pool as 'message' events), tagged with the run's key. A channel per run would
 * cost every job a port to create, transfer and close. The last value not sent travels back in the
 * outcome, which also says how many reports were sent, so that the pool can wait for exactly those.
 */
import { parentPort, threadId } from 'node:worker_threads';
import type { Handler, HandlerContext, ProgressMessage, RunnerOutcome, RunnerTask } from '../src/contracts/thread.js';
import { createProgressThrottle } from './progress-throttle.js';

export default async function run(task: RunnerTask): Promise<RunnerOutcome> {
  const { handlerUrl, runKey, progressIntervalMs, ...fields } = task;
  const progress = createProgressThrottle({
    intervalMs: progressIntervalMs,
    send: (value) => parentPort?.postMessage({ bullpenRun: runKey, progress: value } satisfies ProgressMessage),
  });
  const context: HandlerContext = { ...fields, reportProgress: (value) => progress.report(value) };
  let ended: { readonly returned: unknown } | { readonly threw: unknown };
  try {
    const module = (await import(handlerUrl)) as { default?: Handler };
    if (typeof module.default !== 'function') {
      throw new TypeError(`${handlerUrl} has no default export function`);
    }
    ended = { returned: await module.default(context) };
  } catch (error) {
    ended = { threw: error };
  }
  const unsent = progress.finish();
  const progressMessages = progress.sent;
  return unsent === undefined
    ? { ...ended, progressMessages, threadId }
    : { ...ended, progressMessages, threadId, lastProgress: unsent.progress };
}
