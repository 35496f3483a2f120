/**
 * Accepting a task: reserve a slot on the least-loaded live worker (batched with the other requests of
 * the same event-loop turn), then add the job to that worker's queue. A refused task leaves nothing behind: if a step fails, what it may have done is undone.
 *
 * A command that timed out on a stalled Redis can still run when Redis resumes. The undo is sent on
 * the same connection, so Redis runs it after the command it undoes; while Redis is unreachable,
 * neither runs.
 */
import { randomUUID } from 'node:crypto';
import type { JobsOptions } from 'bullmq';
import { jobIdFor } from '../queue/names.js';
import type { QueueRegistry } from '../queue/queues.js';
import { createReserveBatcher } from './reserve-batcher.js';
import type { Ledger } from '../ledger/ledger.js';
import { BacklogFullError, NoLiveWorkerError, QueueUnavailableError } from '../errors.js';

export interface DispatchRequest {
  readonly jobName: string;
  readonly data: Readonly<Record<string, unknown>>;
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
  readonly onReleaseError: (error: unknown, token: string) => void;
  /** Told to clients refused for a full backlog: about when a slot should free up. */
  readonly retryAfterSeconds: number;
}

export function createDispatcher({ ledger, queues, jobOptions, onReleaseError, retryAfterSeconds }: DispatcherOptions): Dispatcher {
  const reserve = createReserveBatcher((tokens) => ledger.reserveMany(tokens));
  return {
    async dispatch({ jobName, data }) {
      const token = randomUUID();
      const outcome = await reserve(token).catch((error: unknown) => {
        ledger.cancel(token).catch(() => {});
        throw new QueueUnavailableError(error);
      });
      if (outcome.kind === 'no-live-worker') throw new NoLiveWorkerError();
      if (outcome.kind === 'backlog-full') throw new BacklogFullError(retryAfterSeconds);
      const { workerId } = outcome;
      const jobId = jobIdFor(workerId, token);
      const queue = queues.forWorker(workerId);
      try {
        await queue.add(jobName, data, { ...jobOptions, jobId });
      } catch (error) {
        // Best effort: a job already taken by its worker cannot be removed, and then runs although
        // its client was told 503 (delivery is at-least-once). If the release fails too, the
        // reconciler frees the slot once the reservation is older than its grace period.
        queue.remove(jobId).catch(() => {});
        await ledger.release(workerId, token).catch((releaseError: unknown) => onReleaseError(releaseError, token));
        throw new QueueUnavailableError(error);
      }
      return { jobId, workerId };
    },
  };
}
