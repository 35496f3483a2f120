/**
 * Accepting a task: reserve a slot on the least-loaded live worker, then add the job to that worker's
 * queue. If the add fails the reservation is released, so a refused task leaves no load behind.
 */
import { randomUUID } from 'node:crypto';
import type { JobsOptions } from 'bullmq';
import { jobIdFor } from '../queue/names.js';
import type { QueueRegistry } from '../queue/queues.js';
import type { Scheduler } from './scheduler.js';
import { NoLiveWorkerError, QueueUnavailableError } from '../errors.js';

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
  readonly scheduler: Pick<Scheduler, 'reserve' | 'release'>;
  readonly queues: Pick<QueueRegistry, 'forWorker'>;
  readonly jobOptions: JobsOptions;
  readonly onReleaseError: (error: unknown, token: string) => void;
}

export function createDispatcher({ scheduler, queues, jobOptions, onReleaseError }: DispatcherOptions): Dispatcher {
  return {
    async dispatch({ jobName, data }) {
      const token = randomUUID();
      const workerId = await scheduler.reserve(token).catch((error: unknown) => {
        throw new QueueUnavailableError(error);
      });
      if (workerId === undefined) throw new NoLiveWorkerError();
      const jobId = jobIdFor(workerId, token);
      try {
        await queues.forWorker(workerId).add(jobName, data, { ...jobOptions, jobId });
      } catch (error) {
        // If this release fails too, the reconciler frees the slot once the reservation is older than
        // its grace period and no job with this id exists.
        await scheduler.release(token).catch((releaseError: unknown) => onReleaseError(releaseError, token));
        throw new QueueUnavailableError(error);
      }
      return { jobId, workerId };
    },
  };
}
