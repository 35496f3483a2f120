/**
 * Entry point: parse the configuration once, then become the primary or a process. Each role
 * loads only its own modules: the primary never needs BullMQ, Express or Piscina, and skipping them
 * makes every start (and every re-fork) cheaper.
 */
import cluster from 'node:cluster';
import { loadConfigFromProcess, type Config } from './config/config.js';
import { createLogger } from './logging/logger.js';
import type { RedisTarget } from './redis/target.js';
import { workerIdFor } from './contracts/names.js';
import { noTracing, type Tracing } from './tracing/tracing.js';

async function start(): Promise<void> {
  let config: Config;
  try {
    config = loadConfigFromProcess();
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
  const role = cluster.isPrimary ? 'primary' : 'process';
  // Only a process that serves traces (the primary handles no request and runs no job), and only
  // with tracing on does it load the SDK.
  const tracing = cluster.isPrimary
    ? noTracing()
    : await tracingOf(config).catch((error: unknown) => {
        process.stderr.write(`tracing could not start: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      });
  const logger = createLogger({
    level: config.logLevel,
    pretty: config.logPretty,
    bindings: { role },
    mixin: tracing.enabled ? () => tracing.logFields() : undefined,
  });
  const running = cluster.isPrimary
    ? import('./primary/primary.js').then(({ runPrimary }) => runPrimary(config, logger))
    : import('./process/run.js').then(({ runProcess }) =>
        runProcess(config, redisTargetOf(config), config.workerIndex ?? 0, logger, tracing),
      );
  return running.catch((error: unknown) => {
    logger.fatal({ event: 'start.failed', err: error }, error instanceof Error ? error.message : 'start-up failed');
    process.exit(1);
  });
}

/** Tracing as configured: the SDK (loaded here, only when on), or nothing. */
async function tracingOf(config: Config): Promise<Tracing> {
  if (config.tracing === undefined) return noTracing();
  const { startTracing } = await import('./tracing/otel.js');
  return startTracing(config.tracing, {
    'service.instance.id': workerIdFor(config.hostId, config.workerIndex ?? 0),
    'host.name': config.hostId,
  });
}

/** A process's Redis: the cluster or sentinels it was configured with, or the URL its primary gave it. */
function redisTargetOf(config: Config): RedisTarget {
  if (config.redisCluster !== undefined) return config.redisCluster;
  if (config.redisSentinel !== undefined) return config.redisSentinel;
  if (config.redisUrl === undefined) throw new Error('a process needs REDIS_URL from its primary');
  return { kind: 'single', url: config.redisUrl };
}

void start();
