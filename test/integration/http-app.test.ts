/**
 * The HTTP API in-process on port 0 against a real Redis, for the answers that need Redis in a
 * particular state: no live worker, or no Redis at all.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { createQueueRegistry, type QueueRegistry } from '../../src/queue/queues.js';
import { closeConnection, createRedisConnection, waitUntilReady } from '../../src/redis/connections.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { serveApp, type InProcessApp } from '../support/in-process-app.js';
import { joinWorkers } from '../support/ledger.js';
import { loadConfig } from '../../src/config/config.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { waitFor } from '../support/wait.js';

const logger = pino({ level: 'silent' });
const config = loadConfig({ QUEUE_PREFIX: 'app-test' });

let redis: TestRedis;
let connection: Redis;
let scheduler: Ledger;
let queues: QueueRegistry;
let app: InProcessApp;
let base: string;

async function post(
  body: unknown,
): Promise<{ status: number; body: { code?: string; error?: string; assignedWorker?: string } }> {
  const response = await fetch(`${base}/enqueue-task`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: response.status, body: (await response.json()) as { code?: string; error?: string } };
}

describe('HTTP API with Redis in odd states', () => {
  before(async () => {
    redis = await startRedis();
    connection = createRedisConnection(redis.url, 'command', logger);
    await waitUntilReady(connection, 10_000);
    queues = createQueueRegistry({ connection, prefix: config.prefix });
    app = await serveApp({
      connection,
      queues,
      prefix: config.prefix,
      logger,
      health: async () => ({
        redis: await connection.ping().then(
          () => true,
          () => false,
        ),
        consumer: true,
      }),
    });
    scheduler = app.ledger;
    base = app.url;
  });

  after(async () => {
    await app?.close();
    await queues?.close();
    await closeConnection(connection);
    await redis?.stop();
  });

  test('with no live worker, enqueue answers 503 and reserves nothing', async () => {
    const response = await post({ jobName: 'nobody-home' });
    assert.equal(response.status, 503);
    assert.equal(response.body.code, 'NO_LIVE_WORKER');
    assert.deepEqual(await redis.client.keys(`${scheduler.keys.jobs('')}*`), []);
  });

  test("with a live worker, the job lands in that worker's queue", async () => {
    await joinWorkers(connection, config.prefix, ['solo-0']);
    const response = await post({ jobName: 'hello' });
    assert.equal(response.status, 202);
    assert.equal(response.body.assignedWorker, 'solo-0');
    assert.equal(await queues.forWorker('solo-0').getWaitingCount(), 1);
  });

  test('with Redis down, enqueue and healthz answer 503 without internals, and recover when it returns', async () => {
    await redis.stopServer();
    try {
      const response = await post({ jobName: 'during-outage' });
      assert.equal(response.status, 503);
      assert.equal(response.body.code, 'QUEUE_UNAVAILABLE');
      assert.doesNotMatch(JSON.stringify(response.body), /ECONNREFUSED|Connection is closed|stream/i);
      const health = await fetch(`${base}/healthz`);
      assert.equal(health.status, 503);
      assert.deepEqual(await health.json(), {
        status: 'unavailable',
        redis: false,
        consumer: true,
        error: 'The queue store is unavailable; try again shortly',
        code: 'QUEUE_UNAVAILABLE',
      });
      assert.ok(Number(health.headers.get('retry-after')) > 0, 'it says when to ask again');
    } finally {
      await redis.startServer();
    }
    // The restarted Redis kept no data (no AOF here), so the worker announces itself again.
    await waitFor(
      async () => {
        await joinWorkers(connection, config.prefix, ['solo-0']);
        return (await post({ jobName: 'after-outage' })).status === 202;
      },
      { what: 'enqueue to work again' },
    );
  });
});
