/**
 * What runs inside each Piscina thread: load the handler module named by the task (cached by the
 * module loader after the first import), run it, and send its progress to the main thread, since a
 * thread cannot touch the BullMQ job itself.
 *
 * Progress goes over the thread's own channel to its parent (Piscina hands such messages to the
 * pool as 'message' events), tagged with the run's key. A channel per run would cost every job a
 * port to create, transfer and close, and a message to say it is done, progress or not. The outcome
 * says how many progress messages the run sent, so that the pool can wait for exactly those.
 */
import { parentPort } from 'node:worker_threads';
import type { Handler, HandlerContext, ProgressMessage, RunnerOutcome, RunnerTask } from '../src/contracts/thread.js';

export default async function run(task: RunnerTask): Promise<RunnerOutcome> {
  const { handlerUrl, runKey, ...fields } = task;
  let progressMessages = 0;
  const context: HandlerContext = {
    ...fields,
    reportProgress: (progress) => {
      progressMessages += 1;
      parentPort?.postMessage({ bullpenRun: runKey, progress } satisfies ProgressMessage);
    },
  };
  try {
    const module = (await import(handlerUrl)) as { default?: Handler };
    if (typeof module.default !== 'function') {
      throw new TypeError(`${handlerUrl} has no default export function`);
    }
    return { returned: await module.default(context), progressMessages };
  } catch (error) {
    return { threw: error, progressMessages };
  }
}
