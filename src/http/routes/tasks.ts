/**
 * `POST /enqueue-task`: validate, route to the least-loaded worker, answer 202 with where to look.
 * `POST /enqueue-tasks`: the same for up to BULK_MAX tasks at once, all accepted or none.
 * A task whose job name nothing here runs (no handler file, not one of the dummy's) is refused with 422
 * before anything is claimed or reserved (see execution/handlers.ts).
 * `POST /jobs/:id/retry`: a failed, cancelled or expired job's task enqueued again as a new job, routed
 * anew (without the expiry: it would have passed).
 * A job is retried once: asking again answers the same new job (it is keyed like an Idempotency-Key),
 * so to run it yet again, retry the new job.
 * With an `Idempotency-Key`, a repeat of the same request answers the first answer again (200,
 * `Idempotent-Replayed: true`) and enqueues nothing; see src/idempotency/store.ts.
 */
import { Router, type Request } from 'express';
import type { Logger } from '../../logging/logger.js';
import { overridesAt, type ClientOverrides, type Dispatched, type DispatchRequest } from '../../contracts/dispatch.js';
import type { Dispatcher } from '../../enqueue/dispatcher.js';
import {
  fromStore,
  InvalidExpiryError,
  InvalidIdempotencyKeyError,
  JobNotRetryableError,
  NotFoundError,
  UnknownJobNameError,
  ValidationError,
} from '../../errors.js';
import type { HandlerRegistry } from '../../execution/handlers.js';
import { IDEMPOTENCY_KEY, type IdempotencyStore } from '../../idempotency/store.js';
import { createOnce } from '../idempotent.js';
import { requireJsonBody } from '../json-body.js';
import { echo } from '../errors.js';
import type { JobReader } from '../../jobs/reader.js';
import {
  createBulkEnqueueSchema,
  createEnqueueSchema,
  describeIssues,
  expiryProblems,
  type TaskLimits,
} from '../schemas.js';
import { isRecord } from '../../platform/is-record.js';
import type { ReplicaAcks } from '../../redis/replica-acks.js';

export interface TasksRouteOptions {
  readonly dispatcher: Dispatcher;
  readonly idempotency: IdempotencyStore;
  readonly replicaAcks?: ReplicaAcks | undefined;
  readonly jobs: JobReader;
  /** Most tasks in one `POST /enqueue-tasks`. */
  readonly bulkMax: number;
  readonly limits: TaskLimits;
  /** The job names a task may have: those with a handler file, and those the dummy is meant to run. */
  readonly jobNames: JobNames;
  readonly logger: Logger;
  readonly onEnqueued: (assignedWorker: string, jobName: string) => void;
}

export type JobNames = Pick<HandlerRegistry, 'accepts' | 'accepted'>;

interface EnqueueAnswer {
  readonly message: string;
  readonly jobId: string;
  readonly jobName: string;
  readonly jobData: unknown;
  /** Null for a delayed job: it is routed when it is due. */
  readonly assignedWorker: string | null;
}

interface RetryAnswer extends EnqueueAnswer {
  /** The failed, cancelled or expired job this one runs again. */
  readonly retryOf: string;
}

/**
 * A task as the dispatcher takes it: its expiry, in either form, as one time, counted from `now` (when
 * its request came). The client's form is what its idempotency key is checked against.
 */
function dispatchRequestOf({ options, ...task }: DispatchRequestInput, now: number): DispatchRequest {
  return options === undefined ? task : { ...task, options: overridesAt(options, now) };
}

type DispatchRequestInput = Omit<DispatchRequest, 'options'> & { readonly options?: ClientOverrides | undefined };

/** One accepted task as the client sees it. */
/** Where a planned answer put its job: what a resumed request adds again (see http/idempotent.ts). */
function plannedOf({ jobId, assignedWorker }: Pick<EnqueueAnswer, 'jobId' | 'assignedWorker'>): Dispatched {
  return { jobId, workerId: assignedWorker };
}

function answerFor(task: DispatchRequest, { jobId, workerId }: Dispatched): EnqueueAnswer {
  return {
    message: 'Task enqueued successfully',
    jobId,
    jobName: task.jobName,
    jobData: task.data,
    assignedWorker: workerId,
  };
}

/** The states of a job `POST /jobs/:id/retry` enqueues again. */
const RETRYABLE = new Set(['failed', 'cancelled', 'expired']);

export function tasksRouter({
  dispatcher,
  idempotency,
  replicaAcks,
  jobs,
  limits,
  bulkMax,
  jobNames,
  logger,
  onEnqueued,
}: TasksRouteOptions): Router {
  /** Refuses, before anything is claimed or reserved, the tasks nothing here is meant to run. */
  const requireKnown = (tasks: readonly { readonly jobName: string }[], pathOf: (index: number) => string) => {
    const unknown = tasks.flatMap(({ jobName }, index) =>
      jobNames.accepts(jobName) ? [] : [{ path: pathOf(index), jobName }],
    );
    if (unknown.length > 0) throw new UnknownJobNameError(unknown, jobNames.accepted);
  };
  /**
   * Refuses, before anything is reserved, the tasks whose expiry cannot be met at `now` (see
   * schemas.ts). Checked once the idempotency key is claimed: a repeat of a request accepted earlier
   * is answered as it was, even once its `expiresAt` has passed, and so is a resumed one (its jobs,
   * some of them added already, must all be).
   */
  const requireExpiries = (tasks: readonly DispatchRequestInput[], now: number, pathOf: (index: number) => string) => {
    const problems = tasks.flatMap(({ options }, index) =>
      options === undefined
        ? []
        : expiryProblems(options, now).map(({ path, message }) => ({ path: `${pathOf(index)}${path}`, message })),
    );
    if (problems.length > 0) throw new InvalidExpiryError(problems);
  };
  const single = createEnqueueSchema(limits);
  const bulk = createBulkEnqueueSchema(limits, bulkMax);
  const router = Router();

  const once = createOnce({ idempotency, replicaAcks, logger });

  const accepted = (task: DispatchRequest, dispatched: Dispatched): EnqueueAnswer => {
    // A delayed job is counted where it goes when it is due.
    if (dispatched.workerId !== null) onEnqueued(dispatched.workerId, task.jobName);
    // Per-task lines are debug: above it, a request pays for no log line, not even its arguments.
    if (logger.isLevelEnabled('debug')) {
      logger.debug(
        { event: 'task.enqueued', jobId: dispatched.jobId, jobName: task.jobName, assignedWorker: dispatched.workerId },
        'task enqueued',
      );
    }
    return answerFor(task, dispatched);
  };

  router.post('/enqueue-task', async (req: Request, res) => {
    const key = idempotencyKeyOf(req);
    requireJsonBody(req);
    const parsed = single.safeParse(req.body);
    if (!parsed.success) throw new ValidationError('Invalid task', { details: describeIssues(parsed.error) });
    const now = Date.now();
    requireKnown([parsed.data], () => 'jobName');
    const task = dispatchRequestOf(parsed.data, now);
    const answer = await once<EnqueueAnswer>(key, res, parsed.data, async (record, resume) => {
      if (resume === undefined) requireExpiries([parsed.data], now, () => 'options.');
      return accepted(
        task,
        await dispatcher.dispatch(
          task,
          record && ((dispatched) => record(answerFor(task, dispatched))),
          resume && plannedOf(resume),
        ),
      );
    });
    if (answer === undefined) return;
    res
      .status(202)
      .location(`/jobs/${encodeURIComponent(answer.jobId)}`)
      .json(answer);
  });

  router.post('/enqueue-tasks', async (req: Request, res) => {
    const key = idempotencyKeyOf(req);
    requireJsonBody(req);
    const parsed = bulk.safeParse(req.body);
    if (!parsed.success) throw new ValidationError('Invalid tasks', { details: describeIssues(parsed.error) });
    const now = Date.now();
    requireKnown(parsed.data.tasks, (index) => `tasks.${index}.jobName`);
    const tasks = parsed.data.tasks.map((task) => dispatchRequestOf(task, now));
    const answer = await once<{ tasks: EnqueueAnswer[] }>(key, res, parsed.data, async (record, resume) => {
      if (resume === undefined) requireExpiries(parsed.data.tasks, now, (index) => `tasks.${index}.options.`);
      const dispatched = await dispatcher.dispatchMany(
        tasks,
        record && ((all) => record({ tasks: all.map((where, i) => answerFor(tasks[i] as DispatchRequest, where)) })),
        resume?.tasks.map(plannedOf),
      );
      return { tasks: dispatched.map((where, i) => accepted(tasks[i] as DispatchRequest, where)) };
    });
    if (answer === undefined) return;
    res.status(202).json(answer);
  });

  router.post('/jobs/:id/retry', async (req: Request, res) => {
    const retryOf = req.params.id as string;
    const view = await fromStore(() => jobs.read(retryOf));
    if (!view) throw new NotFoundError(`No job with id ${echo(retryOf)}`);
    if (!RETRYABLE.has(view.state)) throw new JobNotRetryableError(retryOf, view.state);
    requireKnown([view], () => 'jobName');
    const task: DispatchRequest = {
      jobName: view.jobName,
      group: view.group,
      data: isRecord(view.data) ? view.data : {},
      options: {
        ...(view.priority === null ? {} : { priority: view.priority }),
        attempts: view.attempts,
        ...(view.backoffMs === null ? {} : { backoffMs: view.backoffMs }),
        ...(view.timeoutMs === null ? {} : { timeoutMs: view.timeoutMs }),
      },
    };
    // A space cannot be part of a client's Idempotency-Key, so this key is never one of theirs.
    const answer = await once<RetryAnswer>(`retry ${retryOf}`, res, {}, async (record, resume) => {
      const where = await dispatcher.dispatch(
        task,
        record && ((dispatched) => record({ ...answerFor(task, dispatched), retryOf })),
        resume && plannedOf(resume),
      );
      return { ...accepted(task, where), retryOf };
    });
    if (answer === undefined) return;
    res
      .status(202)
      .location(`/jobs/${encodeURIComponent(answer.jobId)}`)
      .json(answer);
  });
  return router;
}

/** The request's `Idempotency-Key`, if it sent one; a malformed one is refused before anything else. */
function idempotencyKeyOf(req: Request): string | undefined {
  const key = req.get('idempotency-key');
  if (key === undefined) return undefined;
  if (!IDEMPOTENCY_KEY.test(key)) throw new InvalidIdempotencyKeyError();
  return key;
}
