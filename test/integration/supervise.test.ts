/**
 * The fetch watchdog's look at a queue, against a real Redis and real BullMQ jobs: waiting and
 * prioritized jobs are due work, a delayed job only once its time has come (BullMQ leaves it in the
 * delayed set until a worker promotes it, which a parked worker never does).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import { hasDueWork } from '../../src/queue/supervise.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';

describe('hasDueWork', () => {
  let redis: TestRedis;
  let queue: Queue;
  let n = 0;
  const keysOf = (q: Queue) => ({
    wait: String(q.keys.wait),
    prioritized: String(q.keys.prioritized),
    delayed: String(q.keys.delayed),
  });
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await queue?.close();
    await redis?.stop();
  });
  const freshQueue = () => {
    n += 1;
    queue = new Queue(`due-${n}`, { connection: redis.client, prefix: 'fw' });
    return queue;
  };

  test('an empty queue has none', async () => {
    const q = freshQueue();
    assert.equal(await hasDueWork(redis.client, keysOf(q), Date.now()), false);
  });

  test('a waiting job is due work', async () => {
    const q = freshQueue();
    await q.add('x', {});
    assert.equal(await hasDueWork(redis.client, keysOf(q), Date.now()), true);
  });

  test('a prioritized job is due work', async () => {
    const q = freshQueue();
    await q.add('x', {}, { priority: 3 });
    assert.equal(await redis.client.llen(String(q.keys.wait)), 0);
    assert.equal(await hasDueWork(redis.client, keysOf(q), Date.now()), true);
  });

  test('a delayed job is due work from its due time on, not before', async () => {
    const q = freshQueue();
    const added = Date.now();
    await q.add('x', {}, { delay: 60_000 });
    assert.equal(await hasDueWork(redis.client, keysOf(q), added), false);
    assert.equal(await hasDueWork(redis.client, keysOf(q), added + 30_000), false);
    assert.equal(await hasDueWork(redis.client, keysOf(q), added + 61_000), true);
  });
});
