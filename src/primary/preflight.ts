/**
 * What the primary settles before it forks anything: that the port is free and that a configured
 * Redis's TLS certificate can be verified (either mistake would otherwise have every process fail
 * and be forked again forever), and which Redis the processes use: the configured one, or the
 * private redis-server it launches when none is.
 */
import { createServer } from 'node:net';
import type { Config } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import type { ResolvedRedis } from '../local-redis/server.js';
import { redactUrl } from '../redis/redact.js';
import { describeTarget, type RedisTarget } from '../redis/target.js';
import { checkTls } from '../redis/tls-trust.js';
import { portInUse } from '../contracts/process-messages.js';

/** A taken port would make every process fail to listen and be forked again forever: say so and stop. */
export async function refuseTakenPort(config: Config, logger: Logger): Promise<void> {
  if (await portIsFree(config.port, config.host)) return;
  logger.fatal(
    { event: 'http.port-in-use', port: config.port, host: config.host },
    portInUse(config.port, config.host),
  );
  process.exit(1);
}

/**
 * A Redis whose TLS certificate this process cannot verify would have every process wait for it for
 * ever (ioredis retries as if Redis were away): a mistake of configuration, said at once.
 */
export async function checkConfiguredTls(config: Config, logger: Logger): Promise<void> {
  const configured: RedisTarget | undefined =
    config.redisCluster ?? (config.redisUrl === undefined ? undefined : { kind: 'single', url: config.redisUrl });
  if (configured === undefined) return;
  const tls = await checkTls(configured);
  const redis = describeTarget(configured, redactUrl);
  if (tls.fatal !== undefined) {
    const { message, ...fields } = tls.fatal;
    logger.fatal({ event: 'redis.tls-untrusted', redis, ...fields }, message);
    process.exit(1);
  }
  if (tls.warning !== undefined) {
    const { message, ...fields } = tls.warning;
    logger.warn({ event: 'redis.tls-silent', redis, ...fields }, message);
  }
}

/**
 * With neither REDIS_URL nor REDIS_CLUSTER_NODES, the private redis-server; its machinery, and the
 * Redis client it needs, load only then. Undefined for a cluster: its seed nodes reach the processes
 * with the environment they inherit.
 */
export async function resolveRedis(config: Config, logger: Logger): Promise<ResolvedRedis | undefined> {
  if (config.redisCluster !== undefined) return undefined;
  if (config.redisUrl !== undefined) return { url: config.redisUrl, stop: () => Promise.resolve() };
  const { launchPrivateRedis } = await import('../local-redis/server.js');
  return launchPrivateRedis({ dataDir: config.redisDataDir, searchPath: config.searchPath, logger });
}

/** How the processes' Redis reads in the primary's log: redacted, a cluster by its nodes. */
export function describeRedis(config: Config, redis: ResolvedRedis | undefined): string {
  return redis === undefined
    ? describeTarget(config.redisCluster ?? { kind: 'single', url: '' }, redactUrl)
    : redactUrl(redis.url);
}

/** Whether the port can be listened on now (port 0 always can). */
function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolveFree) => {
    const probe = createServer();
    probe.once('error', () => resolveFree(false));
    probe.listen(port, host, () => probe.close(() => resolveFree(true)));
  });
}
