/**
 * Adding placed tasks' jobs: each to the queue of the worker it was placed on, or to the held queue
 * with its place in its group's line (ledger/groups.ts), with its index and expiry entries. A lone job
 * takes BullMQ's own add; several, or one with a record (an idempotency key's answer), go in one
 * transaction (queue/add-jobs.ts). An add that fails undoes its placements (undo.ts), except where a
 * record shows the transaction ran: then its jobs exist, and they stay, so that a retry with the key
 * is answered with jobs that exist.
 *
 * With durable acceptance (ENQUEUE_MIN_REPLICAS), an added job is answered only once enough replicas
 * hold it (redis/replica-acks.ts).
 */
import { Job, type JobsOptions, type Queue } from '../queue/bullmq.js';
import type { RedisClient } from '../redis/connections.js';
import type { AtomicRecord, DispatchRequest } from '../contracts/dispatch.js';
import {
  EXPIRES_OPTION,
  groupOptions,
  HELD_DELAY_MS,
  scheduleOptions,
  TIMEOUT_OPTION,
  traceOptions,
} from '../contracts/stored-job.js';
import type { Placement } from './placement.js';
import type { QueueRegistry } from '../queue/queues.js';
import { addInOneTransaction, type AddStepHook } from '../queue/add-jobs.js';
import type { Ledger } from '../ledger/ledger.js';
import type { GroupLedger } from '../ledger/groups.js';
import { QueueUnavailableError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { ReplicaAcks } from '../redis/replica-acks.js';
import type { Undo } from './undo.js';

/**
 * Adds placed jobs, then, with durable acceptance, waits until enough replicas hold them. `resume`
 * adds under ids a dead request planned, unless they were added already (see add-jobs.ts).
 */
export type AddPlaced = (
  placed: readonly Placement[],
  requests: readonly DispatchRequest[],
  record: AtomicRecord | undefined,
  resume?: boolean,
) => Promise<void>;

export interface AddPlacedOptions {
  readonly ledger: Pick<Ledger, 'release'>;
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
  readonly undo: Undo;
  /** The job index (`jobIndexKey`, contracts/keys.ts): every job gets its entry in the transaction that adds it. */
  readonly indexKey: string;
  /** The expiries (`ledgerKeys(prefix).expiries`): a job with an expiry gets its entry as the index does. */
  readonly expiriesKey: string;
  /** Durable acceptance: each add is confirmed on enough replicas before it is answered. */
  readonly replicaAcks?: ReplicaAcks | undefined;
  /** Fault tests only: awaited after each step of a slot-by-slot add (the tests kill the process there). */
  readonly afterAddStep?: AddStepHook | undefined;
}

export function createAddPlaced({
  ledger,
  groups,
  onHeld,
  queues,
  connection,
  jobOptions,
  logger,
  undo,
  indexKey,
  expiriesKey,
  replicaAcks,
  afterAddStep,
}: AddPlacedOptions): AddPlaced {
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
  return async (placed, requests, record, resume) => {
    await add(placed, requests, record, resume);
    if (placed.some((placement) => placement.held !== undefined)) onHeld();
    await replicaAcks?.confirm(placed.map(({ jobId }) => jobId));
  };
}
