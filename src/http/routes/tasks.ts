/**
 * `POST /enqueue-task`: validate, route to the least-loaded worker, answer 202 with where to look.
 * With an `Idempotency-Key`, a repeat of the same request answers the first answer again (200,
 * `Idempotent-Replayed: true`) and enqueues nothing; see src/idempotency/store.ts.
 */
import { Router, type Request } from 'express';
import type { Logger } from '../../logging/logger.js';
import type { Dispatcher } from '../../scheduling/dispatcher.js';
import { setTimeout as sleep } from 'node:timers/promises';
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
import { createEnqueueSchema, describeIssues, type TaskLimits } from '../schemas.js';

export interface TasksRouteOptions {
  readonly dispatcher: Dispatcher;
  readonly idempotency: IdempotencyStore;
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

export function tasksRouter({ dispatcher, idempotency, limits, logger, onEnqueued }: TasksRouteOptions): Router {
  const schema = createEnqueueSchema(limits);
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

  router.post('/enqueue-task', async (req: Request, res) => {
    const key = idempotencyKeyOf(req);
    requireJsonBody(req);
    const parsed = schema.safeParse(req.body);
    if (!parsed.success) {
      throw new ValidationError('Invalid task', { details: describeIssues(parsed.error) });
    }
    const { jobName, data } = parsed.data;
    const answerFor = ({ jobId, workerId }: { jobId: string; workerId: string }): EnqueueAnswer => ({
      message: 'Task enqueued successfully',
      jobId,
      jobName,
      jobData: data,
      assignedWorker: workerId,
    });

    let dispatched: { jobId: string; workerId: string };
    if (key === undefined) {
      dispatched = await dispatcher.dispatch({ jobName, data });
    } else {
      const hash = bodyHash({ jobName, data });
      const claimed = await claim(key, hash);
      if (claimed.kind === 'mismatch') throw new IdempotencyKeyReusedError();
      if (claimed.kind === 'replay') {
        const answer = claimed.answer as EnqueueAnswer;
        res
          .status(200)
          .set('Idempotent-Replayed', 'true')
          .location(`/jobs/${encodeURIComponent(answer.jobId)}`)
          .json(answer);
        return;
      }
      try {
        // The answer is recorded in the transaction that creates the job: a retry after a crash
        // finds either the answer (and the job) or a claim that no job was created for.
        dispatched = await dispatcher.dispatch({
          jobName,
          data,
          record: (where) => idempotency.answerRecord(key, hash, answerFor(where)),
        });
      } catch (error) {
        await idempotency
          .release(key, claimed.token)
          .catch((releaseError: unknown) =>
            logger.warn({ err: releaseError }, 'could not release an idempotency key; a retry waits until it is stale'),
          );
        throw error;
      }
    }
    const { jobId, workerId } = dispatched;
    onEnqueued(workerId, jobName);
    // Per-task lines are debug: above it, a request pays for no log line, not even its arguments.
    if (logger.isLevelEnabled('debug')) logger.debug({ jobId, jobName, assignedWorker: workerId }, 'task enqueued');
    res
      .status(202)
      .location(`/jobs/${encodeURIComponent(jobId)}`)
      .json(answerFor(dispatched));
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
