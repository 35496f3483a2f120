/**
 * The contract between the service and the thread side (`workers/`): what a job body is given and may
 * return, and the messages between a Piscina thread and the pool. Types only: the thread code loads
 * nothing of the service, and the pool nothing of the thread code.
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

/** A progress report, as the pool receives it. */
export interface ProgressMessage {
  readonly bullpenRun: number;
  readonly progress: JobProgress;
}

/** The handler's context as data (progress travels as messages), plus which module to load. */
export interface RunnerTask extends Omit<HandlerContext, 'reportProgress'> {
  readonly handlerUrl: string;
  /** Tags this run's progress messages. */
  readonly runKey: number;
  /** PROGRESS_INTERVAL_MS: the thread sends at most one progress report per interval. */
  readonly progressIntervalMs: number;
}

/**
 * How a run ended: what the body returned, or what it threw (cloned like any thrown error), with how
 * many progress messages it sent, and the last value it reported that was not sent, if any.
 */
export type RunnerOutcome = ({ readonly returned: unknown } | { readonly threw: unknown }) & {
  readonly progressMessages: number;
  /** The thread that ran the body (`worker_threads.threadId`), for the run's span. */
  readonly threadId: number;
  readonly lastProgress?: JobProgress;
};
