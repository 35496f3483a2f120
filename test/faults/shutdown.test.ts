/**
 * Graceful shutdown under load: SIGTERM while jobs run starts no new job, lets the running ones
 * finish, exits 0, and the jobs still waiting run after the next start.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { enqueueMany, isAlive, waitForIdle, waitForJobs } from '../support/jobs.js';
import { startRedis } from '../support/redis-server.js';
import { startService } from '../support/service.js';
import { waitFor } from '../support/wait.js';

test('SIGTERM lets running jobs finish, exits 0, and waiting jobs run after the next start', async () => {
  const redis = await startRedis();
  try {
    const env = { WORKER_CONCURRENCY: '2', SHUTDOWN_TIMEOUT_MS: '30000' };
    const first = await startService({ redisUrl: redis.url, workers: 2, env });
    // 4 slots: 4 jobs run, 4 wait.
    const jobs = await enqueueMany(first, 8, 'shutdown', { durationMs: 2_000 });
    await waitFor(async () => (await first.workers()).totals.active === 4, { what: '4 running jobs' });
    const workerPids = (await first.workers()).workers.map((worker) => worker.pid);

    assert.equal(await first.stop('SIGTERM'), 0);
    assert.ok(workerPids.every((pid) => !isAlive(pid)), 'every worker process exited');
    assert.equal(first.logs.filter((line) => line.msg === 'job started').length, 4, 'no waiting job was started');
    assert.equal(first.logs.filter((line) => line.msg === 'job completed').length, 4, 'the running jobs finished');

    const second = await startService({ redisUrl: redis.url, workers: 2, env, prefix: first.prefix });
    try {
      await waitForJobs(second, jobs);
      assert.equal(second.logs.filter((line) => line.msg === 'job completed').length, 4, 'the waiting jobs ran after restart');
      await waitForIdle(second);
    } finally {
      assert.equal(await second.stop(), 0);
    }
  } finally {
    await redis.stop();
  }
});

test('a shutdown that outlasts SHUTDOWN_TIMEOUT_MS still exits 0, and the cut jobs run after the next start', async () => {
  const redis = await startRedis();
  try {
    const env = { WORKER_CONCURRENCY: '2', SHUTDOWN_TIMEOUT_MS: '500' };
    const first = await startService({ redisUrl: redis.url, workers: 1, env });
    const jobs = await enqueueMany(first, 2, 'long', { durationMs: 4_000 });
    await waitFor(async () => (await first.workers()).totals.active === 2, { what: '2 running jobs' });
    assert.equal(await first.stop('SIGTERM'), 0);
    assert.equal(first.logs.filter((line) => line.msg === 'job completed').length, 0, 'the jobs were cut');

    const second = await startService({ redisUrl: redis.url, workers: 1, env, prefix: first.prefix });
    try {
      const done = await waitForJobs(second, jobs);
      assert.ok(done.every((job) => job.failedReason === null));
      await waitForIdle(second);
    } finally {
      await second.stop();
    }
  } finally {
    await redis.stop();
  }
});
