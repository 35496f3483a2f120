/**
 * The primary: settles the port and Redis first (preflight.ts), forks one process per worker index
 * and forks a dead one again under the same id (processes.ts), and runs the shutdown: the processes
 * first, each finishing its running jobs, then the private Redis if it launched one. This module owns
 * the signals (one signal delivered twice is one stop; a later one stops at once) and that order.
 */
import cluster from 'node:cluster';
import type { Config } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import type { ResolvedRedis } from '../local-redis/server.js';
import {
  checkConfiguredTls,
  describeRedis,
  findMaster,
  redisModeOf,
  refuseTakenPort,
  refuseUnauthenticated,
  resolveRedis,
} from './preflight.js';
import { createProcesses, type Processes } from './processes.js';

/** Beyond the processes' own shutdown timeout, how long the primary waits before killing them. */
const SHUTDOWN_MARGIN_MS = 5_000;

/**
 * A signal sent to the whole process group (`timeout`, a terminal's Ctrl-C, systemd's default
 * `KillMode=control-group`) reaches the primary twice under `npm start`, directly and forwarded by
 * npm, about 1 ms apart. A repeat within this long of the first signal is that same stop; only a later
 * one, as a person sends, stops at once. Not a setting: no person presses Ctrl-C twice faster than this
 * meaning "now", and no copy of one signal arrives this late.
 */
export const REPEAT_SIGNAL_WINDOW_MS = 1_000;

export async function runPrimary(config: Config, logger: Logger): Promise<void> {
  // Processes accept connections themselves: with round-robin, a connection handed to a process that
  // was just killed can hang forever.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const signals = listenForSignals();
  refuseUnauthenticated(config, logger);
  await refuseTakenPort(config, logger);
  await checkConfiguredTls(config, logger);
  const master = await findMaster(config, logger);
  const redis = await resolveRedis(config, logger);
  if (signals.requested() !== undefined) {
    logger.info({ event: 'primary.stopped', signal: signals.requested() }, 'stopped during start-up');
    await redis?.stop();
    process.exit(0);
  }

  const processes = createProcesses({
    config,
    logger,
    redisUrl: redis?.url,
    stopPrimary: (reason) => signals.shutdown(reason),
  });
  processes.forkAll();
  logger.info(
    {
      event: 'primary.started',
      processes: config.processes,
      concurrency: config.concurrency,
      port: config.port,
      redis: describeRedis(config, redis),
      redisMode: redisModeOf(config),
      ...(master === undefined ? {} : { master }),
    },
    'primary started',
  );
  signals.arm(shutdownOf(config, logger, processes, redis));
}

interface Signals {
  /** The first signal that came before there was anything to stop. */
  requested(): string | undefined;
  shutdown(signal: string): Promise<void>;
  /** What a signal (or `shutdown`) runs from now on. */
  arm(shutdown: (signal: string) => Promise<void>): void;
}

/**
 * A signal may come while Redis is still being found or launched: it is remembered, and acted on once
 * there is something to stop.
 */
function listenForSignals(): Signals {
  let requested: string | undefined;
  let shutdown = (signal: string): Promise<void> => {
    requested ??= signal;
    return new Promise(() => {});
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      void shutdown(signal).finally(() => process.exit(0));
    });
  }
  return {
    requested: () => requested,
    shutdown: (signal) => shutdown(signal),
    arm: (armed) => {
      shutdown = armed;
    },
  };
}

/**
 * The processes first, each finishing its running jobs, then the private Redis; a second signal, once
 * REPEAT_SIGNAL_WINDOW_MS has passed since the first, cuts it short.
 */
function shutdownOf(
  config: Config,
  logger: Logger,
  processes: Processes,
  redis: ResolvedRedis | undefined,
): (signal: string) => Promise<void> {
  let stopping: Promise<void> | undefined;
  let startedAt = 0;
  return (signal) => {
    if (stopping) {
      const afterMs = Math.round(performance.now() - startedAt);
      if (afterMs < REPEAT_SIGNAL_WINDOW_MS) {
        logger.info(
          { event: 'shutdown.duplicate-signal', signal, afterMs },
          `a signal ${afterMs} ms after the shutdown began is the same stop (a group's signal arrives twice); ignored`,
        );
        return stopping;
      }
      // A second Ctrl-C: the processes stop at once; their running jobs stay active in Redis and are
      // recovered by whoever owns their worker ids next, as after a crash.
      logger.warn(
        { event: 'shutdown.forced', signal, afterMs },
        'second signal: stopping at once; running jobs are left for recovery at the next start',
      );
      processes.forceStopAll();
      return stopping;
    }
    startedAt = performance.now();
    const repeatAfter = `${REPEAT_SIGNAL_WINDOW_MS / 1_000} s`;
    stopping = (async () => {
      logger.info(
        {
          event: 'shutdown.started',
          signal,
          timeoutMs: config.shutdownTimeoutMs,
          secondSignal: `stops at once after ${repeatAfter}`,
        },
        `shutting down: processes finish their running jobs first (up to SHUTDOWN_TIMEOUT_MS=${config.shutdownTimeoutMs} ms); signal again, ${repeatAfter} or more after the first, to stop at once`,
      );
      await processes.stopAll(config.shutdownTimeoutMs + SHUTDOWN_MARGIN_MS);
      await redis?.stop();
      logger.info({ event: 'primary.stopped' }, 'stopped');
    })();
    return stopping;
  };
}
