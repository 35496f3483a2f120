/**
 * `POST /enqueue-task`: validate, route to the least-loaded worker, answer 202 with where to look.
 */
import { Router, type Request } from 'express';
import type { Logger } from '../../logging/logger.js';
import type { Dispatcher } from '../../scheduling/dispatcher.js';
import { UnsupportedMediaTypeError, ValidationError } from '../../errors.js';
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
    if (!req.is('application/json')) throw new UnsupportedMediaTypeError();
    const parsed = schema.safeParse(req.body);
    if (!parsed.success) {
      throw new ValidationError('Invalid task', { details: describeIssues(parsed.error) });
    }
    const { jobName, data } = parsed.data;
    const { jobId, workerId } = await dispatcher.dispatch({ jobName, data });
    onEnqueued(workerId, jobName);
    logger.info({ jobId, jobName, assignedWorker: workerId }, 'task enqueued');
    res
      .status(202)
      .location(`/jobs/${encodeURIComponent(jobId)}`)
      .json({ message: 'Task enqueued successfully', jobId, jobName, jobData: data, assignedWorker: workerId });
  });
  return router;
}
