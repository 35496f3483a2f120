/**
 * `GET /jobs`: the jobs of every worker, newest first, a page at a time, optionally filtered by
 * state, worker, job name, group or the schedule that made it. The query is checked strictly (an
 * unknown parameter is a mistake worth telling, not a filter silently ignored); the listing itself
 * lives in `jobs/lister.ts`.
 */
import { Router } from 'express';
import { z } from 'zod';
import { fromStore, ValidationError } from '../../errors.js';
import { decodeCursor, MAX_CURSOR_LENGTH } from '../../jobs/index-cursor.js';
import { DEFAULT_LIST_LIMIT, LISTED_STATES, MAX_LIST_LIMIT, type JobLister } from '../../jobs/lister.js';
import {
  describeIssues,
  groupSchema,
  JOB_NAME_MAX_LENGTH,
  JOB_NAME_PATTERN,
  pageLimitSchema,
  scheduleNameSchema,
} from '../schemas.js';

/** Worker ids as job ids carry them (`contracts/names.ts`). */
const WORKER_ID_PATTERN = /^[A-Za-z0-9_.-]{1,80}$/;

/** Query values are strings; a repeated parameter arrives as an array and is refused as one. */
export const jobListQuerySchema = z
  .object({
    state: z.enum(LISTED_STATES).optional(),
    worker: z.string().regex(WORKER_ID_PATTERN, 'must be a worker id').optional(),
    jobName: z.string().max(JOB_NAME_MAX_LENGTH).regex(JOB_NAME_PATTERN, 'must be a job name').optional(),
    group: groupSchema().optional(),
    schedule: scheduleNameSchema().optional(),
    limit: pageLimitSchema(MAX_LIST_LIMIT).optional(),
    cursor: z
      .string()
      .max(MAX_CURSOR_LENGTH)
      .transform((text, context) => {
        const position = decodeCursor(text);
        if (position === undefined) {
          context.addIssue({ code: 'custom', message: 'must be a nextCursor from an earlier page' });
          return z.NEVER;
        }
        return position;
      })
      .optional(),
  })
  .strict();

export function jobListRouter({ lister }: { lister: Pick<JobLister, 'list'> }): Router {
  const router = Router();
  router.get('/jobs', async (req, res) => {
    const parsed = jobListQuerySchema.safeParse(req.query);
    if (!parsed.success) throw new ValidationError('Invalid query', { details: describeIssues(parsed.error) });
    const { limit, cursor, ...filter } = parsed.data;
    const page = await fromStore(() => lister.list({ filter, limit: limit ?? DEFAULT_LIST_LIMIT, after: cursor }));
    res.json({ jobs: page.jobs, nextCursor: page.nextCursor });
  });
  return router;
}
