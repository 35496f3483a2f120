/**
 * Stopping a process, in order, safe to call twice (the second call gets the first one's
 * promise). A clean stop takes the worker out of selection, closes HTTP, lets running jobs finish
 * (up to SHUTDOWN_TIMEOUT_MS) while the lease is still renewed, then gives the lease up and closes
 * the rest. Jobs still running at the time-out, or when the lease was lost, are left active in Redis
 * for the id's next owner (or its retirer) to requeue: the connections are cut before the threads
 * are stopped, so that they are not recorded as failed.
 */
import type { Server } from 'node:http';
import { closeConnection } from '../redis/connections.js';
import type { Consumer } from '../execution/consumer.js';
import type { Periodic } from '../platform/periodic.js';
import type { ProcessParts } from './build.js';
import { withDeadline } from '../platform/deadline.js';
import type { Logger } from '../logging/logger.js';

/** How long each background loop may take to stop. */
const LOOP_STOP_TIMEOUT_MS = 5_000;

export interface Running {
  readonly server: Server;
  readonly consumer: Consumer;
  /** Background loops that stop first: stealing, retirement, reconciling. */
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
  // Only a holder of the id may take it out of selection: after a lost lease, it is another's.
  if (graceful) await step('stop routing here', () => parts.ledger.deregister(parts.workerId));
  if (started) await step('http', () => closeServer(started.server));
  const drained = graceful && started ? await drain(parts, started.consumer, shutdownTimeoutMs, step) : false;
  started?.leaseKeeper.stop();
  parts.hostMetrics.close();
  if (drained) {
    await step('release the lease', () => parts.leases.release(parts.workerId));
    await step('thread pool', () => parts.pool.close());
    await step('queues', () => Promise.all([parts.queues.close(), parts.moveQueues.close()]));
    await step('redis', () =>
      Promise.all([parts.commands, parts.consumerConnection, parts.subscriber].map(closeConnection)),
    );
  } else {
    await cut(parts, step);
  }
  logger.info({ event: 'shutdown.done' }, 'process stopped');
}

/** Lets the running jobs finish, up to the time-out; whether they all did. */
async function drain(parts: ProcessParts, consumer: Consumer, timeoutMs: number, step: Step): Promise<boolean> {
  const { logger } = parts;
  logger.info(
    { event: 'shutdown.draining', running: parts.running.size, timeoutMs },
    `waiting for ${parts.running.size} running jobs to finish, up to ${timeoutMs} ms`,
  );
  let drained = false;
  await step('consumer', async () => {
    ({ drained } = await consumer.close(timeoutMs));
    logger.info({ event: 'shutdown.consumer-closed', drained }, 'consumer closed');
  });
  return drained;
}

/** Cuts the connections before stopping the threads, so that the jobs cut off are not recorded as failed. */
async function cut(parts: ProcessParts, step: Step): Promise<void> {
  parts.commands.disconnect();
  parts.consumerConnection.disconnect();
  parts.subscriber.disconnect();
  await step('thread pool', () => parts.pool.destroy());
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolveClose, rejectClose) => {
    server.close((error) => (error ? rejectClose(error) : resolveClose()));
    server.closeIdleConnections();
  });
}
