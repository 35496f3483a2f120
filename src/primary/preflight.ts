/**
 * What the primary settles before it forks anything: that it does not serve everyone without a key by
 * accident (config/exposure.ts), that the port is free and that a configured Redis's TLS certificate
 * can be verified (either of those two mistakes would otherwise have every process fail and be forked
 * again forever), that sentinels name the configured master (a wrong name would have every process wait
 * forever), and which Redis the processes use: the configured one, or the private redis-server it
 * launches when none is.
 */
import { createServer } from 'node:net';
import type { Config } from '../config/config.js';
import { exposureOf } from '../config/exposure.js';
import type { Logger } from '../logging/logger.js';
import type { ResolvedRedis } from '../local-redis/server.js';
import { redactUrl } from '../redis/redact.js';
import { describeTarget, type RedisTarget } from '../redis/target.js';
import { checkTls } from '../redis/tls-trust.js';
import { findSentinelMaster } from '../redis/sentinel-master.js';
import { portInUse } from '../contracts/process-messages.js';

/**
 * A non-loopback HOST without API_KEY serves every route to anyone who reaches the port: refused
 * unless ALLOW_UNAUTHENTICATED says it is meant, and then said once, as a warning. Exit 1 because a
 * process would serve the same way: no fork can fix it.
 */
export function refuseUnauthenticated(config: Config, logger: Logger): void {
  const exposure = exposureOf(config);
  if (exposure === 'refused') {
    logger.fatal(
      { event: 'auth.key-required', host: config.host, setting: 'API_KEY' },
      `HOST=${config.host} is reachable from other machines and API_KEY is not set, so anyone could enqueue, ` +
        'cancel and read jobs: set API_KEY (16+ characters), listen on 127.0.0.1, or set ALLOW_UNAUTHENTICATED=true ' +
        'to serve without a key on purpose',
    );
    process.exit(1);
  }
  if (exposure === 'open-on-purpose') {
    logger.warn(
      { event: 'auth.unauthenticated', host: config.host, setting: 'ALLOW_UNAUTHENTICATED' },
      `serving without a key on purpose (ALLOW_UNAUTHENTICATED=true): every route of HOST=${config.host} is open to anyone who reaches it`,
    );
  }
}

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
  const configured = configuredTarget(config);
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

/** The Redis the settings name; undefined when the primary is to launch its own. */
function configuredTarget(config: Config): RedisTarget | undefined {
  return (
    config.redisCluster ??
    config.redisSentinel ??
    (config.redisUrl === undefined ? undefined : { kind: 'single', url: config.redisUrl })
  );
}

/**
 * Through Redis Sentinel, the master's `host:port` as the sentinels name it now. A sentinel that knows
 * no master by the configured name, no sentinel answering within REDIS_SENTINEL_START_TIMEOUT_MS, or
 * credentials that the sentinels or the master refuse, stops start-up: each is a mistake of
 * configuration, unlike one Redis that is not up yet (which the processes wait for), since a sentinel
 * setup is up before the services that use it.
 */
export async function findMaster(config: Config, logger: Logger): Promise<string | undefined> {
  const target = config.redisSentinel;
  if (target === undefined) return undefined;
  const verdict = await findSentinelMaster(target, config.sentinelStartTimeoutMs);
  if (verdict.kind === 'master') return verdict.address;
  const redis = describeTarget(target, redactUrl);
  if (verdict.kind === 'refused') {
    const sentinels = verdict.role === 'sentinel';
    logger.fatal(
      {
        event: 'redis.credentials-refused',
        redis,
        role: verdict.role,
        endpoint: verdict.endpoint,
        reason: verdict.reason,
        setting: sentinels ? 'REDIS_SENTINELS' : 'REDIS_PASSWORD',
      },
      sentinels
        ? `sentinel ${verdict.endpoint} refused the credentials of REDIS_SENTINELS (${verdict.reason}): give the sentinels' own password in each entry, as redis://:<password>@host:port`
        : `the master ${verdict.endpoint} that the sentinels name refused REDIS_USERNAME/REDIS_PASSWORD (${verdict.reason}): set them to the master's and replicas' credentials`,
    );
  } else if (verdict.kind === 'unknown-master') {
    logger.fatal(
      {
        event: 'redis.sentinel-master-unknown',
        redis,
        master: target.master,
        sentinel: verdict.sentinel,
        setting: 'REDIS_SENTINEL_MASTER',
      },
      `sentinel ${verdict.sentinel} watches no master named "${target.master}": check REDIS_SENTINEL_MASTER against the sentinels' \`sentinel monitor\` names`,
    );
  } else {
    logger.fatal(
      {
        event: 'redis.sentinels-unreachable',
        redis,
        reasons: verdict.reasons,
        timeoutMs: config.sentinelStartTimeoutMs,
        setting: 'REDIS_SENTINELS',
      },
      `no sentinel of REDIS_SENTINELS answered within ${config.sentinelStartTimeoutMs} ms (REDIS_SENTINEL_START_TIMEOUT_MS): check the addresses, and that the sentinels run`,
    );
  }
  process.exit(1);
}

/**
 * With neither REDIS_URL, REDIS_CLUSTER_NODES nor REDIS_SENTINELS, the private redis-server; its
 * machinery, and the Redis client it needs, load only then. Undefined for a cluster or sentinels:
 * their nodes reach the processes with the environment they inherit.
 */
export async function resolveRedis(config: Config, logger: Logger): Promise<ResolvedRedis | undefined> {
  if (config.redisCluster !== undefined || config.redisSentinel !== undefined) return undefined;
  if (config.redisUrl !== undefined) return { url: config.redisUrl, stop: () => Promise.resolve() };
  const { launchPrivateRedis } = await import('../local-redis/server.js');
  return launchPrivateRedis({ dataDir: config.redisDataDir, searchPath: config.searchPath, logger });
}

/** How the processes' Redis reads in the primary's log: redacted, a cluster by its nodes, sentinels by the master. */
export function describeRedis(config: Config, redis: ResolvedRedis | undefined): string {
  return redis === undefined
    ? describeTarget(configuredTarget(config) ?? { kind: 'single', url: '' }, redactUrl)
    : redactUrl(redis.url);
}

/** Which of the three modes the processes use. */
export function redisModeOf(config: Config): RedisTarget['kind'] {
  return configuredTarget(config)?.kind ?? 'single';
}

/** Whether the port can be listened on now (port 0 always can). */
function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolveFree) => {
    const probe = createServer();
    probe.once('error', () => resolveFree(false));
    probe.listen(port, host, () => probe.close(() => resolveFree(true)));
  });
}
