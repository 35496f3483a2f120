/**
 * Stopping a process, in order, safe to call twice (the second call gets the first one's
 * promise). A clean stop at once stops the consumer taking jobs and lets the running ones finish (up
 * to SHUTDOWN_TIMEOUT_MS) while the lease is still renewed, and meanwhile closes HTTP (its event
 * streams end, and no client holds the close past a deadline) and takes the worker out of selection;
 * then it gives the lease up and closes the rest. Jobs still running at the time-out, or when the
 * lease was lost, are left active in Redis for the id's next owner (or its retirer) to requeue: the
 * connections are cut before the threads are stopped, so that they are not recorded as failed.
 *
 * While Redis is away the stop waits for the running jobs, not for Redis: the steps that only tidy
 * Redis are skipped (an id that is not renewed drops out of selection, a lease expires by itself),
 * and once no job runs the process stops without waiting for BullMQ to record and close.
 */
import type { Server } from 'node:http';
import type { EventStreams } from '../http/event-streams.js';
import { closeServer } from '../http/server-close.js';
import { closeConnection, type RedisClient } from '../redis/connections.js';
import type { Consumer } from '../execution/consumer.js';
import type { Periodic } from '../platform/periodic.js';
import { connectionsOf, type ProcessParts } from './build.js';
import { withDeadline } from '../platform/deadline.js';
import type { Logger } from '../logging/logger.js';

/** How long each background loop may take to stop. */
const LOOP_STOP_TIMEOUT_MS = 5_000;
/**
 * How long a step that only tidies Redis (taking the id out of selection, giving the lease up) may
 * take on a connection that is up: Redis answers it in milliseconds, unless it has just gone.
 */
const TIDY_TIMEOUT_MS = 5_000;
/**
 * How long the HTTP server may take to close: requests under way end within a few COMMAND_TIMEOUT_MS,
 * and event streams are ended at once, so only a client that does not read is left to be cut. It runs
 * beside the drain, and so adds nothing to a stop that waits for running jobs.
 */
const HTTP_CLOSE_DEADLINE_MS = 5_000;
/** How long the spans not yet sent may take to go out at the end of a stop. */
const TRACE_FLUSH_TIMEOUT_MS = 2_000;
/** How often the drain looks whether the jobs are done while Redis is away. */
const AWAY_CHECK_INTERVAL_MS = 50;

export interface Running {
  readonly server: Server;
  /** The server's event streams, which end when the stop begins. */
  readonly streams: EventStreams;
  readonly consumer: Consumer;
  /** Background loops (routing, stealing, reconciling, ..., retirement last), stopped while the consumer drains. */
  readonly loops: readonly { stop(): unknown }[];
  /** The lease's heartbeat: it runs until the running jobs are done. */
  readonly leaseKeeper: Periodic;
}

export interface Shutdown {
  /** Finishes running jobs (within the time-out), then stops. */
  stop(reason: string): Promise<void>;
  /** Stops at once: running jobs are left for whoever owns the id next. */
  abandon(reason: string): Promise<void>;
}

export function createShutdown(
  parts: ProcessParts,
  running: () => Running | undefined,
  shutdownTimeoutMs: number,
): Shutdown {
  const { logger } = parts;
  const step = reportingStep(logger);
  let stopping: Promise<void> | undefined;
  const run = (reason: string, graceful: boolean) => {
    stopping ??= stopInOrder(parts, running, { reason, graceful, shutdownTimeoutMs }, step);
    return stopping;
  };

  return {
    stop: (reason) => run(reason, true),
    async abandon(reason) {
      if (!stopping) return run(reason, false);
      // A graceful stop is under way and waits for running jobs: cut it short.
      logger.warn(
        { event: 'shutdown.cut', reason, running: parts.running.size },
        'stopping at once: running jobs are left for recovery',
      );
      await cut(parts, step);
    },
  };
}

/** One step of the shutdown: its failure is reported, and the steps after it still run. */
type Step = (name: string, action: () => Promise<unknown>) => Promise<void>;

function reportingStep(logger: Logger): Step {
  return async (name, action) => {
    try {
      await action();
    } catch (error) {
      logger.warn({ event: 'shutdown.step-failed', err: error, step: name }, 'shutdown step failed');
    }
  };
}

/**
 * A step that only tidies Redis state whose effect also comes about without it: skipped while its
 * connection is away (it would wait for Redis, or fail), and bounded when it is up.
 */
async function tidy(
  { logger }: ProcessParts,
  step: Step,
  name: string,
  connection: RedisClient,
  action: () => Promise<unknown>,
): Promise<void> {
  const skipped = () =>
    logger.info(
      { event: 'shutdown.step-skipped', step: name, reason: 'redis is away' },
      `${name}: skipped, Redis is away`,
    );
  if (connection.status !== 'ready') return skipped();
  await step(name, async () => {
    try {
      await withDeadline(action(), TIDY_TIMEOUT_MS, `Redis did not answer within ${TIDY_TIMEOUT_MS} ms`);
    } catch (error) {
      // Redis went between the look and the command (the client notices a closed socket a moment
      // late): the same as away before it.
      if (connection.status !== 'ready' || isStreamClosed(error)) return skipped();
      throw error;
    }
  });
}

/** ioredis's refusal of a command on a socket that has closed, before it reports the close. */
function isStreamClosed(error: unknown): boolean {
  return error instanceof Error && /Stream isn't writeable/.test(error.message);
}

async function stopInOrder(
  parts: ProcessParts,
  running: () => Running | undefined,
  { reason, graceful, shutdownTimeoutMs }: { reason: string; graceful: boolean; shutdownTimeoutMs: number },
  step: Step,
): Promise<void> {
  const { logger } = parts;
  logger.info(
    { event: 'shutdown.started', reason, graceful },
    graceful ? 'process shutting down' : 'process stopping at once',
  );
  const started = running();
  // Both at once, and first: the consumer takes no job from here on, and neither the running jobs
  // nor the HTTP clients wait for the other.
  const drained = graceful && started ? drain(parts, started.consumer, shutdownTimeoutMs, step) : false;
  const httpClosed = started
    ? step('http', () =>
        closeServer(started.server, { streams: started.streams, deadlineMs: HTTP_CLOSE_DEADLINE_MS, logger }),
      )
    : undefined;
  // Bounded: a loop that does not stop in time (a BullMQ fetch loop parked by a Redis fault never
  // does) must not hold the running jobs' shutdown back; it dies with the process.
  for (const loop of started?.loops ?? []) {
    await step('background loop', () =>
      withDeadline(
        Promise.resolve(loop.stop()),
        LOOP_STOP_TIMEOUT_MS,
        `did not stop within ${LOOP_STOP_TIMEOUT_MS} ms; left behind`,
      ),
    );
  }
  // Only a holder of the id may take it out of selection: after a lost lease, it is another's. While
  // Redis is away nothing is routed anywhere, and the id drops out of selection once its lease lapses.
  if (graceful) {
    await tidy(parts, step, 'stop routing here', parts.commands, () => parts.ledger.deregister(parts.workerId));
  }
  await httpClosed;
  const jobsDone = await drained;
  started?.leaseKeeper.stop();
  parts.hostMetrics.close();
  if (jobsDone) {
    await tidy(parts, step, 'release the lease', parts.consumerConnection, () => parts.leases.release(parts.workerId));
    await step('thread pool', () => parts.pool.close());
    await step('queues', () => Promise.all([parts.queues.close(), parts.moveQueues.close()]));
    await step('redis', () => Promise.all(connectionsOf(parts).map(closeConnection)));
  } else {
    await cut(parts, step);
  }
  await flushTraces(parts, step);
  logger.info({ event: 'shutdown.done' }, 'process stopped');
}

/**
 * Lets the running jobs finish, up to the time-out; whether they all did and the consumer closed.
 * BullMQ's close records the jobs' ends and closes the consumer's connections, and so waits for Redis
 * while it is away: once no job runs then, the drain stops waiting. The ends of jobs that finished
 * while Redis was away are lost with the process, and those jobs run again after the next start.
 */
async function drain(parts: ProcessParts, consumer: Consumer, timeoutMs: number, step: Step): Promise<boolean> {
  const { logger, running, consumerConnection } = parts;
  logger.info(
    { event: 'shutdown.draining', running: running.size, timeoutMs },
    `waiting for ${running.size} running jobs to finish, up to ${timeoutMs} ms`,
  );
  let drained = false;
  await step('consumer', async () => {
    const idleWhileAway = once(() => running.size === 0 && consumerConnection.status !== 'ready');
    try {
      const outcome = await Promise.race([
        consumer.close(timeoutMs).then((closed) => (closed.drained ? 'drained' : 'timed out')),
        idleWhileAway.promise.then(() => 'redis away' as const),
      ]);
      if (outcome === 'redis away') {
        logger.warn(
          { event: 'shutdown.redis-away', running: running.size },
          'no job is running and Redis is away: stopping without waiting for it (a job that ended while it was away runs again after the next start)',
        );
        return;
      }
      drained = outcome === 'drained';
      logger.info({ event: 'shutdown.consumer-closed', drained }, 'consumer closed');
    } finally {
      idleWhileAway.stop();
    }
  });
  return drained;
}

/** Resolves once `holds` does, looking every AWAY_CHECK_INTERVAL_MS until stopped. */
function once(holds: () => boolean): { readonly promise: Promise<void>; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => {
    const look = () => {
      if (holds()) resolve();
      else timer = setTimeout(look, AWAY_CHECK_INTERVAL_MS);
    };
    look();
  });
  return { promise, stop: () => clearTimeout(timer) };
}

/** Sends the spans not yet sent, within a bound: a collector that does not answer holds no stop. */
async function flushTraces({ tracing }: ProcessParts, step: Step): Promise<void> {
  if (!tracing.enabled) return;
  await step('traces', () => withDeadline(tracing.shutdown(), TRACE_FLUSH_TIMEOUT_MS, 'the collector did not answer'));
}

/** Cuts the connections before stopping the threads, so that the jobs cut off are not recorded as failed. */
async function cut(parts: ProcessParts, step: Step): Promise<void> {
  for (const connection of connectionsOf(parts)) connection.disconnect();
  await step('thread pool', () => parts.pool.destroy());
}
