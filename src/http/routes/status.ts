/**
 * `GET /workers` and `GET /healthz`: what the cluster is doing, and whether this process can serve.
 */
import { Router } from 'express';
import { fromStore } from '../../errors.js';
import type { WorkerLoad } from '../../ledger/ledger.js';

export interface HealthReport {
  readonly redis: boolean;
  readonly consumer: boolean;
}

export interface StatusRouteOptions {
  readonly snapshot: () => Promise<readonly WorkerLoad[]>;
  readonly health: () => Promise<HealthReport>;
}

export function statusRouter({ snapshot, health }: StatusRouteOptions): Router {
  const router = Router();
  router.get('/workers', async (_req, res) => {
    const workers = await fromStore(snapshot);
    const alive = workers.filter((worker) => worker.alive);
    const sum = (pick: (worker: WorkerLoad) => number, of: readonly WorkerLoad[]) =>
      of.reduce((total, worker) => total + pick(worker), 0);
    res.json({
      workers: workers.map((worker) => ({
        id: worker.id,
        hostId: worker.hostId,
        pid: worker.pid,
        alive: worker.alive,
        active: worker.active,
        queued: worker.queued,
        concurrency: worker.concurrency,
        heartbeatAgeMs: worker.heartbeatAgeMs ?? null,
        startedAt: worker.startedAt > 0 ? new Date(worker.startedAt).toISOString() : null,
        lease:
          worker.lease === undefined
            ? null
            : {
                holderPid: worker.lease.holderPid ?? null,
                retiring: worker.lease.retiring,
                expiresAt: new Date(worker.lease.expiresAt).toISOString(),
                expiresInMs: worker.lease.expiresInMs,
              },
      })),
      totals: {
        workers: workers.length,
        alive: alive.length,
        active: sum((worker) => worker.active, workers),
        queued: sum((worker) => worker.queued, workers),
        capacity: sum((worker) => worker.concurrency, alive),
      },
    });
  });
  router.get('/healthz', async (_req, res) => {
    const report = await health();
    const ok = report.redis && report.consumer;
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', ...report });
  });
  return router;
}
