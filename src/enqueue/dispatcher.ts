/**
 * Accepting a task: reserve a slot on the least-loaded live worker (batched with the other requests of
 * the same event-loop turn), then add the job to that worker's queue (add-placed.ts). A delayed task
 * reserves nothing: it waits in the delayed queue (`DELAYED_QUEUE`), and is routed when due
 * (delayed-router.ts). A refused task leaves nothing behind: if a step fails, what it may have done
 * is undone (undo.ts).
 *
 * A command that timed out on a stalled Redis can still run when Redis resumes. The undo is sent on
 * the same connection, so Redis runs it after the command it undoes; while Redis is unreachable,
 * neither runs.
 *
 * A task that cannot start at once (every worker is busy, or its group waits its turn or is at a
 * limit) is held: added to the held queue with its place in its group's line, in one transaction
 * (ledger/groups.ts). It is answered like any other, with the worker its id is made for; the
 * releaser hands it to the first worker with room when its turn comes.
 *
 * With durable acceptance (ENQUEUE_MIN_REPLICAS), when too few replicas hold an added job in time,
 * the job stays (it is on the master, and runs): the client is told 503 NOT_DURABLE, and a retry with
 * its idempotency key answers that job.
 */
import type { AtomicRecord, Dispatched, DispatchRequest } from '../contracts/dispatch.js';
import type { Tracing } from '../tracing/tracing.js';
import { newToken } from '../contracts/names.js';
import {
  dispatchedOf,
  isDelayed,
  placed,
  placementAttributes,
  replanned,
  waitForDue,
  type Placement,
} from './placement.js';
import { createReserveBatcher } from './reserve-batcher.js';
import type { Ledger } from '../ledger/ledger.js';
import { BacklogFullError, NoLiveWorkerError, QueueUnavailableError } from '../errors.js';
import type { ProcessMetrics } from '../metrics/process-metrics.js';
import { createAddPlaced, type AddPlacedOptions } from './add-placed.js';
import { createUndo } from './undo.js';

export interface Dispatcher {
  /**
   * `record`, given where the job went, is written with it (an idempotency key's answer). `planned`
   * resumes a request that died while adding its job: the job is added where that one planned it,
   * under its id, unless it was added already (see add-jobs.ts).
   */
  dispatch(
    request: DispatchRequest,
    record?: (dispatched: Dispatched) => AtomicRecord,
    planned?: Dispatched,
  ): Promise<Dispatched>;
  /**
   * Several jobs in one reservation call, chosen one after another (so they spread as a burst of
   * single requests would), and added in one transaction: all are accepted, or none.
   */
  dispatchMany(
    requests: readonly DispatchRequest[],
    record?: (dispatched: readonly Dispatched[]) => AtomicRecord,
    planned?: readonly Dispatched[],
  ): Promise<Dispatched[]>;
}

/** What adding needs (add-placed.ts), and what reserving and refusing need besides. */
export interface DispatcherOptions extends Omit<AddPlacedOptions, 'ledger' | 'undo'> {
  readonly ledger: Pick<Ledger, 'reserveMany' | 'release' | 'cancel'>;
  readonly metrics: Pick<ProcessMetrics, 'undoFailed'>;
  /** Told to clients refused for a full backlog: about when a slot should free up. */
  readonly retryAfterSeconds: number;
  /** Where a placement is told to the enqueue's span (see send-span.ts); nothing when tracing is off. */
  readonly tracing?: Pick<Tracing, 'annotate'> | undefined;
}

export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { ledger, logger, metrics, retryAfterSeconds, tracing } = options;
  const reserve = createReserveBatcher((tokens) => ledger.reserveMany(tokens));
  const undo = createUndo(logger, metrics);
  const addDurably = createAddPlaced({ ...options, undo });
  return {
    async dispatch(request, record, planned) {
      if (planned !== undefined) {
        await addDurably([replanned(planned)], [request], record?.(planned), true);
        return planned;
      }
      const token = newToken();
      let placement: Placement;
      if (isDelayed(request)) placement = waitForDue(token);
      else {
        const outcome = await reserve({ token, group: request.group }).catch((error: unknown) => {
          void undo('cancel_reservation', { token }, () => ledger.cancel(token));
          throw new QueueUnavailableError(error);
        });
        if (outcome.kind === 'no-live-worker') throw new NoLiveWorkerError();
        if (outcome.kind === 'backlog-full') throw new BacklogFullError(retryAfterSeconds);
        placement = placed(token, request, outcome);
      }
      const dispatched = dispatchedOf(placement);
      tracing?.annotate(placementAttributes(placement));
      await addDurably([placement], [request], record?.(dispatched));
      return dispatched;
    },

    async dispatchMany(requests, record, planned) {
      if (planned !== undefined) {
        await addDurably(planned.map(replanned), requests, record?.(planned), true);
        return [...planned];
      }
      const tokens = requests.map(() => newToken());
      // Delayed jobs take no slot until they are due: only the others are reserved.
      const toReserve = tokens.filter((_, i) => !isDelayed(requests[i] as DispatchRequest));
      const requestOf = new Map(tokens.map((token, i) => [token, requests[i] as DispatchRequest]));
      const outcomes = await ledger
        .reserveMany(toReserve.map((token) => ({ token, group: requestOf.get(token)?.group })))
        .catch((error: unknown) => {
          // Whether the call ran is unknown: each token is cancelled wherever it may have been reserved.
          // Not awaited, as for one task: the cancels follow the reserve on its connection, and while
          // Redis is away, awaiting them would hold the 503 for a second deadline.
          for (const token of toReserve) void undo('cancel_reservation', { token }, () => ledger.cancel(token));
          throw new QueueUnavailableError(error);
        });
      const outcomeOf = new Map(toReserve.map((token, i) => [token, outcomes[i]]));
      const reserved = toReserve.flatMap((token) => {
        const outcome = outcomeOf.get(token);
        return outcome?.kind === 'reserved' || outcome?.kind === 'held'
          ? [placed(token, requestOf.get(token) as DispatchRequest, outcome)]
          : [];
      });
      // The batch is taken whole or not at all: a backlog that fills part-way refuses all of it,
      // and what was reserved before it filled is released.
      const refused = outcomes.find((outcome) => outcome.kind !== 'reserved' && outcome.kind !== 'held');
      if (refused !== undefined) {
        await Promise.all(
          reserved
            .filter((ids) => ids.reserved)
            .map((ids) => undo('release_reservation', ids, () => ledger.release(ids.queueOf, ids.token))),
        );
        if (refused.kind === 'backlog-full') throw new BacklogFullError(retryAfterSeconds);
        throw new NoLiveWorkerError();
      }
      const byToken = new Map(reserved.map((placement) => [placement.token, placement]));
      const placements = tokens.map((token) => byToken.get(token) ?? waitForDue(token));
      const dispatched = placements.map(dispatchedOf);
      const [first] = placements;
      if (placements.length === 1 && first !== undefined) tracing?.annotate(placementAttributes(first));
      await addDurably(placements, requests, record?.(dispatched));
      return dispatched;
    },
  };
}
