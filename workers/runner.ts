/**
 * What runs inside each Piscina thread: load the handler module named by the task (cached by the
 * module loader after the first import), run it, and forward its progress over the port the main
 * thread passed along, since a thread cannot touch the BullMQ job itself.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Handler, HandlerContext, JobProgress } from './handler.js';

/** What the thread sends back over the progress port; `done` is always the last message. */
export type RunnerMessage = { readonly progress: JobProgress } | { readonly done: true };

export interface RunnerTask {
  readonly handlerUrl: string;
  readonly jobId: string;
  readonly jobName: string;
  readonly attempt: number;
  readonly data: Readonly<Record<string, unknown>>;
  readonly durationMs: number;
  readonly progressPort: MessagePort;
}

export default async function run(task: RunnerTask): Promise<unknown> {
  const { progressPort } = task;
  try {
    const module = (await import(task.handlerUrl)) as { default?: Handler };
    if (typeof module.default !== 'function') {
      throw new TypeError(`${task.handlerUrl} has no default export function`);
    }
    const context: HandlerContext = {
      jobId: task.jobId,
      jobName: task.jobName,
      attempt: task.attempt,
      data: task.data,
      durationMs: task.durationMs,
      reportProgress: (progress) => progressPort.postMessage({ progress } satisfies RunnerMessage),
    };
    return await module.default(context);
  } finally {
    progressPort.postMessage({ done: true } satisfies RunnerMessage);
    progressPort.close();
  }
}
