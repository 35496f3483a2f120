/**
 * Two folders of Lua scripts may each have a script of the same name (the ledger's `cancel`, which
 * frees a reservation, and the queue's `cancel`, which takes a waiting job out of its queue), and
 * the worker registers both on its request connection. Each must keep running its own script: when
 * one name replaced the other, the dispatcher's undo of a refused task ran the queue's script with
 * the ledger's keys, which Redis refused (and on a Redis Cluster, an empty worker list made ioredis
 * throw outside any promise, which killed the worker process).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createLedger } from '../../src/ledger/ledger.js';
import { createCancelWaiting } from '../../src/queue/cancel-waiting.js';
import { createQueueRegistry } from '../../src/queue/queues.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';

describe('scripts of the same name from two folders on one connection', () => {
  let redis: TestRedis;
  let connection: Redis;
  before(async () => {
    redis = await startRedis();
    connection = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    connection?.disconnect();
    await redis?.stop();
  });

  test("the ledger's cancel and the queue's cancel each run their own script", async () => {
    const prefix = 'names';
    const ledger = createLedger({ redis: connection, prefix, workerTtlMs: 5_000 });
    const queues = createQueueRegistry({ connection, prefix });
    // Registered after the ledger's, as the worker process does.
    const cancelWaiting = createCancelWaiting({ redis: connection, queues });
    try {
      // Nothing reserved under this token: the ledger's cancel says so, whatever it was given.
      assert.equal(await ledger.cancel('no-such-token'), false);

      const queue = queues.forWorker('w-0');
      await queue.add('waiting', {}, { jobId: 'w-0~tok' });
      assert.equal(await cancelWaiting('w-0', 'w-0~tok'), 'wait', "the queue's cancel took the job out of wait");
      assert.equal(await queue.getJobState('w-0~tok'), 'failed');
      assert.equal(await ledger.cancel('no-such-token'), false, "the ledger's cancel still runs its own script");
    } finally {
      await queues.close();
    }
  });
});
