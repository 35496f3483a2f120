/**
 * What `GET /metrics` answers: the processes' summed metrics from the primary, followed by the load
 * gauges and the group gauges read from Redis at the moment of the scrape. The ledger's snapshot and
 * the groups' counts are read together, so the group gauges add no round of reads; when Redis is away
 * both fail and so does the scrape, as it did with the load gauges alone.
 */
import type { QueueRegistry } from '../queue/queues.js';
import type { WorkerLoad } from '../ledger/ledger.js';
import type { HostMetricsClient } from './host-metrics-client.js';
import { QUEUE_STATES, renderLoadMetrics, type QueueCounts } from './load-metrics.js';
import { renderGroupMetrics, type GroupLabels } from './group-metrics.js';
import type { GroupTally } from './top-groups.js';

export interface ScrapeOptions {
  readonly host: Pick<HostMetricsClient, 'scrape'>;
  readonly snapshot: () => Promise<readonly WorkerLoad[]>;
  readonly queues: Pick<QueueRegistry, 'forWorker'>;
  /** Every group with work, with its counts: the group ledger's `all()`. */
  readonly groups: () => Promise<readonly GroupTally[]>;
  readonly groupLabels: GroupLabels;
}

export function createScrape({ host, snapshot, queues, groups, groupLabels }: ScrapeOptions): () => Promise<string> {
  return async () => {
    const [processes, workers, tallies] = await Promise.all([host.scrape(), snapshot(), groups()]);
    const counts = new Map<string, QueueCounts>(
      await Promise.all(
        workers.map(
          async (worker) => [worker.id, await queues.forWorker(worker.id).getJobCounts(...QUEUE_STATES)] as const,
        ),
      ),
    );
    const [load, grouped] = await Promise.all([
      renderLoadMetrics(workers, counts),
      renderGroupMetrics(tallies, groupLabels),
    ]);
    return `${processes.trimEnd()}\n\n${load.trimEnd()}\n\n${grouped}`;
  };
}
