/**
 * Graceful shutdown under load: SIGTERM while jobs run starts no new job, lets the running ones
 * finish, exits 0, and the jobs still waiting run after the next start. Jobs are gate jobs: they run
 * until the test opens their gate, so "still running at the signal" holds by construction.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createGate, FIXTURE_HANDLERS, GATE_JOB } from '../support/gate.js';
import { enqueueMany, isAlive, waitForIdle, waitForJobs } from '../support/jobs.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
import { startService } from '../support/service.js';
import { waitFor } from '../support/wait.js';

// One Redis for the file: each test's services have a key prefix of their own.
let redis: ModeRedis;
before(async () => {
  redis = await startTestRedis();
});
after(async () => {
  await redis?.stop();
});

test('SIGTERM lets running jobs finish, exits 0, and waiting jobs run after the next start', async () => {
  const env = {
    WORKER_CONCURRENCY: '2',
    SHUTDOWN_TIMEOUT_MS: '60000',
    HANDLERS_DIR: FIXTURE_HANDLERS,
    LOG_LEVEL: 'debug',
  };
  const first = await startService({ ...redis.serviceOptions, workers: 2, env });
  const gate = createGate(redis.client, redis.nodeUrl);
  // 4 slots: 4 jobs run, 4 wait.
  const jobs = await enqueueMany(first, 8, GATE_JOB, gate.data());
  await gate.waitStarted(4);
  await waitFor(async () => (await first.workers()).totals.active === 4, { what: '4 running jobs' });
  const workerPids = (await first.workers()).workers.map((worker) => worker.pid);

  const stopped = first.stop('SIGTERM');
  await waitFor(
    () => first.logs.filter((line) => /^waiting for \d+ running jobs/.test(String(line.msg))).length === 2,
    {
      what: 'both workers to wait for their running jobs',
    },
  );
  await gate.open();
  assert.equal(await stopped, 0);
  assert.ok(
    workerPids.every((pid) => !isAlive(pid)),
    'every worker process exited',
  );
  assert.equal(first.logs.filter((line) => line.msg === 'job started').length, 4, 'no waiting job was started');
  assert.equal(first.logs.filter((line) => line.msg === 'job completed').length, 4, 'the running jobs finished');

  const second = await startService({ ...redis.serviceOptions, workers: 2, env, prefix: first.prefix });
  try {
    await waitForJobs(second, jobs);
    // Completion lines are written after BullMQ stores the completion, which the wait above saw.
    const completed = () => second.logs.filter((line) => line.msg === 'job completed').length;
    await waitFor(() => completed() >= 4, { what: 'the completion lines' });
    assert.equal(completed(), 4, 'the waiting jobs ran after restart');
    await waitForIdle(second);
  } finally {
    assert.equal(await second.stop(), 0);
  }
});

test('a shutdown that outlasts SHUTDOWN_TIMEOUT_MS still exits 0, and the cut jobs run after the next start', async () => {
  const env = {
    WORKER_CONCURRENCY: '2',
    SHUTDOWN_TIMEOUT_MS: '500',
    HANDLERS_DIR: FIXTURE_HANDLERS,
    LOG_LEVEL: 'debug',
  };
  const first = await startService({ ...redis.serviceOptions, workers: 1, env });
  const gate = createGate(redis.client, redis.nodeUrl);
  const jobs = await enqueueMany(first, 2, GATE_JOB, gate.data());
  await gate.waitStarted(2);
  assert.equal(await first.stop('SIGTERM'), 0);
  assert.equal(first.logs.filter((line) => line.msg === 'job completed').length, 0, 'the jobs were cut');

  await gate.open();
  const second = await startService({ ...redis.serviceOptions, workers: 1, env, prefix: first.prefix });
  try {
    const done = await waitForJobs(second, jobs);
    assert.ok(done.every((job) => job.failedReason === null));
    await waitForIdle(second);
  } finally {
    await second.stop();
  }
});

test('Ctrl-C says what shutdown waits for; a second Ctrl-C stops at once and the cut jobs run after the next start', async () => {
  const env = {
    WORKER_CONCURRENCY: '2',
    SHUTDOWN_TIMEOUT_MS: '60000',
    HANDLERS_DIR: FIXTURE_HANDLERS,
    LOG_LEVEL: 'debug',
  };
  const first = await startService({ ...redis.serviceOptions, workers: 1, env });
  const gate = createGate(redis.client, redis.nodeUrl);
  const jobs = await enqueueMany(first, 2, GATE_JOB, gate.data());
  await gate.waitStarted(2);
  await waitFor(async () => (await first.workers()).totals.active === 2, { what: '2 running jobs' });

  first.child.kill('SIGINT');
  const waiting = await waitFor(
    () => first.logs.find((line) => /^waiting for \d+ running jobs/.test(String(line.msg))),
    {
      what: 'the shutdown to say what it waits for',
    },
  );
  assert.equal(waiting.running, 2);
  assert.equal(waiting.timeoutMs, 60_000);
  assert.ok(first.logs.some((line) => /signal again to stop at once/.test(String(line.msg))));

  const forcedAt = Date.now();
  assert.equal(await first.stop('SIGINT'), 0);
  assert.ok(Date.now() - forcedAt < 15_000, 'the second signal did not wait out SHUTDOWN_TIMEOUT_MS (60 s)');
  assert.ok(first.logs.some((line) => /second signal: stopping at once/.test(String(line.msg))));
  assert.equal(first.logs.filter((line) => line.msg === 'job completed').length, 0);

  await gate.open();
  const second = await startService({ ...redis.serviceOptions, workers: 1, env, prefix: first.prefix });
  try {
    const done = await waitForJobs(second, jobs, { timeoutMs: 60_000 });
    assert.ok(
      done.every((job) => job.failedReason === null && job.attemptsStarted === 2),
      'cut, not failed, and run again',
    );
    await waitForIdle(second);
  } finally {
    await second.stop();
  }
});
