/**
 * The load gauges, built at scrape time from the same Redis snapshot that `GET /workers` returns, so
 * that the gauges, the endpoint and the Redis counters cannot disagree. Queue depth by state comes
 * from BullMQ's own counts.
 *
 * Every series carries the worker's id and the id of the host it runs on, as the ledger records them.
 * Every host reads the same ledger, so every host's `/metrics` carries the same series: dashboards
 * de-duplicate them with `max by (worker, host)`.
 */
import { Gauge, Registry } from 'prom-client';
import type { WorkerLoad } from '../ledger/ledger.js';
import { METRIC_PREFIX } from './process-metrics.js';

export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;
export type QueueCounts = Readonly<Partial<Record<(typeof QUEUE_STATES)[number], number>>>;

/** What the gauges show of each worker in the ledger's snapshot. */
export type WorkerGauges = Pick<WorkerLoad, 'id' | 'hostId' | 'active' | 'queued' | 'concurrency' | 'alive'>;

export async function renderLoadMetrics(
  workers: readonly WorkerGauges[],
  queueCounts: ReadonlyMap<string, QueueCounts>,
): Promise<string> {
  const registry = new Registry();
  const registers = [registry];
  const gauge = (name: string, help: string, labelNames: string[] = ['worker', 'host']) =>
    new Gauge({ name: `${METRIC_PREFIX}${name}`, help, labelNames, registers });
  const active = gauge('worker_active_jobs', 'Jobs running on the worker (load ledger).');
  const queued = gauge('worker_queued_jobs', 'Jobs assigned to the worker and not started (load ledger).');
  const concurrency = gauge('worker_concurrency', 'Jobs the worker runs at once.');
  const up = gauge('worker_up', '1 when the worker sent a heartbeat within WORKER_TTL_MS.');
  const depth = gauge('queue_jobs', 'Jobs in the worker queue, by BullMQ state.', ['worker', 'host', 'state']);
  for (const worker of workers) {
    const labels = { worker: worker.id, host: worker.hostId };
    active.set(labels, worker.active);
    queued.set(labels, worker.queued);
    concurrency.set(labels, worker.concurrency);
    up.set(labels, worker.alive ? 1 : 0);
    const counts = queueCounts.get(worker.id) ?? {};
    for (const state of QUEUE_STATES) depth.set({ ...labels, state }, counts[state] ?? 0);
  }
  return registry.metrics();
}
