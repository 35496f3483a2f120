/**
 * What runs inside each Piscina thread: load the handler module named by the task (cached by the
 * module loader after the first import), run it, and forward its progress over the port the main
 * thread passed along, since a thread cannot touch the BullMQ job itself.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Handler, HandlerContext } from './handler.js';

export interface RunnerTask {
  readonly handlerUrl: string;
  readonly jobId: string;
  readonly jobName: string;
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
      data: task.data,
      durationMs: task.durationMs,
      reportProgress: (progress) => progressPort.postMessage(progress),
    };
    return await module.default(context);
  } finally {
    progressPort.close();
  }
}
