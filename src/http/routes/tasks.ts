/**
 * `POST /enqueue-task`: validate, route to the least-loaded worker, answer 202 with where to look.
 * `POST /enqueue-tasks`: the same for up to BULK_MAX tasks at once, all accepted or none.
 * With an `Idempotency-Key`, a repeat of the same request answers the first answer again (200,
 * `Idempotent-Replayed: true`) and enqueues nothing; see src/idempotency/store.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Router, type Request, type Response } from 'express';
import type { Logger } from '../../logging/logger.js';
import type { AtomicRecord, Dispatched, Dispatcher, DispatchRequest } from '../../scheduling/dispatcher.js';
import {
  IdempotencyKeyInUseError,
  IdempotencyKeyReusedError,
  InvalidIdempotencyKeyError,
  MalformedJsonError,
  QueueUnavailableError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../../errors.js';
import { bodyHash, IDEMPOTENCY_KEY, type ClaimOutcome, type IdempotencyStore } from '../../idempotency/store.js';
import { createBulkEnqueueSchema, createEnqueueSchema, describeIssues, type TaskLimits } from '../schemas.js';

export interface TasksRouteOptions {
  readonly dispatcher: Dispatcher;
  readonly idempotency: IdempotencyStore;
  /** Most tasks in one `POST /enqueue-tasks`. */
  readonly bulkMax: number;
  readonly limits: TaskLimits;
  readonly logger: Logger;
  readonly onEnqueued: (assignedWorker: string, jobName: string) => void;
}

/** How long a repeat waits for the first request with its key to answer, before answering 409. */
const IN_USE_WAIT_MS = 2_000;
const IN_USE_POLL_MS = 25;

interface EnqueueAnswer {
  readonly message: string;
  readonly jobId: string;
  readonly jobName: string;
  readonly jobData: unknown;
  readonly assignedWorker: string;
}

/** One accepted task as the client sees it. */
function answerFor(task: DispatchRequest, { jobId, workerId }: Dispatched): EnqueueAnswer {
  return {
    message: 'Task enqueued successfully',
    jobId,
    jobName: task.jobName,
    jobData: task.data,
    assignedWorker: workerId,
  };
}

export function tasksRouter({
  dispatcher,
  idempotency,
  limits,
  bulkMax,
  logger,
  onEnqueued,
}: TasksRouteOptions): Router {
  const single = createEnqueueSchema(limits);
  const bulk = createBulkEnqueueSchema(limits, bulkMax);
  const router = Router();

  /** Claims the key, waiting a little while another request holding it finishes. */
  const claim = async (key: string, hash: string): Promise<Exclude<ClaimOutcome, { kind: 'busy' }>> => {
    const deadline = Date.now() + IN_USE_WAIT_MS;
    for (;;) {
      const outcome = await idempotency.claim(key, hash).catch((error: unknown) => {
        throw new QueueUnavailableError(error);
      });
      if (outcome.kind !== 'busy') return outcome;
      if (Date.now() >= deadline) throw new IdempotencyKeyInUseError(Math.ceil(IN_USE_WAIT_MS / 1000));
      await sleep(IN_USE_POLL_MS);
    }
  };

  /**
   * Runs `enqueue` once per Idempotency-Key: a repeat of the same body gets the first answer again
   * (200, `Idempotent-Replayed: true`). The answer is recorded in the transaction that creates the
   * jobs, so a retry after a crash finds either the answer (and the jobs) or a claim that no job was
   * created for. Without a key, `enqueue` just runs.
   */
  const once = async <A>(
    key: string | undefined,
    res: Response,
    body: unknown,
    enqueue: (record?: (answer: A) => AtomicRecord) => Promise<A>,
  ): Promise<A | undefined> => {
    if (key === undefined) return enqueue();
    const hash = bodyHash(body);
    const claimed = await claim(key, hash);
    if (claimed.kind === 'mismatch') throw new IdempotencyKeyReusedError();
    if (claimed.kind === 'replay') {
      res.status(200).set('Idempotent-Replayed', 'true');
      const location = (claimed.answer as Partial<EnqueueAnswer>).jobId;
      if (location !== undefined) res.location(`/jobs/${encodeURIComponent(location)}`);
      res.json(claimed.answer);
      return undefined;
    }
    try {
      return await enqueue((answer) => idempotency.answerRecord(key, hash, answer));
    } catch (error) {
      await idempotency
        .release(key, claimed.token)
        .catch((releaseError: unknown) =>
          logger.warn({ err: releaseError }, 'could not release an idempotency key; a retry waits until it is stale'),
        );
      throw error;
    }
  };

  const accepted = (task: DispatchRequest, dispatched: Dispatched): EnqueueAnswer => {
    onEnqueued(dispatched.workerId, task.jobName);
    // Per-task lines are debug: above it, a request pays for no log line, not even its arguments.
    if (logger.isLevelEnabled('debug')) {
      logger.debug(
        { jobId: dispatched.jobId, jobName: task.jobName, assignedWorker: dispatched.workerId },
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
    const task = parsed.data;
    const answer = await once<EnqueueAnswer>(key, res, task, async (record) =>
      accepted(task, await dispatcher.dispatch(task, record && ((dispatched) => record(answerFor(task, dispatched))))),
    );
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
    const { tasks } = parsed.data;
    const answer = await once<{ tasks: EnqueueAnswer[] }>(key, res, parsed.data, async (record) => {
      const dispatched = await dispatcher.dispatchMany(
        tasks,
        record && ((all) => record({ tasks: all.map((where, i) => answerFor(tasks[i] as DispatchRequest, where)) })),
      );
      return { tasks: dispatched.map((where, i) => accepted(tasks[i] as DispatchRequest, where)) };
    });
    if (answer === undefined) return;
    res.status(202).json(answer);
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

/**
 * Says what is really wrong with a body that is not a JSON document: no Content-Type, another
 * Content-Type, or no body at all. (`req.is` cannot tell the last two apart: it answers null for
 * any request without a body.) Charsets and encodings the parser refuses are answered by the error
 * handler with their own messages.
 */
function requireJsonBody(req: Request): void {
  const header = req.get('content-type');
  if (header === undefined) throw new UnsupportedMediaTypeError('Content-Type is missing; send application/json');
  const mediaType = header.split(';')[0]?.trim().toLowerCase() ?? '';
  if (mediaType !== 'application/json') {
    throw new UnsupportedMediaTypeError(
      `Content-Type must be application/json, not ${mediaType.slice(0, 80) || 'empty'}`,
    );
  }
  const length = req.get('content-length');
  const chunked = req.get('transfer-encoding') !== undefined;
  if (length === '0' || (length === undefined && !chunked))
    throw new MalformedJsonError('Request body is empty; send a JSON object');
}
