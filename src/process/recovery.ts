/**
 * Start-up recovery of a process, before it consumes: take the worker id's lease (nothing is
 * recovered without it), put back to waiting the jobs a dead predecessor left running, rebuild the
 * id's counters and its list of running entries, and correct its ledger entries.
 *
 * Only the recount reads every reservation of the id (one script, once per start). The reconcile
 * pass after it is the periodic one, bounded whatever the backlog: everything the predecessor left
 * marked running goes back to queued and its job is checked at once; the rest of the reservations
 * are left to the sweep, so that a process forked again after a crash consumes within about the
 * same time with a million jobs waiting as with none.
 */
import type { Config } from '../config/config.js';
import type { ProcessParts } from './build.js';
import { takeLease } from '../ownership/lease-keeper.js';

export async function recoverOnStart(
  parts: ProcessParts,
  config: Pick<Config, 'hostId' | 'workerTtlMs' | 'workerRetireMs' | 'heartbeatIntervalMs'>,
): Promise<void> {
  await takeLease({
    workerId: parts.workerId,
    hostId: config.hostId,
    leases: parts.leases,
    holderPatienceMs: config.workerTtlMs + 2 * config.heartbeatIntervalMs,
    // A retirement claim lives one TTL past its last renewal; a retirer that died is outlived.
    retirementWaitMs: config.workerRetireMs + 2 * config.workerTtlMs,
    pollMs: config.heartbeatIntervalMs,
    logger: parts.logger,
  });
  await parts.ledger.register(parts.info);
  await parts.reconciler.recoverOrphans();
  await parts.ledger.recount(parts.workerId);
  await parts.reconciler.reconcile();
}
