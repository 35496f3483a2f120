/**
 * `GET /jobs/:id`: one job's state, wherever in the cluster it was routed.
 * `DELETE /jobs/:id`: cancels it, whether it waits or runs (see src/cancel/canceller.ts).
 */
import { Router } from 'express';
import type { Canceller } from '../../cancel/canceller.js';
import { fromStore, JobFinishedError, NotFoundError } from '../../errors.js';
import type { JobReader } from '../../jobs/reader.js';
import { echo } from '../errors.js';

export function jobsRouter({ jobs, canceller }: { jobs: JobReader; canceller: Canceller }): Router {
  const router = Router();
  router.get('/jobs/:id', async (req, res) => {
    const view = await fromStore(() => jobs.read(req.params.id));
    if (!view) throw new NotFoundError(`No job with id ${echo(req.params.id)}`);
    res.json(view);
  });
  router.delete('/jobs/:id', async (req, res) => {
    const jobId = req.params.id;
    const outcome = await fromStore(() => canceller.cancel(jobId));
    if (outcome.kind === 'not-found') throw new NotFoundError(`No job with id ${echo(jobId)}`);
    if (outcome.kind === 'finished') throw new JobFinishedError(jobId, outcome.state);
    // A running job whose stop was not seen yet: its tombstone keeps it from ever running again.
    res.status(outcome.kind === 'cancelled' ? 200 : 202).json({ jobId, state: outcome.kind });
  });
  return router;
}
