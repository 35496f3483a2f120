/**
 * A queue handle made while Redis does not answer (a worker id first used during a failover or a
 * stall): BullMQ's set-up of the handle times out, and a handle kept after that fails every later
 * command with the same error. The registry forgets it, so that once Redis answers again the queue
 * is reachable from this process without a restart (a sentinel failover test read 503s for 90 s).
 *
 * Single mode only: its subject is the one redis-server hanging (SIGSTOP).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createQueueRegistry, type QueueRegistry } from '../../src/queue/queues.js';
import {
  closeConnection,
  createRedisConnection,
  waitUntilReady,
  type RedisClient,
} from '../../src/redis/connections.js';
import { captureLogger } from '../support/capture-logger.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';

const COMMAND_TIMEOUT_MS = 300;

describe('a queue handle made while Redis does not answer', () => {
  let redis: TestRedis;
  let connection: RedisClient;
  let registry: QueueRegistry;

  before(async () => {
    redis = await startRedis();
    connection = createRedisConnection({ kind: 'single', url: redis.url }, 'command', captureLogger().logger, {
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    await waitUntilReady(connection, 10_000);
    registry = createQueueRegistry({ connection, prefix: 'stalled-handle' });
  });
  after(async () => {
    await registry?.close();
    if (connection) await closeConnection(connection);
    await redis?.stop();
  });

  test('fails while Redis is away, and serves again once it answers, without a restart', async () => {
    redis.signal('SIGSTOP');
    try {
      const during = registry.forWorker('late-0');
      await assert.rejects(during.count(), /timed out/i, 'its set-up cannot finish while Redis is stopped');
    } finally {
      redis.signal('SIGCONT');
    }
    const queue = registry.forWorker('late-0');
    await queue.add('after', {}, { jobId: 'after-1' });
    assert.equal(await queue.count(), 1, 'the queue is reachable through a fresh handle');
    assert.equal(await redis.client.exists(queue.toKey('after-1')), 1);
  });
});
