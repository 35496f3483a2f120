/**
 * A process's hold on its worker id. It takes the id's lease before it consumes or recovers
 * anything, renews it with its heartbeat, and reacts when the renewal says more:
 *
 * - the lease lapsed (the process was paused, or cut off from Redis, for longer than the TTL) but
 *   nobody took it: the renewal re-acquired it, and the process carries on;
 * - the lease is lost (another process took the id, or a live process retired it): the jobs this
 *   process runs were handed over already, so it must stop running them and exit (`onLost`);
 * - dead ids are due for retirement: handed to `onDue`, but only once this process has held its own
 *   lease without a lapse for a whole TTL, so that after an outage that every process lived through
 *   nobody retires a live worker that simply has not renewed yet.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { LeaseRefusedError } from '../errors.js';
import type { Leases } from '../ledger/lease.js';
import type { Logger } from '../logging/logger.js';
import { every, type Periodic } from '../platform/periodic.js';

export interface TakeLeaseOptions {
  readonly workerId: string;
  readonly hostId: string;
  readonly leases: Pick<Leases, 'acquire'>;
  /** How long a holder is given to show it is alive: one TTL and a little, as it renews within it. */
  readonly holderPatienceMs: number;
  /** How long to wait for a retirement of this id, in progress elsewhere, to end. */
  readonly retirementWaitMs: number;
  readonly pollMs: number;
  readonly logger: Logger;
}

/**
 * Takes the id's lease, waiting out a holder that may be dead (a whole instance killed a moment ago
 * leaves its leases to expire) and a retirement under way. A holder that keeps renewing past the
 * patience is alive: the id is refused.
 */
export async function takeLease(options: TakeLeaseOptions): Promise<void> {
  const { workerId, hostId, leases, pollMs, logger } = options;
  const started = Date.now();
  let said: string | undefined;
  for (;;) {
    const outcome = await leases.acquire(workerId);
    if (outcome.taken) {
      if (outcome.previousHolder !== '')
        logger.info(
          { event: 'lease.taken-over', previousHolder: outcome.previousHolder },
          'took over the lease of this worker id',
        );
      return;
    }
    const patience = outcome.retiring ? options.retirementWaitMs : options.holderPatienceMs;
    if (Date.now() - started > patience)
      throw new LeaseRefusedError(workerId, hostId, outcome.holder, outcome.expiresInMs);
    if (said !== outcome.holder) {
      logger.info(
        {
          event: 'lease.waiting',
          holder: outcome.holder,
          expiresInMs: outcome.expiresInMs,
          retiring: outcome.retiring,
        },
        outcome.retiring
          ? 'this worker id is being retired by another process; waiting for it to finish'
          : 'this worker id is held; waiting to see whether its holder is alive',
      );
      said = outcome.holder;
    }
    await sleep(Math.min(pollMs, Math.max(10, outcome.expiresInMs + 10)));
  }
}

export interface LeaseKeeperOptions {
  readonly workerId: string;
  readonly concurrency: number;
  readonly leases: Pick<Leases, 'renew'>;
  readonly intervalMs: number;
  readonly ttlMs: number;
  /** Whether the worker takes new jobs (false once it drains). */
  readonly routable: () => boolean;
  readonly onLost: () => void;
  readonly onDue: (workerIds: readonly string[]) => void;
  readonly onBeat: () => void;
  readonly logger: Logger;
}

export function keepLease(options: LeaseKeeperOptions): Periodic {
  const { workerId, leases, logger } = options;
  let steadySince = Date.now();
  let lost = false;
  return every(
    options.intervalMs,
    async () => {
      if (lost) return;
      const outcome = await leases.renew(workerId, options.concurrency, options.routable());
      if (!outcome.held) {
        lost = true;
        options.onLost();
        return;
      }
      if (outcome.lapsed) {
        steadySince = Date.now();
        logger.warn(
          { event: 'lease.reacquired' },
          'the lease of this worker id had lapsed and nobody took it: re-acquired, carrying on',
        );
      }
      options.onBeat();
      const due = outcome.dueForRetirement.filter((id) => id !== workerId);
      if (due.length > 0 && Date.now() - steadySince >= options.ttlMs) options.onDue(due);
    },
    (error) => {
      // A renewal that could not reach Redis may have let the lease lapse: start the steady clock again.
      steadySince = Date.now();
      logger.warn({ event: 'lease.heartbeat-failed', err: error }, 'heartbeat failed');
    },
  );
}
