/**
 * Routes delayed jobs when they fall due. A delayed job waits in the delayed queue (`DELAYED_QUEUE`)
 * and holds no slot anywhere, so it adds no load while it waits. Every process runs a
 * small BullMQ consumer of that queue: BullMQ hands it each job as it falls due, and it reserves a
 * slot on the least-loaded live worker (one ledger call, as for a new task) and adds the job there,
 * keeping its id. A location record, written in the same transaction as the add (on a cluster: just
 * before it, the add leaving a marker in its own slot), tells readers where it went, as it does for a
 * job moved between workers.
 *
 * A routing cut short by a crash is run again by BullMQ (the job stalls back to waiting), and finds
 * the location record if the add happened; a reservation made before the crash, without its add, is
 * freed by the reconciler. With no live worker, or a full backlog, the job waits a second more.
 */
import { DelayedError, Job, UnrecoverableError, Worker, type Queue } from '../queue/bullmq.js';
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from '../redis/connections.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Logger } from '../logging/logger.js';
import { reportOutage } from '../logging/outage.js';
import { CANCELLED_REASON, EXPIRED_REASON, groupOption, HELD_DELAY_MS, pastExpiry } from '../contracts/stored-job.js';
import { carriedOptions } from '../queue/carried-options.js';
import type { GroupLedger } from '../ledger/groups.js';
import { RETRY_AFTER_ERROR_MS, superviseConsumer } from '../queue/supervise.js';
import { parseJobId, queueNameFor, DELAYED_QUEUE, HELD_QUEUE } from '../contracts/names.js';
import type { QueueRegistry } from '../queue/queues.js';

/** Routing is a few Redis calls: a handful in flight serve a burst of jobs falling due together. */
const CONCURRENCY = 16;
/** How long a due job that found no worker (or a full backlog) waits before it tries again. */
const ROUTE_RETRY_MS = 1_000;

export interface DelayedRouterOptions {
  /** The consumer's connection: routing must not fail for a blip. */
  readonly connection: RedisClient;
  readonly prefix: string;
  readonly ledger: Pick<Ledger, 'reserve' | 'release'>;
  /** Where a due job that must wait for its group's turn takes its place in line (on `connection`). */
  readonly groups: Pick<GroupLedger, 'holdOn'>;
  /** Told after a due job was held. */
  readonly onHeld: () => void;
  /** Queue handles on `connection`, so that the add and its location record share one transaction. */
  readonly queues: Pick<QueueRegistry, 'forWorker'>;
  /** The location record of a job by its token (`ledgerKeys(prefix).location`). */
  readonly locationKey: (token: string) => string;
  readonly locationTtlMs: number;
  /** BullMQ's lock on a routing: a routing cut off by a crash is run again within about twice this. */
  readonly lockDurationMs: number;
  readonly wasCancelled: (jobId: string, token: string, enqueuedAt: number) => Promise<boolean>;
  readonly onRouted: (workerId: string, jobName: string) => void;
  /**
   * Told of a due job found past its expiry, which this router failed as expired instead of routing
   * it (it counts it, and drops its entry from the expiries).
   */
  readonly onExpired: (jobId: string, jobName: string) => void;
  readonly logger: Logger;
  /** Fault tests only: awaited after the location of a routing on a cluster (step `located`). */
  readonly afterStep?: ((step: string) => Promise<void>) | undefined;
}

export interface DelayedRouter {
  waitUntilReady(): Promise<void>;
  close(): Promise<void>;
}

/** Left by a routed job's add in its queue's slot, on a cluster: the add happened. */
function routedMarkerKey(queue: Queue, token: string): string {
  return `${queue.qualifiedName}:routed:${token}`;
}

export function createDelayedRouter(options: DelayedRouterOptions): DelayedRouter {
  const { connection, ledger, queues, locationKey, logger } = options;

  /** Jobs fetched, and being routed: the fetch watchdog's signs of life. */
  let fetches = 0;
  let inHand = 0;
  /** Any failure but a cancel puts the job back to wait a little: a due job is never failed here. */
  const route = async (job: Job, lock?: string): Promise<{ routedTo: string } | undefined> => {
    fetches += 1;
    inHand += 1;
    try {
      return await tryRoute(job, lock);
    } catch (error) {
      if (error instanceof DelayedError || error instanceof UnrecoverableError) throw error;
      logger.warn(
        { event: 'delayed.route-retry', err: error, jobId: job.id },
        'could not route a due job; it tries again shortly',
      );
      await job.moveToDelayed(Date.now() + ROUTE_RETRY_MS, lock);
      throw new DelayedError();
    } finally {
      inHand -= 1;
    }
  };

  const tryRoute = async (job: Job, lock?: string): Promise<{ routedTo: string } | undefined> => {
    const jobId = job.id ?? '';
    const token = parseJobId(jobId)?.token ?? jobId;
    if (await options.wasCancelled(jobId, token, job.timestamp)) throw new UnrecoverableError(CANCELLED_REASON);
    const located = await connection.get(locationKey(token));
    // Past its expiry before it found a worker (it waited for one, or was due just before it): it
    // takes no slot and never runs. One routed by an earlier run is judged where it went.
    if (located === null && pastExpiry(job.opts as Record<string, unknown>, Date.now())) {
      options.onExpired(jobId, job.name);
      throw new UnrecoverableError(EXPIRED_REASON);
    }
    if (located !== null) {
      // An earlier run routed it. On a cluster that run may have stopped between the location and
      // the add; the add leaves a marker in its queue's slot, so a missing marker means no add (a
      // job's own state cannot tell: a job that ran may have been removed already).
      const routedTo = located.split('|')[0] ?? '';
      // A hold wrote its location in the transaction that added the job: both happened (and a held
      // job handed to a worker since keeps the held queue among its origins).
      if (located.split(/[|,]/).includes(HELD_QUEUE)) return undefined;
      const target = queues.forWorker(routedTo);
      if (connection.isCluster && (await connection.exists(routedMarkerKey(target, token))) === 0) {
        await addRouted(job, jobId, routedTo, token);
      }
      return undefined;
    }
    const group = groupOption(job.opts as Record<string, unknown>);
    const outcome = await ledger.reserve(token, DELAYED_QUEUE, group);
    if (outcome.kind === 'held') {
      await hold(job, jobId, token, group);
      return { routedTo: HELD_QUEUE };
    }
    if (outcome.kind !== 'reserved') {
      await job.moveToDelayed(Date.now() + ROUTE_RETRY_MS, lock);
      throw new DelayedError();
    }
    const { workerId } = outcome;
    try {
      await addRouted(job, jobId, workerId, token);
    } catch (error) {
      await ledger.release(workerId, token).catch(() => {});
      throw error;
    }
    options.onRouted(workerId, job.name);
    return { routedTo: workerId };
  };

  /** The job, with the options it was enqueued with but its delay, and its location, at once. */
  const addRouted = async (job: Job, jobId: string, workerId: string, token: string) => {
    const target = queues.forWorker(workerId);
    const opts = carriedOptions(job, jobId);
    const client = await target.backend.client;
    const location = `${workerId}|${DELAYED_QUEUE}`;
    const multi = client.multi();
    new Job(target, job.name, job.data as unknown, opts, jobId).addJob(multi).catch(() => {});
    // BullMQ's transaction is ioredis's own; its type only lists the commands BullMQ added.
    const commands = multi as unknown as ChainableCommander;
    if (client.isCluster) {
      // The location is in the ledger's slot, the job in its queue's: a cluster refuses one transaction
      // over both. The location goes first, and the add leaves a marker in its own slot; a routing cut
      // short between the two finds the location without the marker and adds the job. (Its
      // reservation may have been freed meanwhile: the ledger counts the job again when it starts.)
      await connection.set(locationKey(token), location, 'PX', options.locationTtlMs);
      await options.afterStep?.('located');
      commands.set(routedMarkerKey(target, token), '1', 'PX', options.locationTtlMs);
    } else {
      commands.set(locationKey(token), location, 'PX', options.locationTtlMs);
    }
    const results = await multi.exec();
    if (results === null) throw new Error('the transaction was discarded');
    const failure = results.find(([error]: [Error | null, unknown]) => error !== null)?.[0];
    if (failure) throw failure;
  };

  /**
   * A due job that must wait for its group's turn goes to the held queue, with its place in line and
   * its location, in one transaction: all three keys are in the ledger's slot. A routing run again
   * finds the location, and the held queue's add of an id it holds changes nothing.
   */
  const hold = async (job: Job, jobId: string, token: string, group: string) => {
    const heldQueue = queues.forWorker(HELD_QUEUE);
    const client = await heldQueue.backend.client;
    const multi = client.multi();
    const opts = { ...carriedOptions(job, jobId), delay: HELD_DELAY_MS };
    new Job(heldQueue, job.name, job.data as unknown, opts, jobId).addJob(multi).catch(() => {});
    options.groups.holdOn(multi, { jobKey: heldQueue.toKey(jobId), jobId, group, priority: job.opts.priority });
    (multi as unknown as ChainableCommander).set(
      locationKey(token),
      `${HELD_QUEUE}|${DELAYED_QUEUE}`,
      'PX',
      options.locationTtlMs,
    );
    const results = await multi.exec();
    if (results === null) throw new Error('the transaction was discarded');
    const failure = results.find(([error]: [Error | null, unknown]) => error !== null)?.[0];
    if (failure) throw failure;
    options.onHeld();
  };

  const startConsumer = (): Worker => {
    const consumer = new Worker(queueNameFor(DELAYED_QUEUE), route, {
      connection,
      prefix: options.prefix,
      concurrency: CONCURRENCY,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.lockDurationMs,
      // Routed jobs live on in their worker's queue; the copy here would only confuse readers.
      removeOnComplete: { count: 0 },
      // A routing cut off by a Redis outage stalls; it must be routed later, never failed for it.
      maxStalledCount: Number.MAX_SAFE_INTEGER,
      runRetryDelay: RETRY_AFTER_ERROR_MS,
    });
    consumer.on('failed', (job, error) => {
      if (error.message === CANCELLED_REASON) return;
      if (error.message === EXPIRED_REASON) {
        logger.info(
          { event: 'job.expired', jobId: job?.id, jobName: job?.name, by: 'router' },
          'job expired before it started',
        );
        return;
      }
      logger.warn({ event: 'delayed.route-failed', jobId: job?.id, err: error }, 'routing a due job failed');
    });
    consumer.on('error', (error) => outage.error(error));
    consumer.getBackend().on('ready', () => outage.restored());
    return consumer;
  };
  const outage = reportOutage({
    logger,
    level: 'warn',
    about: { consumer: 'delayed job router' },
    error: { event: 'consumer.error', msg: 'delayed job router error' },
    restored: { event: 'consumer.restored', msg: 'delayed job router connected again' },
  });
  // The same parked fetch loop as the consumer's can strand due jobs here (see queue/supervise.ts).
  const supervised = superviseConsumer({
    start: startConsumer,
    redis: connection,
    concurrency: CONCURRENCY,
    busy: () => inHand,
    fetches: () => fetches,
    logger,
    name: 'delayed job router',
  });

  return {
    waitUntilReady: async () => {
      await supervised.current().waitUntilReady();
    },
    // Forced: routings in hand are left to stall and run again (they find their location), and a
    // fetch loop parked by a Redis fault, which a graceful close would wait on for ever, is dropped.
    close: async () => {
      supervised.stop();
      await Promise.all(supervised.all().map((each) => each.close(true)));
    },
  };
}
