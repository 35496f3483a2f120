/**
 * Accepting a task: reserve a slot on the least-loaded live worker (batched with the other requests of
 * the same event-loop turn), then add the job to that worker's queue. A delayed task reserves nothing:
 * it waits in the delayed queue (`DELAYED_QUEUE`), and is routed when due (delayed-router.ts).
 * A refused task leaves nothing behind: if a step fails, what it may have done is undone.
 *
 * A command that timed out on a stalled Redis can still run when Redis resumes. The undo is sent on
 * the same connection, so Redis runs it after the command it undoes; while Redis is unreachable,
 * neither runs. An undo that fails is logged at warn with the task's token and counted
 * (`bullpen_undo_failures_total`): the client is refused all the same, and the reconciler frees a
 * reservation left behind once it is older than its grace period.
 *
 * An add that carries a record (an idempotency key's answer) is undone only once the record shows
 * that its transaction did not run: a record written means its jobs exist, and they stay, so that a
 * retry with the key is answered with jobs that exist.
 *
 * A task that cannot start at once (every worker is busy, or its group waits its turn or is at a
 * limit) is held: added to the held queue with its place in its group's line, in one transaction
 * (ledger/groups.ts). It is answered like any other, with the worker its id is made for; the
 * releaser hands it to the first worker with room when its turn comes.
 *
 * With durable acceptance (ENQUEUE_MIN_REPLICAS), an added job is answered only once enough replicas
 * hold it (redis/replica-acks.ts). When too few do in time, the job stays (it is on the master, and
 * runs): the client is told 503 NOT_DURABLE, and a retry with its idempotency key answers that job.
 */
import { Job, type JobsOptions, type Queue } from '../queue/bullmq.js';
import type { RedisClient } from '../redis/connections.js';
import type { AtomicRecord, Dispatched, DispatchRequest } from '../contracts/dispatch.js';
import {
  EXPIRES_OPTION,
  groupOptions,
  HELD_DELAY_MS,
  scheduleOptions,
  TIMEOUT_OPTION,
  traceOptions,
} from '../contracts/stored-job.js';
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
import type { QueueRegistry } from '../queue/queues.js';
import { addInOneTransaction, type AddStepHook } from '../queue/add-jobs.js';
import { createReserveBatcher } from './reserve-batcher.js';
import type { Ledger } from '../ledger/ledger.js';
import type { GroupLedger } from '../ledger/groups.js';
import { BacklogFullError, NoLiveWorkerError, QueueUnavailableError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { ProcessMetrics, UndoOperation } from '../metrics/process-metrics.js';
import type { ReplicaAcks } from '../redis/replica-acks.js';

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

export interface DispatcherOptions {
  readonly ledger: Pick<Ledger, 'reserveMany' | 'release' | 'cancel'>;
  /** Where held tasks take their place in their group's line. */
  readonly groups: Pick<GroupLedger, 'holdOn'>;
  /** Told after tasks were held: a worker may have room for a group that may start. */
  readonly onHeld: () => void;
  readonly queues: Pick<QueueRegistry, 'forWorker'>;
  /**
   * The connection the queues were made on: an index entry goes out on it just ahead of its job, and
   * a record is read on it behind a failed add.
   */
  readonly connection: Pick<RedisClient, 'zadd' | 'get' | 'isCluster'>;
  readonly jobOptions: JobsOptions;
  readonly logger: Logger;
  readonly metrics: Pick<ProcessMetrics, 'undoFailed'>;
  /** The job index (`jobIndexKey`, contracts/keys.ts): every job gets its entry in the transaction that adds it. */
  readonly indexKey: string;
  /** The expiries (`ledgerKeys(prefix).expiries`): a job with an expiry gets its entry as the index does. */
  readonly expiriesKey: string;
  /** Told to clients refused for a full backlog: about when a slot should free up. */
  readonly retryAfterSeconds: number;
  /** Durable acceptance: each add is confirmed on enough replicas before it is answered. */
  readonly replicaAcks?: ReplicaAcks | undefined;
  /** Fault tests only: awaited after each step of a slot-by-slot add (the tests kill the process there). */
  readonly afterAddStep?: AddStepHook | undefined;
  /** Where a placement is told to the enqueue's span (see send-span.ts); nothing when tracing is off. */
  readonly tracing?: Pick<Tracing, 'annotate'> | undefined;
}

/** What is left behind when each undo fails, for the log line. */
const UNDO_FAILED: Record<UndoOperation, string> = {
  cancel_reservation:
    'could not cancel the reservation of a refused task; the reconciler frees it after its grace period',
  remove_job:
    'could not remove the job of a refused task; if its worker takes it, it runs although its client was told 503',
  release_reservation:
    'could not release the reservation of a refused task; the reconciler frees it after its grace period',
};

export function createDispatcher({
  ledger,
  groups,
  onHeld,
  queues,
  connection,
  jobOptions,
  logger,
  metrics,
  indexKey,
  expiriesKey,
  retryAfterSeconds,
  replicaAcks,
  afterAddStep,
  tracing,
}: DispatcherOptions): Dispatcher {
  const reserve = createReserveBatcher((tokens) => ledger.reserveMany(tokens));
  /** Runs one undo step; its failure is logged and counted, never thrown. */
  const undo = async (
    operation: UndoOperation,
    ids: { token: string; jobId?: string; workerId?: string },
    step: () => Promise<unknown>,
  ) => {
    try {
      await step();
    } catch (error) {
      metrics.undoFailed(operation);
      logger.warn({ event: 'enqueue.undo-failed', err: error, operation, ...ids }, UNDO_FAILED[operation]);
    }
  };
  const optionsFor = (
    jobId: string,
    { group, options: overrides = {}, schedule, trace }: Omit<DispatchRequest, 'jobName' | 'data'>,
  ): JobsOptions => ({
    ...jobOptions,
    jobId,
    ...groupOptions(group),
    ...scheduleOptions(schedule),
    ...traceOptions(trace),
    ...(overrides.priority === undefined ? {} : { priority: overrides.priority }),
    ...(overrides.attempts === undefined ? {} : { attempts: overrides.attempts }),
    ...(overrides.backoffMs === undefined ? {} : { backoff: { type: 'exponential', delay: overrides.backoffMs } }),
    ...(overrides.timeoutMs === undefined ? {} : { [TIMEOUT_OPTION]: overrides.timeoutMs }),
    ...(overrides.delayMs ? { delay: overrides.delayMs } : {}),
    ...(overrides.expiresAt === undefined ? {} : { [EXPIRES_OPTION]: overrides.expiresAt }),
  });
  const newJob = (queue: Queue, request: DispatchRequest, { jobId, timestamp, held }: Placement) =>
    new Job(
      queue,
      request.jobName,
      request.data,
      { ...optionsFor(jobId, request), timestamp, ...(held ? { delay: HELD_DELAY_MS } : {}) },
      jobId,
    );
  /**
   * After a failed add. Best effort: a job already taken by its worker cannot be removed, and then
   * runs although its client was told 503 (delivery is at-least-once). If a release fails too, the
   * reconciler frees the slot once the reservation is older than its grace period.
   */
  const undoAdd = async (added: readonly Placement[]) => {
    await Promise.all(
      added.map(async ({ token, jobId, queueOf, reserved }) => {
        const ids = { token, jobId, workerId: queueOf };
        void undo('remove_job', ids, () => queues.forWorker(queueOf).remove(jobId));
        if (reserved) await undo('release_reservation', ids, () => ledger.release(queueOf, token));
      }),
    );
  };
  /**
   * Adds placed jobs, undoing the placements if it fails. Several jobs, or one with a record, go in
   * one transaction. A lone job takes the cheaper path of BullMQ's own add. A reserved job's index
   * entry was written by its reservation, with the time the job is stamped with; a delayed job's is
   * written here, in the transaction, or sent just ahead of a lone add on the same connection. An
   * entry whose add then fails names no job, and the listing drops it once it is old enough to be
   * sure (see jobs/lister.ts). The expiry entry of a job with an expiry goes the same way as a delayed
   * job's index entry (see expiry/expirer.ts).
   */
  const add = async (
    placed: readonly Placement[],
    requests: readonly DispatchRequest[],
    record: AtomicRecord | undefined,
    resume = false,
  ): Promise<void> => {
    try {
      const [lone] = placed;
      if (placed.length === 1 && lone !== undefined && record === undefined && lone.held === undefined) {
        const request = requests[0] as DispatchRequest;
        const queue = queues.forWorker(lone.queueOf);
        const { jobId, timestamp } = lone;
        const expiresAt = request.options?.expiresAt;
        await Promise.all([
          lone.reserved ? undefined : connection.zadd(indexKey, timestamp, jobId),
          expiresAt === undefined ? undefined : connection.zadd(expiriesKey, expiresAt, jobId),
          queue.add(request.jobName, request.data, { ...optionsFor(jobId, request), timestamp }),
        ]);
        return;
      }
      await addInOneTransaction(
        placed.map((placement, i) => {
          const queue = queues.forWorker(placement.queueOf);
          const request = requests[i] as DispatchRequest;
          const job = newJob(queue, request, placement);
          const { held } = placement;
          return {
            queue,
            job,
            indexed: placement.reserved,
            expiresAt: request.options?.expiresAt,
            alongside:
              held &&
              ((pipeline: object) =>
                groups.holdOn(pipeline, {
                  jobKey: queue.toKey(placement.jobId),
                  jobId: placement.jobId,
                  group: held.group,
                  priority: request.options?.priority,
                })),
          };
        }),
        { index: indexKey, expiries: expiriesKey },
        record,
        { resume, afterStep: afterAddStep },
      );
    } catch (error) {
      if (record === undefined || (await notWritten(record, placed))) await undoAdd(placed);
      throw new QueueUnavailableError(error);
    }
  };
  /**
   * Whether the transaction that was to write `record` with the jobs certainly did not run. On one
   * Redis the record is read on the connection the transaction went on, so Redis answers only after
   * running it, if it runs at all (a timed-out transaction may run late): still not the answer means
   * it did not run and never will. The answer means the jobs exist; a read that fails too leaves it
   * unknown. Either way nothing is undone, and a slot reserved for a transaction that never ran is
   * freed by the reconciler. On a cluster a plan may be written, which the retry finishes.
   */
  const notWritten = async (record: AtomicRecord, placed: readonly Placement[]): Promise<boolean> => {
    if (connection.isCluster) return false;
    const written = await connection.get(record.key).then(
      (value) => value === record.value,
      () => undefined,
    );
    if (written === false) return true;
    const [first] = placed;
    logger.warn(
      { event: 'enqueue.kept', token: first?.token, jobId: first?.jobId, outcome: written ? 'added' : 'unknown' },
      written
        ? 'an add reported as failed had run: its jobs stay, and a retry with its idempotency key gets them'
        : 'whether a failed add ran is unknown: its jobs, if any, stay for a retry with its idempotency key',
    );
    return false;
  };
  /** Adds placed jobs, then, with durable acceptance, waits until enough replicas hold them. */
  const addDurably: typeof add = async (placed, requests, record, resume) => {
    await add(placed, requests, record, resume);
    if (placed.some((placement) => placement.held !== undefined)) onHeld();
    await replicaAcks?.confirm(placed.map(({ jobId }) => jobId));
  };
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
