/**
 * Accepting a task: reserve a slot on the least-loaded live worker (batched with the other requests of
 * the same event-loop turn), then add the job to that worker's queue. A refused task leaves nothing
 * behind: if a step fails, what it may have done is undone.
 *
 * A command that timed out on a stalled Redis can still run when Redis resumes. The undo is sent on
 * the same connection, so Redis runs it after the command it undoes; while Redis is unreachable,
 * neither runs. An undo that fails is logged at warn with the task's token and counted
 * (`bullpen_undo_failures_total`): the client is refused all the same, and the reconciler frees a
 * reservation left behind once it is older than its grace period.
 */
import { Job, type JobsOptions, type Queue } from 'bullmq';
import type { ChainableCommander } from 'ioredis';
import { jobIdFor, newToken } from '../queue/names.js';
import type { QueueRegistry } from '../queue/queues.js';
import { createReserveBatcher } from './reserve-batcher.js';
import type { Ledger } from '../ledger/ledger.js';
import { BacklogFullError, NoLiveWorkerError, QueueUnavailableError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { ProcessMetrics, UndoOperation } from '../metrics/process-metrics.js';

export interface DispatchRequest {
  readonly jobName: string;
  readonly data: Readonly<Record<string, unknown>>;
  /**
   * A Redis string to write in the same transaction as the job, or not at all: given where the job
   * went, its key and value (an idempotency key's answer).
   */
  readonly record?: (dispatched: Dispatched) => { readonly key: string; readonly value: string };
}

export interface Dispatched {
  readonly jobId: string;
  readonly workerId: string;
}

export interface Dispatcher {
  dispatch(request: DispatchRequest): Promise<Dispatched>;
}

export interface DispatcherOptions {
  readonly ledger: Pick<Ledger, 'reserveMany' | 'release' | 'cancel'>;
  readonly queues: Pick<QueueRegistry, 'forWorker'>;
  readonly jobOptions: JobsOptions;
  readonly logger: Logger;
  readonly metrics: Pick<ProcessMetrics, 'undoFailed'>;
  /** Told to clients refused for a full backlog: about when a slot should free up. */
  readonly retryAfterSeconds: number;
}

/** What is left behind when each undo fails, for the log line. */
const UNDO_FAILED: Record<UndoOperation, string> = {
  cancel_reservation:
    'could not cancel the reservation of a refused task; the reconciler frees it after its grace period',
  remove_job:
    'could not remove the job of a refused task; if its worker takes it, it runs although its client was told 503',
  release_reservation:
    'could not release the reservation of a refused task; the reconciler frees it after its grace period',
};

export function createDispatcher({
  ledger,
  queues,
  jobOptions,
  logger,
  metrics,
  retryAfterSeconds,
}: DispatcherOptions): Dispatcher {
  const reserve = createReserveBatcher((tokens) => ledger.reserveMany(tokens));
  /** Runs one undo step; its failure is logged and counted, never thrown. */
  const undo = async (
    operation: UndoOperation,
    ids: { token: string; jobId?: string; workerId?: string },
    step: () => Promise<unknown>,
  ) => {
    try {
      await step();
    } catch (error) {
      metrics.undoFailed(operation);
      logger.warn({ err: error, operation, ...ids }, UNDO_FAILED[operation]);
    }
  };
  return {
    async dispatch({ jobName, data, record }) {
      const token = newToken();
      const outcome = await reserve(token).catch((error: unknown) => {
        void undo('cancel_reservation', { token }, () => ledger.cancel(token));
        throw new QueueUnavailableError(error);
      });
      if (outcome.kind === 'no-live-worker') throw new NoLiveWorkerError();
      if (outcome.kind === 'backlog-full') throw new BacklogFullError(retryAfterSeconds);
      const { workerId } = outcome;
      const jobId = jobIdFor(workerId, token);
      const queue = queues.forWorker(workerId);
      try {
        if (record === undefined) await queue.add(jobName, data, { ...jobOptions, jobId });
        else
          await addWithRecord(
            queue,
            new Job(queue, jobName, data, { ...jobOptions, jobId }, jobId),
            record({ jobId, workerId }),
          );
      } catch (error) {
        // Best effort: a job already taken by its worker cannot be removed, and then runs although
        // its client was told 503 (delivery is at-least-once). If the release fails too, the
        // reconciler frees the slot once the reservation is older than its grace period.
        void undo('remove_job', { token, jobId, workerId }, () => queue.remove(jobId));
        await undo('release_reservation', { token, jobId, workerId }, () => ledger.release(workerId, token));
        throw new QueueUnavailableError(error);
      }
      return { jobId, workerId };
    },
  };
}

/**
 * Adds the job and writes the record in one MULTI: both happen, or neither. BullMQ queues its add
 * script on the transaction synchronously, as its own bulk add relies on.
 */
async function addWithRecord(
  queue: Queue,
  job: Job,
  { key, value }: { readonly key: string; readonly value: string },
): Promise<void> {
  const client = await queue.backend.client;
  const multi = client.multi();
  // Its outcome is read from the transaction's results below.
  job.addJob(multi).catch(() => {});
  // BullMQ's transaction is ioredis's own (with a few commands added); its type only lists those.
  (multi as unknown as ChainableCommander).set(key, value, 'KEEPTTL');
  const results = await multi.exec();
  if (results === null) throw new Error('the transaction was discarded');
  const error = results.find(([failure]) => failure !== null)?.[0];
  if (error) throw error;
}
