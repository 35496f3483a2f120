/**
 * Undoing what a refused task may have left behind (a reservation, a job): best effort, since the
 * client is refused whatever happens. An undo that fails is logged at warn with the task's ids and
 * counted (`bullpen_undo_failures_total`), never thrown; the reconciler frees a reservation left
 * behind once it is older than its grace period.
 */
import type { Logger } from '../logging/logger.js';
import type { ProcessMetrics, UndoOperation } from '../metrics/process-metrics.js';

/** What is left behind when each undo fails, for the log line. */
const UNDO_FAILED: Record<UndoOperation, string> = {
  cancel_reservation:
    'could not cancel the reservation of a refused task; the reconciler frees it after its grace period',
  remove_job:
    'could not remove the job of a refused task; if its worker takes it, it runs although its client was told 503',
  release_reservation:
    'could not release the reservation of a refused task; the reconciler frees it after its grace period',
};

/** Runs one undo step; its failure is logged and counted, never thrown. */
export type Undo = (
  operation: UndoOperation,
  ids: { token: string; jobId?: string; workerId?: string },
  step: () => Promise<unknown>,
) => Promise<void>;

export function createUndo(logger: Logger, metrics: Pick<ProcessMetrics, 'undoFailed'>): Undo {
  return async (operation, ids, step) => {
    try {
      await step();
    } catch (error) {
      metrics.undoFailed(operation);
      logger.warn({ event: 'enqueue.undo-failed', err: error, operation, ...ids }, UNDO_FAILED[operation]);
    }
  };
}
