/**
 * Redis connections, made by their owner and closed by it. Three kinds with different needs:
 *
 * - `command`: requests from HTTP (reserve, add, read). Fails at once while Redis is away (no
 *   offline queue, one retry) and gives up on a hung Redis after a time-out, so a client gets a 503
 *   instead of a hung request. A timed-out command may still run later: everything it can reserve
 *   is keyed by a token and released by the reconciler.
 * - `subscriber`: pub/sub only (a subscribed connection can send nothing else); it waits out
 *   outages like the consumer's, and ioredis subscribes it again after a reconnect.
 * - `consumer`: BullMQ's Worker and the ledger updates of running jobs. It queues commands while
 *   Redis is away and sends them when it returns (`maxRetriesPerRequest: null`), so a job that ends
 *   during an outage is still recorded, in order, when Redis comes back.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisTarget } from './target.js';
import type { Logger } from '../logging/logger.js';
import { throttled } from '../logging/throttle.js';

export type ConnectionRole = 'command' | 'consumer' | 'subscriber';

/** A connection to one Redis, or to a Redis Cluster: the same commands, routed by key on a cluster. */
export type RedisClient = Redis | Cluster;

const ROLE_OPTIONS: Record<ConnectionRole, RedisOptions> = {
  command: { maxRetriesPerRequest: 1, enableOfflineQueue: false },
  consumer: { maxRetriesPerRequest: null },
  subscriber: { maxRetriesPerRequest: null },
};

/** Logs a connection's errors without flooding the log while Redis stays down. */
const ERROR_LOG_INTERVAL_MS = 5_000;

/** How long to wait before reconnecting: soon at first, then every 2 s. */
const retryDelay = (attempt: number) => Math.min(100 * attempt, 2_000);

interface ConnectionOptions {
  readonly commandTimeoutMs?: number;
}

/** A URL is one Redis (tests and tools use this form); a target may be a cluster. */
export function createRedisConnection(
  url: string,
  role: ConnectionRole,
  logger: Logger,
  opts?: ConnectionOptions,
): Redis;
export function createRedisConnection(
  target: RedisTarget,
  role: ConnectionRole,
  logger: Logger,
  opts?: ConnectionOptions,
): RedisClient;
export function createRedisConnection(
  where: RedisTarget | string,
  role: ConnectionRole,
  logger: Logger,
  { commandTimeoutMs }: ConnectionOptions = {},
): RedisClient {
  const target: RedisTarget = typeof where === 'string' ? { kind: 'single', url: where } : where;
  const options: RedisOptions = {
    ...ROLE_OPTIONS[role],
    ...(role === 'command' && commandTimeoutMs !== undefined ? { commandTimeout: commandTimeoutMs } : {}),
    connectionName: `bullpen-${role}`,
    retryStrategy: retryDelay,
  };
  const redis: RedisClient =
    target.kind === 'single'
      ? new Redis(target.url, options)
      : new Cluster([...target.nodes], {
          // The cluster client keeps its own queue of commands while it (re)learns the slots: the
          // role decides whether commands wait there or fail at once, as on one Redis.
          enableOfflineQueue: options.enableOfflineQueue ?? true,
          clusterRetryStrategy: retryDelay,
          // While a slot migrates, a script over its keys answers TRYAGAIN until the move is done;
          // connections that wait out outages wait it out too (measured in redis-cluster.test.ts).
          // Requests keep ioredis's defaults, so that a cluster that is down fails them within ~1 s.
          ...(role === 'command' ? {} : { retryDelayOnTryAgain: 200, maxRedirections: 50 }),
          redisOptions: {
            ...options,
            ...(target.username === undefined ? {} : { username: target.username }),
            ...(target.password === undefined ? {} : { password: target.password }),
            ...(target.tls ? { tls: {} } : {}),
          },
        });
  const report = throttled(ERROR_LOG_INTERVAL_MS, (error: Error, { suppressed }: { suppressed: number }) =>
    logger.warn({ err: error, connection: role, suppressed }, 'redis connection error'),
  );
  redis.on('error', (error: Error) => report(error));
  return redis;
}

export function waitUntilReady(redis: RedisClient, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`Redis was not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}

/** Closes politely, and gives up on a connection that cannot say goodbye (Redis is down). */
export async function closeConnection(redis: RedisClient): Promise<void> {
  if (redis.status === 'end') return;
  try {
    await Promise.race([
      redis.quit(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('quit timed out')), 1_000)),
    ]);
  } catch {
    redis.disconnect();
  }
}
