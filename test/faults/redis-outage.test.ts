/**
 * Redis outages against the real cluster: while Redis is stopped or hung, enqueue and /healthz answer
 * 503 within a second instead of hanging; running jobs are not run twice; when Redis returns the
 * service resumes by itself; jobs accepted before the outage all complete, across a Redis restart
 * with AOF; and no phantom load is left behind.
 *
 * Single mode only (test/support/test-redis.ts): its subject is the one redis-server hanging
 * (SIGSTOP) or going away. A cluster's counterparts, a master stopped, restarted or down, are in
 * cluster-faults.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { enqueueMany, reservationsLeft, waitForIdle, waitForJobs } from '../support/jobs.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { startService, type Service } from '../support/service.js';
import { waitFor } from '../support/wait.js';
import { queueNameFor } from '../../src/contracts/names.js';

/** The bound for a refusal while Redis is away. */
const REFUSAL_BOUND_MS = 1_000;

async function timed<T>(action: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await action();
  return { value, ms: performance.now() - started };
}

/**
 * Each worker process reconnects on its own back-off (up to 2 s): one healthy answer shows only the
 * process that gave it. Fresh connections land on any process, so many healthy answers in a row
 * show them all recovered.
 */
async function healthyEverywhere(service: Service): Promise<void> {
  let inARow = 0;
  await waitFor(
    async () => {
      const health = await service.request('GET', '/healthz', { headers: { connection: 'close' } });
      inARow = health.status === 200 ? inARow + 1 : 0;
      return inARow >= 10;
    },
    { intervalMs: 50, what: 'healthz to recover on every process' },
  );
}

describe('Redis outage', () => {
  let redis: TestRedis;
  let service: Service;
  before(async () => {
    redis = await startRedis({ appendOnly: true });
    service = await startService({
      redisUrl: redis.url,
      workers: 2,
      // The service's default, which the harness raises for the other tests: its bound is tested here.
      env: { WORKER_CONCURRENCY: '4', COMMAND_TIMEOUT_MS: '500' },
    });
  });
  after(async () => {
    await service?.stop();
    await redis?.stop();
  });

  test('Redis stopped and restarted with AOF: fast 503s, automatic recovery, every accepted job runs once', async () => {
    // 8 run during the outage, 4 wait in Redis through it.
    const jobs = await enqueueMany(service, 12, 'outage', { durationMs: 2_500 });
    await waitFor(async () => (await service.workers()).totals.active === 8, { what: '8 running jobs' });

    await redis.stopServer();
    try {
      const refused = await timed(() => service.enqueue<{ code: string }>({ jobName: 'during-outage' }));
      assert.equal(refused.value.status, 503);
      assert.equal(refused.value.body.code, 'QUEUE_UNAVAILABLE');
      assert.ok(refused.ms < REFUSAL_BOUND_MS, `enqueue answered after ${refused.ms} ms`);
      const health = await timed(() => service.request('GET', '/healthz'));
      assert.equal(health.value.status, 503);
      assert.ok(health.ms < REFUSAL_BOUND_MS, `healthz answered after ${health.ms} ms`);
      const workers = await service.request('GET', '/workers');
      assert.equal(workers.status, 503, 'reads fail cleanly too');
    } finally {
      await redis.startServer();
    }

    await healthyEverywhere(service);
    const after = await service.enqueue<{ jobId: string; assignedWorker: string }>({
      jobName: 'after-outage',
      data: { durationMs: 10 },
    });
    assert.equal(after.status, 202, 'enqueue works again without a restart');

    const done = await waitForJobs(service, [...jobs, after.body]);
    for (const job of done) assert.equal(job.attemptsStarted, 1, `${job.jobId} ran exactly once`);
    await waitForIdle(service);
  });

  test('Redis hung (SIGSTOP): 503 within a second, and nothing half-done is left once it resumes', async () => {
    const jobs = await enqueueMany(service, 4, 'hang', { durationMs: 1_500 });
    redis.signal('SIGSTOP');
    try {
      for (let i = 0; i < 3; i += 1) {
        const refused = await timed(() => service.enqueue<{ code: string }>({ jobName: 'during-hang' }));
        assert.equal(refused.value.status, 503);
        assert.ok(refused.ms < REFUSAL_BOUND_MS, `enqueue answered after ${refused.ms} ms`);
      }
      const health = await timed(() => service.request('GET', '/healthz'));
      assert.equal(health.value.status, 503);
      assert.ok(health.ms < REFUSAL_BOUND_MS, `healthz answered after ${health.ms} ms`);
    } finally {
      redis.signal('SIGCONT');
    }
    await waitForJobs(service, jobs);
    // Reservations made by the timed-out requests ran late and were undone behind them.
    await waitForIdle(service);
    assert.equal(await reservationsLeft(redis.client, service.prefix), 0, 'no reservation is left behind');
    const queued = await Promise.all(
      ['test-0', 'test-1'].map((id) => redis.client.llen(`${service.prefix}:${queueNameFor(id)}:wait`)),
    );
    assert.deepEqual(queued, [0, 0], 'no refused task was enqueued');
  });
});
