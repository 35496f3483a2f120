/**
 * A process's wait for its Redis at start, for as long as Redis takes: an orchestrator starts the
 * service and its Redis in any order, and a process that gave up would only be forked again, with
 * less said each time. Meanwhile the process serves 503s (http/not-ready.ts) and the log says what it
 * waits for: one line per interval for the whole process (`redis.waiting`), naming the Redis with its
 * password hidden and why it does not answer (code and one-line reason), and one line once every
 * connection is ready (`redis.connected`). The connections' own error lines begin only after they
 * were first ready (`quietUntilReady` in connections.ts), so the wait is not said three times over.
 */
import type { Logger } from '../logging/logger.js';
import { reportOutage } from '../logging/outage.js';
import type { RedisClient } from './connections.js';

export interface RedisWait {
  readonly logger: Logger;
  /** The Redis as logs name it: its URL without the password, or a cluster's seed nodes. */
  readonly redis: string;
}

/** Resolves once every connection is ready; never gives up. */
export function waitForRedis(connections: readonly RedisClient[], { logger, redis }: RedisWait): Promise<void> {
  const outage = reportOutage({
    logger,
    level: 'warn',
    about: { redis },
    error: { event: 'redis.waiting', msg: `waiting for Redis at ${redis}; answering 503 NOT_READY until it answers` },
    restored: { event: 'redis.connected', msg: 'Redis answers; starting' },
  });
  return new Promise((resolve) => {
    const onError = (error: unknown) => outage.error(error);
    const onReady = () => {
      if (connections.some((connection) => connection.status !== 'ready')) return;
      for (const connection of connections) {
        connection.off('error', onError);
        connection.off('ready', onReady);
      }
      outage.restored();
      resolve();
    };
    for (const connection of connections) {
      connection.on('error', onError);
      connection.on('ready', onReady);
    }
    onReady();
  });
}
