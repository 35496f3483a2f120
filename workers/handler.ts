/**
 * The contract between the service and a job body. A handler is the default export of a file in
 * `workers/handlers/`, named after the job name it serves; it runs inside a Piscina thread, so
 * it may block its thread without stalling HTTP or the queue.
 */
export type { Handler, HandlerContext, JobProgress } from '../src/contracts/thread.js';
