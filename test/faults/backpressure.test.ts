/**
 * Backpressure: once the backlog (jobs assigned but not started, and jobs held for their turn)
 * reaches MAX_BACKLOG, enqueue answers 429 with Retry-After and enqueues nothing; as jobs start, room
 * comes back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitForIdle, waitForJobs, type Enqueued } from '../support/jobs.js';
import { startTestRedis } from '../support/test-redis.js';
import { startService } from '../support/service.js';
import { waitFor } from '../support/wait.js';
import { HELD_QUEUE, queueNameFor } from '../../src/contracts/names.js';

test('a full backlog answers 429 with Retry-After until jobs start', async () => {
  const redis = await startTestRedis();
  const service = await startService({
    ...redis.serviceOptions,
    workers: 1,
    env: { WORKER_CONCURRENCY: '1', MAX_BACKLOG: '3', TASK_DURATION_MS: '2000' },
  });
  try {
    const accepted: Enqueued[] = [];
    const running = await service.enqueue<Enqueued>({ jobName: 'first', data: { durationMs: 1_500 } });
    assert.equal(running.status, 202);
    accepted.push(running.body);
    await waitFor(async () => (await service.workers()).totals.active === 1, { what: 'the first job to start' });
    for (let i = 0; i < 3; i += 1) {
      const response = await service.enqueue<Enqueued>({ jobName: 'waiting', data: { durationMs: 10 } });
      assert.equal(response.status, 202);
      accepted.push(response.body);
    }

    const refused = await service.enqueue<{ code: string; details: { retryAfterSeconds: number } }>({
      jobName: 'too-many',
    });
    assert.equal(refused.status, 429);
    assert.equal(refused.body.code, 'BACKLOG_FULL');
    assert.equal(refused.headers.get('retry-after'), '2');
    assert.equal(refused.body.details.retryAfterSeconds, 2);
    // The one slot is busy: the three wait in the held queue (in its delayed set), none on the worker.
    assert.equal(
      await redis.client.zcard(`${service.prefix}:${queueNameFor(HELD_QUEUE)}:delayed`),
      3,
      'the refused task was not enqueued',
    );
    assert.equal(await redis.client.llen(`${service.prefix}:${queueNameFor('test-0')}:wait`), 0);
    assert.equal((await service.workers()).totals.queued, 0);

    await waitFor(
      async () => (await service.enqueue<Enqueued>({ jobName: 'later', data: { durationMs: 10 } })).status === 202,
      {
        what: 'room in the backlog once jobs start',
      },
    );
    await waitForJobs(service, accepted);
    await waitForIdle(service);
  } finally {
    await service.stop();
    await redis.stop();
  }
});
