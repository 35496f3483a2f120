/**
 * What a process keeps per worker id follows the ids in use. Containers that come back under new host
 * names bring new ids with every deploy, and the old ones are retired and then forgotten (see
 * ownership/retirer.ts); a long-lived process would otherwise carry every id it ever met in each
 * reserve's keys and in its queue registries. Each pass reads again which ids the ledgers' calls must
 * cover (a retired id drops out), closes the queue handles of ids the ledger no longer knows, and
 * drops their series of the enqueue counter.
 */
import type { Config } from '../config/config.js';
import { DELAYED_QUEUE, HELD_QUEUE } from '../contracts/names.js';
import type { Ledger } from '../ledger/ledger.js';
import type { ProcessMetrics } from '../metrics/process-metrics.js';
import type { QueueRegistry } from '../queue/queues.js';
import { every, type Periodic } from '../platform/periodic.js';
import type { ProcessParts } from './build.js';

export interface PruneTargets {
  readonly ledgers: readonly Pick<Ledger, 'refreshMembers'>[];
  /** Registered ids and retired ones not yet forgotten: those whose queues may hold jobs. */
  readonly knownWorkers: () => Promise<readonly string[]>;
  readonly registries: readonly Pick<QueueRegistry, 'held' | 'drop'>[];
  /** The enqueue counter's series by assigned worker. */
  readonly metrics: Pick<ProcessMetrics, 'forgetAssignedWorkers'>;
}

export async function pruneWorkerIds({ ledgers, knownWorkers, registries, metrics }: PruneTargets): Promise<void> {
  await Promise.all(ledgers.map((ledger) => ledger.refreshMembers()));
  const known = new Set([...(await knownWorkers()), DELAYED_QUEUE, HELD_QUEUE]);
  await Promise.all(registries.map((registry) => registry.drop(registry.held().filter((id) => !known.has(id)))));
  await metrics.forgetAssignedWorkers(known);
}

export function pruneEvery(parts: ProcessParts, config: Config): Periodic {
  const targets: PruneTargets = {
    ledgers: [parts.ledger, parts.jobLedger],
    knownWorkers: () => parts.ledger.knownWorkers(),
    registries: [parts.queues, parts.moveQueues],
    metrics: parts.metrics,
  };
  return every(
    config.reconcileIntervalMs,
    () => pruneWorkerIds(targets),
    (error) => parts.logger.warn({ event: 'prune.failed', err: error }, 'pruning the state of gone worker ids failed'),
  );
}
