/**
 * `GET /workers`, `GET /livez` and `GET /healthz`: what the cluster is doing, whether this process is
 * up (liveness: always, while it answers HTTP), and whether it can serve (readiness: it reaches Redis
 * and its consumer runs). An orchestrator restarts on the first and routes by the second; a process
 * waiting for Redis at start is live but not ready.
 */
import { Router, type Response } from 'express';
import { fromStore, NotReadyError, QueueUnavailableError } from '../../errors.js';
import type { WorkerLoad } from '../../ledger/ledger.js';
import { NOT_READY_RETRY_AFTER_SECONDS, type WaitingFor } from '../not-ready.js';

export interface HealthReport {
  readonly redis: boolean;
  readonly consumer: boolean;
  /** `single`, `cluster` or `sentinel`; absent in tests' apps. */
  readonly redisMode?: string;
  /** Through Redis Sentinel, `host:port` of the master this process reaches now. */
  readonly redisMaster?: string;
}

export interface StatusRouteOptions {
  readonly snapshot: () => Promise<readonly WorkerLoad[]>;
  readonly health: () => Promise<HealthReport>;
  /** What the process still waits for before it serves; always ready when not given (tests' apps). */
  readonly waitingFor?: WaitingFor | undefined;
}

/** Why a process is not ready, in the error shape of the API (`error`, `code`, `details`). */
type Unready = { readonly error: string; readonly code: string; readonly details?: unknown };

function whyUnready(report: HealthReport, waitingFor: WaitingFor | undefined): Unready | undefined {
  const waiting = waitingFor?.();
  if (waiting !== undefined) {
    const { message, code, details } = new NotReadyError(waiting, NOT_READY_RETRY_AFTER_SECONDS);
    return { error: message, code, details };
  }
  if (!report.redis) {
    const { message, code } = new QueueUnavailableError(undefined);
    return { error: message, code };
  }
  if (!report.consumer) return { error: 'The queue consumer of this process is not running', code: 'CONSUMER_STOPPED' };
  return undefined;
}

function answerHealth(res: Response, report: HealthReport, unready: Unready | undefined): void {
  if (unready === undefined) {
    res.json({ status: 'ok', ...report });
    return;
  }
  res
    .status(503)
    .set('Retry-After', String(NOT_READY_RETRY_AFTER_SECONDS))
    .json({ status: 'unavailable', ...report, ...unready });
}

export function statusRouter({ snapshot, health, waitingFor }: StatusRouteOptions): Router {
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
  router.get('/livez', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/healthz', async (_req, res) => {
    const report = await health();
    answerHealth(res, report, whyUnready(report, waitingFor));
  });
  return router;
}
