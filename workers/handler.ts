/**
 * The contract between the service and a job body. A handler is the default export of a file in
 * `workers/handlers/`, named after the job name it serves; it runs inside a Piscina worker thread, so
 * it may block its thread without stalling HTTP or the queue.
 */
export type JobProgress = number | Record<string, unknown>;

export interface HandlerContext {
  readonly jobId: string;
  readonly jobName: string;
  /** 1 for the first attempt; retries and re-runs after a crash count up. */
  readonly attempt: number;
  readonly data: Readonly<Record<string, unknown>>;
  /** The run time asked for: `data.durationMs` when given (bounded), otherwise TASK_DURATION_MS. */
  readonly durationMs: number;
  readonly reportProgress: (progress: JobProgress) => void;
}

/** May return its result or a promise of it; either way the result must be structured-cloneable. */
export type Handler = (context: HandlerContext) => unknown;
