/**
 * Graceful shutdown under load: SIGTERM while jobs run starts no new job, lets the running ones
 * finish, exits 0, and the jobs still waiting run after the next start. Jobs are gate jobs: they run
 * until the test opens their gate, so "still running at the signal" holds by construction.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startGatedRun } from '../support/gated-run.js';
import { isAlive, waitForIdle, waitForJobs } from '../support/jobs.js';
import { lineOf, linesOf, logged } from '../support/log-lines.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
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
  // 4 slots: 4 jobs run, 4 wait.
  const run = await startGatedRun(redis, { workers: 2, concurrency: 2, shutdownTimeoutMs: 60_000, jobs: 8 });
  const first = run.service;
  const workerPids = (await first.workers()).workers.map((worker) => worker.pid);

  const stopped = first.stop('SIGTERM');
  await waitFor(() => linesOf(first.logs, 'shutdown.draining', { running: 2 }).length === 2, {
    what: 'both workers to wait for their running jobs',
  });
  await run.gate.open();
  assert.equal(await stopped, 0);
  assert.ok(
    workerPids.every((pid) => !isAlive(pid)),
    'every worker process exited',
  );
  assert.equal(linesOf(first.logs, 'job.started').length, 4, 'no waiting job was started');
  assert.equal(linesOf(first.logs, 'job.completed').length, 4, 'the running jobs finished');

  await run.again(async (second) => {
    await waitForJobs(second, run.jobs);
    // Completion lines are written after BullMQ stores the completion, which the wait above saw.
    const completed = () => linesOf(second.logs, 'job.completed').length;
    await waitFor(() => completed() >= 4, { what: 'the completion lines' });
    assert.equal(completed(), 4, 'the waiting jobs ran after restart');
    await waitForIdle(second);
  });
});

test('a shutdown that outlasts SHUTDOWN_TIMEOUT_MS still exits 0, and the cut jobs run after the next start', async () => {
  const run = await startGatedRun(redis, { workers: 1, concurrency: 2, shutdownTimeoutMs: 500, jobs: 2 });
  assert.equal(await run.service.stop('SIGTERM'), 0);
  assert.equal(linesOf(run.service.logs, 'job.completed').length, 0, 'the jobs were cut');

  await run.gate.open();
  await run.again(async (second) => {
    const done = await waitForJobs(second, run.jobs);
    assert.ok(done.every((job) => job.failedReason === null));
    await waitForIdle(second);
  });
});

test('Ctrl-C says what shutdown waits for; a second Ctrl-C stops at once and the cut jobs run after the next start', async () => {
  const run = await startGatedRun(redis, { workers: 1, concurrency: 2, shutdownTimeoutMs: 60_000, jobs: 2 });
  const first = run.service;

  first.child.kill('SIGINT');
  const waiting = await waitFor(() => lineOf(first.logs, 'shutdown.draining'), {
    what: 'the shutdown to say what it waits for',
  });
  assert.equal(waiting.running, 2);
  assert.equal(waiting.timeoutMs, 60_000);
  const started = lineOf(first.logs, 'shutdown.started', { role: 'primary', signal: 'SIGINT', timeoutMs: 60_000 });
  assert.ok(started, 'the primary says it waits up to SHUTDOWN_TIMEOUT_MS');
  assert.equal(started.secondSignal, 'stops at once', 'and what a second signal does');

  const forcedAt = Date.now();
  assert.equal(await first.stop('SIGINT'), 0);
  assert.ok(Date.now() - forcedAt < 15_000, 'the second signal did not wait out SHUTDOWN_TIMEOUT_MS (60 s)');
  assert.ok(logged(first.logs, 'shutdown.forced', { signal: 'SIGINT' }), 'the second signal is heard');
  assert.equal(linesOf(first.logs, 'job.completed').length, 0);

  await run.gate.open();
  await run.again(async (second) => {
    const done = await waitForJobs(second, run.jobs, { timeoutMs: 60_000 });
    assert.ok(
      done.every((job) => job.failedReason === null && job.attemptsStarted === 2),
      'cut, not failed, and run again',
    );
    await waitForIdle(second);
  });
});
