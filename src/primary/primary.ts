/**
 * The primary: finds Redis, forks one process per worker index, gives each a stable id, forks a dead
 * one again under the same id (with back-off when it keeps dying), and runs the shutdown: workers
 * first, each finishing its running jobs, then the private Redis if it launched one.
 *
 * Every process it forks carries this run's instance id, which lets a re-forked process take its
 * worker id's lease from its dead predecessor at once. A worker refused its lease (another live
 * instance holds the id) is forked again with back-off; when every index is refused, the primary
 * exits non-zero with the reason.
 */
import cluster, { type Worker as ForkedProcess } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import type { Config } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { createHostMetricsPrimary } from '../metrics/host-metrics-primary.js';
import { workerIdFor } from '../contracts/names.js';
import { redactUrl } from '../redis/redact.js';
import { describeTarget, type RedisTarget } from '../redis/target.js';
import { checkTls } from '../redis/tls-trust.js';
import type { ResolvedRedis } from '../local-redis/server.js';
import {
  EXIT_LEASE_REFUSED,
  EXIT_PORT_IN_USE,
  FORCE_STOP_MESSAGE,
  isLeaseRefusedMessage,
  portInUse,
} from '../contracts/process-messages.js';
import { restartDelay } from './restart-policy.js';

/** Beyond the workers' own shutdown timeout, how long the primary waits before killing them. */
const SHUTDOWN_MARGIN_MS = 5_000;
/** How long a scrape waits for a worker before using that worker's last report. */
const METRICS_COLLECT_TIMEOUT_MS = 2_000;

export async function runPrimary(config: Config, logger: Logger): Promise<void> {
  // Workers accept connections themselves: with round-robin, a connection handed to a worker that
  // was just killed can hang forever.
  cluster.schedulingPolicy = cluster.SCHED_NONE;

  // A signal may come while Redis is still being found or launched: remember it, and act on it once
  // there is something to stop.
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

  // A taken port would make every worker fail to listen and be forked again forever: say so and stop.
  if (!(await portIsFree(config.port, config.host))) {
    logger.fatal(
      { event: 'http.port-in-use', port: config.port, host: config.host },
      portInUse(config.port, config.host),
    );
    process.exit(1);
  }

  // A Redis whose TLS certificate this process cannot verify would have every worker wait for it for
  // ever (ioredis retries as if Redis were away): a mistake of configuration, said at once.
  const configured: RedisTarget | undefined =
    config.redisCluster ?? (config.redisUrl === undefined ? undefined : { kind: 'single', url: config.redisUrl });
  if (configured !== undefined) {
    const tls = await checkTls(configured);
    const redis = describeTarget(configured, redactUrl);
    if (tls.fatal !== undefined) {
      logger.fatal({ event: 'redis.tls-untrusted', redis }, tls.fatal);
      process.exit(1);
    }
    if (tls.warning !== undefined) logger.warn({ event: 'redis.tls-silent', redis }, tls.warning);
  }

  // With neither REDIS_URL nor REDIS_CLUSTER_NODES, the private redis-server; its machinery, and the
  // Redis client it needs, load only then. A cluster's seed nodes reach the workers with the
  // environment they inherit.
  const redis: ResolvedRedis | undefined =
    config.redisCluster !== undefined
      ? undefined
      : config.redisUrl !== undefined
        ? { url: config.redisUrl, stop: () => Promise.resolve() }
        : await (
            await import('../local-redis/server.js')
          ).launchPrivateRedis({ dataDir: config.redisDataDir, searchPath: config.searchPath, logger });
  if (requested !== undefined) {
    logger.info({ event: 'primary.stopped', signal: requested }, 'stopped during start-up');
    await redis?.stop();
    process.exit(0);
  }

  const instance = randomUUID();
  const metrics = createHostMetricsPrimary({ timeoutMs: METRICS_COLLECT_TIMEOUT_MS, hostId: config.hostId, logger });
  /** Indexes whose last process was refused its lease, with why. */
  const refused = new Map<number, string>();
  /** Indexes that have served at least once, for the one "cluster ready" line. */
  const serving = new Set<number>();
  let announced = false;
  const byWorker = new Map<ForkedProcess, number>();
  const crashes = new Map<number, number[]>();
  const pendingRestarts = new Set<NodeJS.Timeout>();
  let shuttingDown = false;

  const fork = (index: number) => {
    const worker = cluster.fork({
      BULLPEN_WORKER_INDEX: String(index),
      BULLPEN_INSTANCE_ID: instance,
      ...(redis === undefined ? {} : { REDIS_URL: redis.url }),
    });
    byWorker.set(worker, index);
    metrics.attach(worker, index);
    worker.on('message', (message: unknown) => {
      if (isLeaseRefusedMessage(message)) refused.set(index, message.reason);
    });
    worker.once('listening', () => {
      refused.delete(index);
      serving.add(index);
      if (serving.size === config.processes && !announced) {
        announced = true;
        const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.port}`;
        logger.info(
          { event: 'primary.ready', processes: config.processes, url, hostId: config.hostId },
          `ready: ${config.processes} processes serving; try ${url}/workers`,
        );
      }
    });
    logger.info(
      { event: 'process.forked', workerId: workerIdFor(config.hostId, index), childPid: worker.process.pid },
      'process forked',
    );
  };

  cluster.on('exit', (worker, code, signal) => {
    const index = byWorker.get(worker);
    byWorker.delete(worker);
    if (index === undefined) return;
    void metrics
      .detach(worker, index)
      .catch((error: unknown) =>
        logger.warn({ event: 'metrics.carry-failed', err: error }, 'could not carry metrics over'),
      );
    if (shuttingDown) return;
    if (code === EXIT_PORT_IN_USE) {
      logger.fatal(
        { event: 'http.port-in-use', port: config.port, host: config.host },
        portInUse(config.port, config.host),
      );
      void shutdown('port in use').finally(() => process.exit(1));
      return;
    }
    if (code === EXIT_LEASE_REFUSED && refused.size === config.processes) {
      const reasons = [...new Set(refused.values())];
      logger.fatal(
        { event: 'lease.refused-all', hostId: config.hostId, reasons },
        `none of this instance's worker ids can be taken: ${reasons.join('; ')}`,
      );
      void shutdown('lease refused').finally(() => process.exit(1));
      return;
    }
    const now = Date.now();
    const history = crashes.get(index) ?? [];
    const delayMs = restartDelay(history, now);
    crashes.set(index, [...history, now].slice(-10));
    logger.warn(
      {
        event: 'process.died',
        workerId: workerIdFor(config.hostId, index),
        childPid: worker.process.pid,
        code,
        signal,
        restartInMs: delayMs,
      },
      'process died; forking it again',
    );
    const timer = setTimeout(() => {
      pendingRestarts.delete(timer);
      if (!shuttingDown) fork(index);
    }, delayMs);
    pendingRestarts.add(timer);
  });

  for (let index = 0; index < config.processes; index += 1) fork(index);
  logger.info(
    {
      event: 'primary.started',
      processes: config.processes,
      concurrency: config.concurrency,
      port: config.port,
      redis:
        redis === undefined
          ? describeTarget(config.redisCluster ?? { kind: 'single', url: '' }, redactUrl)
          : redactUrl(redis.url),
    },
    'primary started',
  );

  let stopping: Promise<void> | undefined;
  shutdown = (signal: string) => {
    if (stopping) {
      // A second Ctrl-C: the workers stop at once; their running jobs stay active in Redis and are
      // recovered by whoever owns their worker ids next, as after a crash.
      logger.warn(
        { event: 'shutdown.forced', signal },
        'second signal: stopping at once; running jobs are left for recovery at the next start',
      );
      for (const worker of byWorker.keys()) if (worker.isConnected()) worker.send(FORCE_STOP_MESSAGE);
      return stopping;
    }
    stopping = (async () => {
      shuttingDown = true;
      logger.info(
        { event: 'shutdown.started', signal, timeoutMs: config.shutdownTimeoutMs },
        `shutting down: processes finish their running jobs first (up to SHUTDOWN_TIMEOUT_MS=${config.shutdownTimeoutMs} ms); signal again to stop at once`,
      );
      for (const timer of pendingRestarts) clearTimeout(timer);
      await stopWorkers([...byWorker.keys()], config.shutdownTimeoutMs + SHUTDOWN_MARGIN_MS, logger);
      await redis?.stop();
      logger.info({ event: 'primary.stopped' }, 'stopped');
    })();
    return stopping;
  };
}

function stopWorkers(workers: readonly ForkedProcess[], timeoutMs: number, logger: Logger): Promise<void> {
  return new Promise((resolveStop) => {
    let remaining = workers.filter((worker) => !worker.isDead());
    if (remaining.length === 0) {
      resolveStop();
      return;
    }
    const timer = setTimeout(() => {
      for (const worker of remaining) {
        logger.error(
          { event: 'process.killed', childPid: worker.process.pid },
          'process did not stop in time; killing it',
        );
        worker.process.kill('SIGKILL');
      }
    }, timeoutMs);
    for (const worker of remaining) {
      worker.once('exit', () => {
        remaining = remaining.filter((other) => other !== worker);
        if (remaining.length === 0) {
          clearTimeout(timer);
          resolveStop();
        }
      });
      // A signal, not a message: a worker forked a moment ago may still be loading its modules, and
      // a message sent before it listens is dropped, leaving us to wait out the time-out for it.
      worker.process.kill('SIGTERM');
      // Seen under load: a worker that was still starting carried on and began serving all the same.
      // Whatever it missed, one that starts serving after the stop began is asked again.
      worker.once('listening', () => worker.process.kill('SIGTERM'));
    }
  });
}

/** Whether the port can be listened on now (port 0 always can). */
function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolveFree) => {
    const probe = createServer();
    probe.once('error', () => resolveFree(false));
    probe.listen(port, host, () => probe.close(() => resolveFree(true)));
  });
}
