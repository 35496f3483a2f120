/**
 * The life of one process: build its parts (build.ts), wait for Redis for as long as it takes
 * (wait-for-redis.ts), take its worker id and recover what its predecessor left (recovery.ts), then
 * start its background work and listen (start.ts). Nothing takes the lease or consumes before Redis
 * answers; when it does not answer within a second, the process listens meanwhile and its port
 * answers 503 `NOT_READY`. This module
 * owns the signals: the process stops gracefully on SIGTERM (which is how the primary asks) and when
 * the primary goes away, and at once when its lease is lost or the primary forwards a second Ctrl-C
 * (shutdown.ts).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { redactUrl } from '../redis/redact.js';
import { describeTarget, type RedisTarget } from '../redis/target.js';
import { waitForRedis } from '../redis/wait-for-redis.js';
import type { Config } from '../config/config.js';
import { LeaseRefusedError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { Tracing } from '../tracing/tracing.js';
import {
  EXIT_LEASE_REFUSED,
  FORCE_STOP_MESSAGE,
  LEASE_REFUSED_MESSAGE,
  type LeaseRefusedMessage,
} from '../contracts/process-messages.js';
import { buildProcess, connectionsOf, type ProcessParts } from './build.js';
import { recoverOnStart } from './recovery.js';
import { createShutdown, type Running, type Shutdown } from './shutdown.js';
import { prepareHttp, startProcess, type Startup } from './start.js';

/** How long a starting process waits for Redis before it listens to say that it waits. */
const LISTEN_EARLY_AFTER_MS = 1_000;

/** The exit code of a process whose lease was lost: the primary forks it again, as after a crash. */
const EXIT_LEASE_LOST = 4;

export async function runProcess(
  config: Config,
  redis: RedisTarget,
  index: number,
  baseLogger: Logger,
  tracing: Tracing,
): Promise<void> {
  // Until start-up completes there is nothing to drain: a lost primary or a SIGTERM ends us at once.
  // The primary stops its processes with SIGTERM rather than a message because a signal also reaches
  // a process that is still loading its modules, where a message would be dropped unheard.
  const exitEarly = () => process.exit(0);
  process.once('disconnect', exitEarly);
  // `on`, not `once`: a group's SIGTERM comes again through the primary, and must not find the default.
  process.on('SIGTERM', exitEarly);
  // A Ctrl-C reaches every process of the terminal's group, one still starting too; the primary
  // coordinates the shutdown, and asks with SIGTERM.
  process.on('SIGINT', () => {});

  const parts = buildProcess(config, redis, index, baseLogger, tracing);
  const startup: Startup = { waitingFor: 'redis', consumer: undefined };
  const http = prepareHttp(parts, config, startup);
  const redisAnswered = waitForRedis(connectionsOf(parts), {
    logger: parts.logger,
    redis: describeTarget(redis, redactUrl),
  });
  // A process forked into a pool that serves finds Redis at once, and listens only once it serves, so
  // that the primary hands it no request before. A Redis that does not answer soon (not there yet, or
  // away) makes it listen now, to say why it cannot serve instead of refusing connections.
  const soon = await Promise.race([
    redisAnswered.then(() => true),
    delay(LISTEN_EARLY_AFTER_MS, false, { ref: false }),
  ]);
  if (!soon) await http.listen();
  await redisAnswered;
  startup.waitingFor = 'lease';
  if (!(await recovered(parts, config))) return;

  // Filled once start-up completes; a shutdown asked for before then has less to stop.
  const started: { running?: Running } = {};
  const shutdown = createShutdown(parts, () => started.running, config.shutdownTimeoutMs);
  started.running = await startProcess(parts, config, http, startup, {
    onLeaseLost: () => {
      parts.logger.error(
        { event: 'lease.lost', hostId: config.hostId },
        'the lease of this worker id was lost (another process took the id, or retired it): its jobs were handed over; stopping them and exiting',
      );
      void shutdown.abandon('lease lost').finally(() => process.exit(EXIT_LEASE_LOST));
    },
  });

  process.off('disconnect', exitEarly);
  process.off('SIGTERM', exitEarly);
  stopOnSignals(shutdown);
}

/**
 * Recovers on start; false when the worker id's lease was refused (another live instance holds it),
 * once the primary is told why and the exit is under way.
 */
async function recovered(parts: ProcessParts, config: Config): Promise<boolean> {
  try {
    await recoverOnStart(parts, config);
    return true;
  } catch (error) {
    if (!(error instanceof LeaseRefusedError)) throw error;
    parts.logger.error({ event: 'lease.refused', hostId: config.hostId, holder: error.holder }, error.message);
    const message: LeaseRefusedMessage = {
      type: LEASE_REFUSED_MESSAGE,
      workerId: parts.workerId,
      reason: error.message,
    };
    process.send?.(message, () => process.exit(EXIT_LEASE_REFUSED));
    setTimeout(() => process.exit(EXIT_LEASE_REFUSED), 1_000).unref();
    return false;
  }
}

function stopOnSignals(shutdown: Shutdown): void {
  const exitAfter = (reason: string) => {
    void shutdown.stop(reason).finally(() => process.exit(0));
  };
  process.on('message', (message) => {
    if (message === FORCE_STOP_MESSAGE) void shutdown.abandon('a second signal').finally(() => process.exit(0));
  });
  // A signal to the whole group (`timeout`, systemd) reaches this process directly and again through
  // the primary: both are the one graceful stop, as `shutdown.stop` gives the second call the first
  // one's promise. Only the primary's message stops at once.
  process.on('SIGTERM', () => exitAfter('SIGTERM'));
  // The IPC channel closes when the primary dies: never outlive it.
  process.on('disconnect', () => exitAfter('primary is gone'));
}
