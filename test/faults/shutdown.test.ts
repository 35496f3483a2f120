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

test('Ctrl-C says what shutdown waits for; a second Ctrl-C stops at once and the cut jobs run after the next start', async () => {
  const redis = await startRedis();
  try {
    const env = { WORKER_CONCURRENCY: '2', SHUTDOWN_TIMEOUT_MS: '60000' };
    const first = await startService({ redisUrl: redis.url, workers: 1, env });
    const jobs = await enqueueMany(first, 2, 'interrupted', { durationMs: 20_000 });
    await waitFor(async () => (await first.workers()).totals.active === 2, { what: '2 running jobs' });

    first.child.kill('SIGINT');
    const waiting = await waitFor(() => first.logs.find((line) => /^waiting for \d+ running jobs/.test(String(line.msg))), {
      what: 'the shutdown to say what it waits for',
    });
    assert.equal(waiting.running, 2);
    assert.equal(waiting.timeoutMs, 60_000);
    assert.ok(first.logs.some((line) => /signal again to stop at once/.test(String(line.msg))));

    const forcedAt = Date.now();
    assert.equal(await first.stop('SIGINT'), 0);
    assert.ok(Date.now() - forcedAt < 15_000, 'the second signal did not wait for the 20 s jobs');
    assert.ok(first.logs.some((line) => /second signal: stopping at once/.test(String(line.msg))));
    assert.equal(first.logs.filter((line) => line.msg === 'job completed').length, 0);

    const second = await startService({ redisUrl: redis.url, workers: 1, env: { ...env, WORKER_CONCURRENCY: '2' }, prefix: first.prefix });
    try {
      const done = await waitForJobs(second, jobs, { timeoutMs: 60_000 });
      assert.ok(done.every((job) => job.failedReason === null && job.attemptsStarted === 2), 'cut, not failed, and run again');
      await waitForIdle(second);
    } finally {
      await second.stop();
    }
  } finally {
    await redis.stop();
  }
});
