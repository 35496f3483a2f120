/**
 * `GET /jobs/:id`: one job's state, wherever in the cluster it was routed.
 */
import { Router } from 'express';
import { fromStore, NotFoundError } from '../../errors.js';
import type { JobReader } from '../../queue/job-reader.js';
import { echo } from '../errors.js';

export function jobsRouter({ jobs }: { jobs: JobReader }): Router {
  const router = Router();
  router.get('/jobs/:id', async (req, res) => {
    const view = await fromStore(() => jobs.read(req.params.id));
    if (!view) throw new NotFoundError(`No job with id ${echo(req.params.id)}`);
    res.json(view);
  });
  return router;
}
