/**
 * Graceful shutdown under load: SIGTERM while jobs run starts no new job, lets the running ones
 * finish, exits 0, and the jobs still waiting run after the next start. Jobs are gate jobs: they run
 * until the test opens their gate, so "still running at the signal" holds by construction. Signals are
 * sent as a process group gets them under `npm start` (`timeout`, a terminal, systemd): every process
 * at once, and the primary a second time a moment later, forwarded by npm; that copy is the same stop,
 * and only a signal a second or more later stops at once.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPEAT_SIGNAL_WINDOW_MS } from '../../src/primary/primary.js';
import { startGatedRun } from '../support/gated-run.js';
import { isAlive, waitForIdle, waitForJobs } from '../support/jobs.js';
import { lineOf, linesOf, logged } from '../support/log-lines.js';
import type { Service } from '../support/service.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
import { waitFor } from '../support/wait.js';

/**
 * How long after the group's signal npm's copy reaches the primary here: about 1 ms in life, longer
 * here so that the kernel delivers the two apart rather than merging them into one pending signal.
 */
const FORWARDED_AFTER_MS = 20;

/** A signal to the service's process group: the primary and each of its processes get it directly. */
async function signalGroup(service: Service, signal: NodeJS.Signals): Promise<void> {
  const pids = (await service.workers()).workers.map((worker) => worker.pid);
  service.child.kill(signal);
  for (const pid of pids) process.kill(pid, signal);
}

// One Redis for the file: each test's services have a key prefix of their own.
let redis: ModeRedis;
before(async () => {
  redis = await startTestRedis();
});
after(async () => {
  await redis?.stop();
});

test('SIGTERM to the process group, reaching the primary twice, lets running jobs finish, exits 0, and waiting jobs run after the next start', async () => {
  // 4 slots: 4 jobs run, 4 wait.
  const run = await startGatedRun(redis, { workers: 2, concurrency: 2, shutdownTimeoutMs: 60_000, jobs: 8 });
  const first = run.service;
  const workerPids = (await first.workers()).workers.map((worker) => worker.pid);

  await signalGroup(first, 'SIGTERM');
  await sleep(FORWARDED_AFTER_MS);
  const stopped = first.stop('SIGTERM');
  await waitFor(() => linesOf(first.logs, 'shutdown.draining', { running: 2 }).length === 2, {
    what: 'both workers to wait for their running jobs',
  });
  await waitFor(() => lineOf(first.logs, 'shutdown.duplicate-signal', { role: 'primary', signal: 'SIGTERM' }), {
    what: "the primary to take npm's copy of the signal for the same stop",
  });
  await run.gate.open();
  assert.equal(await stopped, 0);
  assert.ok(
    workerPids.every((pid) => !isAlive(pid)),
    'every worker process exited',
  );
  assert.equal(linesOf(first.logs, 'shutdown.started', { role: 'primary' }).length, 1, 'one stop');
  assert.ok(!logged(first.logs, 'shutdown.forced'), 'the copy did not stop the processes at once');
  assert.ok(!logged(first.logs, 'shutdown.cut'), 'no process cut its jobs');
  assert.equal(
    linesOf(first.logs, 'shutdown.started', { role: 'process' }).length,
    2,
    'each process, signalled directly and by the primary, stopped once',
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

test('Ctrl-C says what shutdown waits for; its copy is the same stop; a second Ctrl-C a second later stops at once and the cut jobs run after the next start', async () => {
  const run = await startGatedRun(redis, { workers: 1, concurrency: 2, shutdownTimeoutMs: 60_000, jobs: 2 });
  const first = run.service;

  // A terminal's Ctrl-C: the whole group, and the primary again through npm.
  await signalGroup(first, 'SIGINT');
  await sleep(FORWARDED_AFTER_MS);
  first.child.kill('SIGINT');
  const waiting = await waitFor(() => lineOf(first.logs, 'shutdown.draining'), {
    what: 'the shutdown to say what it waits for',
  });
  assert.equal(waiting.running, 2);
  assert.equal(waiting.timeoutMs, 60_000);
  const started = lineOf(first.logs, 'shutdown.started', { role: 'primary', signal: 'SIGINT', timeoutMs: 60_000 });
  assert.ok(started, 'the primary says it waits up to SHUTDOWN_TIMEOUT_MS');
  assert.equal(started.secondSignal, 'stops at once after 1 s', 'and what a second signal does');
  await waitFor(() => logged(first.logs, 'shutdown.duplicate-signal', { role: 'primary', signal: 'SIGINT' }), {
    what: "the primary to take npm's copy of the Ctrl-C for the same stop",
  });
  assert.ok(!logged(first.logs, 'shutdown.forced'), 'the copy did not stop the process at once');

  // The primary wrote its line after it took the first signal: from the moment the line is seen, the
  // window is over once it has passed here.
  await sleep(REPEAT_SIGNAL_WINDOW_MS + 200);
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
