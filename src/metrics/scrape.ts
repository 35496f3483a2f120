/**
 * What `GET /metrics` answers: the processes' summed metrics from the primary, followed by the load
 * gauges read from Redis at the moment of the scrape.
 */
import type { QueueRegistry } from '../queue/queues.js';
import type { WorkerLoad } from '../ledger/ledger.js';
import type { HostMetricsClient } from './host-metrics-client.js';
import { QUEUE_STATES, renderLoadMetrics, type QueueCounts } from './load-metrics.js';

export interface ScrapeOptions {
  readonly host: Pick<HostMetricsClient, 'scrape'>;
  readonly snapshot: () => Promise<readonly WorkerLoad[]>;
  readonly queues: Pick<QueueRegistry, 'forWorker'>;
}

export function createScrape({ host, snapshot, queues }: ScrapeOptions): () => Promise<string> {
  return async () => {
    const [processes, workers] = await Promise.all([host.scrape(), snapshot()]);
    const counts = new Map<string, QueueCounts>(
      await Promise.all(
        workers.map(
          async (worker) => [worker.id, await queues.forWorker(worker.id).getJobCounts(...QUEUE_STATES)] as const,
        ),
      ),
    );
    return `${processes.trimEnd()}\n\n${await renderLoadMetrics(workers, counts)}`;
  };
}
