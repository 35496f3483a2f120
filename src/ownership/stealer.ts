/**
 * Work stealing: a worker with a free slot and nothing of its own waiting takes the oldest waiting
 * job of the live worker with the most waiting work, so that no slot sits idle while another
 * worker's jobs wait. The worker was still chosen at enqueue (and answered to the client); stealing
 * only corrects placements that time proved wrong, as when short jobs free one worker while another
 * is busy with long ones.
 *
 * It runs on every heartbeat, and a moment after a slot frees if the slot is still free then, one
 * pass at a time, and takes at most as many jobs as it has free slots; the ledger decides whether
 * the thief may take more (its own assigned jobs count against its free slots) and from whom.
 */
import type { Logger } from '../logging/logger.js';
import type { MoveLedger } from '../ledger/moves.js';
import { parseJobId } from '../contracts/names.js';
import type { Transfer } from '../queue/transfer.js';
import type { Mover } from './mover.js';

/** Candidates looked at per victim: a few, in case others take the oldest first. */
const CANDIDATES = 4;
/**
 * How long after a slot frees it is looked at again. BullMQ fills a slot from the worker's own queue
 * as it records the end of the job that held it, within a Redis round trip; a pass run at once would
 * find the slot taken again, at the cost of a ledger call for every job that ends.
 */
export const SLOT_SETTLE_MS = 20;

export interface Stealer {
  /** Starts a pass unless one is running; a pass asked for meanwhile runs right after it. */
  trigger(): void;
  /** A slot freed: a pass starts SLOT_SETTLE_MS later if a slot is still free then. */
  slotFreed(): void;
  stop(): Promise<void>;
}

export interface StealerOptions {
  readonly workerId: string;
  readonly ledger: Pick<MoveLedger, 'pickVictim'>;
  readonly transfer: Pick<Transfer, 'oldestWaiting'>;
  readonly mover: Pick<Mover, 'move'>;
  /** Slots of this worker with nothing running. */
  readonly freeSlots: () => number;
  readonly logger: Logger;
}

export function createStealer({ workerId, ledger, transfer, mover, freeSlots, logger }: StealerOptions): Stealer {
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  /** The look at a freed slot that is due; one at a time, however many slots free meanwhile. */
  let settling: NodeJS.Timeout | undefined;

  const stealOne = async (): Promise<boolean> => {
    const victim = await ledger.pickVictim(workerId);
    if (victim === undefined) return false;
    for (const jobId of await transfer.oldestWaiting(victim, CANDIDATES)) {
      const token = parseJobId(jobId)?.token;
      if (token === undefined) continue;
      const outcome = await mover.move({ jobId, token, source: victim, target: workerId, reason: 'stolen' });
      if (outcome === 'moved') {
        logger.debug({ event: 'steal.moved', jobId, from: victim }, 'stole a waiting job');
        return true;
      }
    }
    return false;
  };

  const pass = async () => {
    // Each steal adds to this worker's assigned jobs in the ledger, which stops the next pick once
    // the free slots are spoken for, even before the consumer has started the stolen jobs.
    for (let taken = 0; !stopped && taken < freeSlots(); taken += 1) {
      if (!(await stealOne())) return;
    }
  };

  const run = (): void => {
    running = pass()
      .catch((error: unknown) =>
        logger.warn({ event: 'steal.failed', err: error }, 'work stealing pass failed; the next one retries'),
      )
      .finally(() => {
        running = undefined;
        if (again && !stopped) {
          again = false;
          run();
        }
      });
  };

  const trigger = (): void => {
    if (stopped) return;
    if (running) again = true;
    else run();
  };

  return {
    trigger,
    slotFreed() {
      if (stopped || settling !== undefined) return;
      settling = setTimeout(() => {
        settling = undefined;
        if (freeSlots() > 0) trigger();
      }, SLOT_SETTLE_MS);
      settling.unref();
    },
    async stop() {
      stopped = true;
      clearTimeout(settling);
      await running;
    },
  };
}
