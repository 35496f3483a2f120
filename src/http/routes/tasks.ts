/**
 * `POST /enqueue-task`: validate, route to the least-loaded worker, answer 202 with where to look.
 */
import { Router, type Request } from 'express';
import type { Logger } from '../../logging/logger.js';
import type { Dispatcher } from '../../scheduling/dispatcher.js';
import { MalformedJsonError, UnsupportedMediaTypeError, ValidationError } from '../../errors.js';
import { createEnqueueSchema, describeIssues, type TaskLimits } from '../schemas.js';

export interface TasksRouteOptions {
  readonly dispatcher: Dispatcher;
  readonly limits: TaskLimits;
  readonly logger: Logger;
  readonly onEnqueued: (assignedWorker: string, jobName: string) => void;
}

export function tasksRouter({ dispatcher, limits, logger, onEnqueued }: TasksRouteOptions): Router {
  const schema = createEnqueueSchema(limits);
  const router = Router();
  router.post('/enqueue-task', async (req: Request, res) => {
    requireJsonBody(req);
    const parsed = schema.safeParse(req.body);
    if (!parsed.success) {
      throw new ValidationError('Invalid task', { details: describeIssues(parsed.error) });
    }
    const { jobName, data } = parsed.data;
    const { jobId, workerId } = await dispatcher.dispatch({ jobName, data });
    onEnqueued(workerId, jobName);
    // Per-task lines are debug: above it, a request pays for no log line, not even its arguments.
    if (logger.isLevelEnabled('debug')) logger.debug({ jobId, jobName, assignedWorker: workerId }, 'task enqueued');
    res
      .status(202)
      .location(`/jobs/${encodeURIComponent(jobId)}`)
      .json({ message: 'Task enqueued successfully', jobId, jobName, jobData: data, assignedWorker: workerId });
  });
  return router;
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
