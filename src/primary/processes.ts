/**
 * The primary's forked processes: one per worker index, each given its stable worker id and this
 * run's instance id (which lets a re-forked process take its worker id's lease from its dead
 * predecessor at once). A process that dies is forked again under the same id, with back-off when it
 * keeps dying, unless forking again cannot help: the port is taken, or every index was refused its
 * lease (another live instance holds the ids); then the primary stops, saying why.
 */
import cluster, { type Worker as ForkedProcess } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { createHostMetricsPrimary } from '../metrics/host-metrics-primary.js';
import { workerIdFor } from '../contracts/names.js';
import { sendOver } from '../platform/ipc.js';
import {
  EXIT_LEASE_REFUSED,
  EXIT_PORT_IN_USE,
  FORCE_STOP_MESSAGE,
  isLeaseRefusedMessage,
  PROCESS_READY_MESSAGE,
  portInUse,
} from '../contracts/process-messages.js';
import { readyLine } from './ready-line.js';
import { restartDelay } from './restart-policy.js';

/** How long a scrape waits for a process before using that process's last report. */
const METRICS_COLLECT_TIMEOUT_MS = 2_000;

export interface ProcessesOptions {
  readonly config: Config;
  readonly logger: Logger;
  /** REDIS_URL for every process: the Redis the primary found or launched; undefined for a cluster or sentinels. */
  readonly redisUrl: string | undefined;
  /** Stops the primary, for a death that forking again would not help. */
  readonly stopPrimary: (reason: string) => Promise<void>;
}

export interface Processes {
  /** Forks one process per worker index. */
  forkAll(): void;
  /** Forks no more, and stops every process: each finishes its running jobs, or is killed after `timeoutMs`. */
  stopAll(timeoutMs: number): Promise<void>;
  /** A second signal: every process stops at once, leaving its running jobs for recovery. */
  forceStopAll(): void;
}

export function createProcesses(options: ProcessesOptions): Processes {
  const { config, logger, redisUrl } = options;
  const instance = randomUUID();
  const metrics = createHostMetricsPrimary({ timeoutMs: METRICS_COLLECT_TIMEOUT_MS, hostId: config.hostId, logger });
  const readiness = createReadiness(config, logger);
  const restarts = createRestarts(logger);
  const byChild = new Map<ForkedProcess, number>();

  const fork = (index: number) => {
    const child = cluster.fork({
      BULLPEN_WORKER_INDEX: String(index),
      BULLPEN_INSTANCE_ID: instance,
      ...(redisUrl === undefined ? {} : { REDIS_URL: redisUrl }),
    });
    byChild.set(child, index);
    metrics.attach(child, index);
    child.on('message', (message: unknown) => {
      if (isLeaseRefusedMessage(message)) readiness.refused(index, message.reason);
      // Not 'listening': a process listens at once, and serves only once Redis answers and it holds its id.
      else if (message === PROCESS_READY_MESSAGE) readiness.serving(index);
    });
    logger.info(
      { event: 'process.forked', workerId: workerIdFor(config.hostId, index), childPid: child.process.pid },
      'process forked',
    );
  };

  cluster.on('exit', (child, code, signal) => {
    const index = byChild.get(child);
    byChild.delete(child);
    if (index === undefined) return;
    void metrics
      .detach(child, index)
      .catch((error: unknown) =>
        logger.warn({ event: 'metrics.carry-failed', err: error }, 'could not carry metrics over'),
      );
    if (restarts.stopped() || stopsThePrimary(code, readiness, options)) return;
    const workerId = workerIdFor(config.hostId, index);
    restarts.schedule(index, { workerId, childPid: child.process.pid, code, signal }, fork);
  });

  return {
    forkAll: () => {
      for (let index = 0; index < config.processes; index += 1) fork(index);
    },
    stopAll: (timeoutMs) => {
      restarts.stop();
      return stopChildren([...byChild.keys()], timeoutMs, logger);
    },
    forceStopAll: () => {
      // Through the callback: a process whose channel closes while the message is on its way (it was
      // stopping already) must not turn into an 'error' event nobody hears, which would end the primary.
      for (const child of byChild.keys()) {
        if (child.isConnected()) void sendOver(child, FORCE_STOP_MESSAGE).catch(() => {});
      }
    },
  };
}

interface Readiness {
  /** The index's last process was refused its lease, for this reason. */
  refused(index: number, reason: string): void;
  /** A process of the index serves: the one "ready" line once every index has served. */
  serving(index: number): void;
  /** The reasons, once every index's last process was refused its lease. */
  allRefused(): string[] | undefined;
}

function createReadiness(config: Config, logger: Logger): Readiness {
  /** Indexes whose last process was refused its lease, with why. */
  const refused = new Map<number, string>();
  /** Indexes that have served at least once, for the one "ready" line. */
  const serving = new Set<number>();
  let announced = false;
  return {
    refused: (index, reason) => refused.set(index, reason),
    serving(index) {
      refused.delete(index);
      serving.add(index);
      if (serving.size !== config.processes || announced) return;
      announced = true;
      const { fields, message } = readyLine(config);
      logger.info(fields, message);
    },
    allRefused: () => (refused.size === config.processes ? [...new Set(refused.values())] : undefined),
  };
}

/** Whether a process's exit stops the primary, as forking it again would not help; if so, stops it. */
function stopsThePrimary(
  code: number,
  readiness: Readiness,
  { config, logger, stopPrimary }: ProcessesOptions,
): boolean {
  if (code === EXIT_PORT_IN_USE) {
    logger.fatal(
      { event: 'http.port-in-use', port: config.port, host: config.host },
      portInUse(config.port, config.host),
    );
    void stopPrimary('port in use').finally(() => process.exit(1));
    return true;
  }
  const reasons = code === EXIT_LEASE_REFUSED ? readiness.allRefused() : undefined;
  if (reasons === undefined) return false;
  logger.fatal(
    {
      event: 'lease.refused-all',
      hostId: config.hostId,
      workerIds: Array.from({ length: config.processes }, (_, index) => workerIdFor(config.hostId, index)),
      reasons,
    },
    `none of this instance's worker ids can be taken: ${reasons.join('; ')}`,
  );
  void stopPrimary('lease refused').finally(() => process.exit(1));
  return true;
}

interface Death {
  readonly workerId: string;
  readonly childPid: number | undefined;
  readonly code: number;
  readonly signal: string;
}

interface Restarts {
  /** Forks the index again after its restart delay (restart-policy.ts), unless stopped meanwhile. */
  schedule(index: number, death: Death, fork: (index: number) => void): void;
  /** Whether the shutdown began: deaths from now on are expected, and nothing is forked again. */
  stopped(): boolean;
  stop(): void;
}

function createRestarts(logger: Logger): Restarts {
  const crashes = new Map<number, number[]>();
  const pending = new Set<NodeJS.Timeout>();
  let stopped = false;
  return {
    schedule(index, death, fork) {
      const now = Date.now();
      const history = crashes.get(index) ?? [];
      const delayMs = restartDelay(history, now);
      crashes.set(index, [...history, now].slice(-10));
      logger.warn({ event: 'process.died', ...death, restartInMs: delayMs }, 'process died; forking it again');
      const timer = setTimeout(() => {
        pending.delete(timer);
        if (!stopped) fork(index);
      }, delayMs);
      pending.add(timer);
    },
    stopped: () => stopped,
    stop() {
      stopped = true;
      for (const timer of pending) clearTimeout(timer);
    },
  };
}

function stopChildren(children: readonly ForkedProcess[], timeoutMs: number, logger: Logger): Promise<void> {
  return new Promise((resolveStop) => {
    let remaining = children.filter((child) => !child.isDead());
    if (remaining.length === 0) {
      resolveStop();
      return;
    }
    const timer = setTimeout(() => {
      for (const child of remaining) {
        logger.error(
          { event: 'process.killed', childPid: child.process.pid },
          'process did not stop in time; killing it',
        );
        child.process.kill('SIGKILL');
      }
    }, timeoutMs);
    for (const child of remaining) {
      child.once('exit', () => {
        remaining = remaining.filter((other) => other !== child);
        if (remaining.length === 0) {
          clearTimeout(timer);
          resolveStop();
        }
      });
      // A signal, not a message: a process forked a moment ago may still be loading its modules, and
      // a message sent before it listens is dropped, leaving us to wait out the time-out for it.
      child.process.kill('SIGTERM');
      // Seen under load: a process that was still starting carried on and began serving all the same.
      // Whatever it missed, one that starts serving after the stop began is asked again.
      child.once('listening', () => child.process.kill('SIGTERM'));
    }
  });
}
