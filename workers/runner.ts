/**
 * What runs inside each Piscina thread: load the handler module named by the task (cached by the
 * module loader after the first import), run it, and forward its progress over the port the main
 * thread passed along, since a thread cannot touch the BullMQ job itself.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Handler, HandlerContext, JobProgress } from './handler.js';

/** What the thread sends back over the progress port; `done` is always the last message. */
export type RunnerMessage = { readonly progress: JobProgress } | { readonly done: true };

/** The handler's context as data (progress travels over the port), plus which module to load. */
export interface RunnerTask extends Omit<HandlerContext, 'reportProgress'> {
  readonly handlerUrl: string;
  readonly progressPort: MessagePort;
}

export default async function run(task: RunnerTask): Promise<unknown> {
  const { progressPort, handlerUrl, ...fields } = task;
  try {
    const module = (await import(handlerUrl)) as { default?: Handler };
    if (typeof module.default !== 'function') {
      throw new TypeError(`${handlerUrl} has no default export function`);
    }
    const context: HandlerContext = {
      ...fields,
      reportProgress: (progress) => progressPort.postMessage({ progress } satisfies RunnerMessage),
    };
    return await module.default(context);
  } finally {
    progressPort.postMessage({ done: true } satisfies RunnerMessage);
    progressPort.close();
  }
}
