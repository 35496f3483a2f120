/**
 * Ownership under faults, with real processes: a second instance with a HOST_ID that a live
 * instance holds is refused and touches nothing; a worker paused past its lease TTL (SIGSTOP) but
 * not long enough to be retired re-acquires its lease and finishes its jobs once; a worker paused
 * past retirement finds its lease lost on SIGCONT, hands its jobs over (they ran elsewhere) and
 * exits, and its id comes back empty in a new process.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { enqueueMany, isAlive, listedWorker, waitForIdle, waitForJobs, waitForRunning } from '../support/jobs.js';
import { linesOf, logged } from '../support/log-lines.js';
import { startTestRedis } from '../support/test-redis.js';
import { startService } from '../support/service.js';
import { serviceSuite } from '../support/service-suite.js';
import { waitFor } from '../support/wait.js';

const TTL_MS = 1_500;
const RETIRE_MS = 4_000;
const FAST = {
  HEARTBEAT_INTERVAL_MS: '250',
  WORKER_TTL_MS: String(TTL_MS),
  WORKER_RETIRE_MS: String(RETIRE_MS),
  RECONCILE_INTERVAL_MS: '1000',
  SHUTDOWN_TIMEOUT_MS: '5000',
} as const;
/** Both instances of the first scenario: one HOST_ID, and so the same two worker ids. */
const DUP = { ...FAST, WORKER_CONCURRENCY: '2', HOST_ID: 'dup', LOG_LEVEL: 'debug' } as const;
const FATAL = 60;

describe('a second instance with a HOST_ID in use', () => {
  const suite = serviceSuite(startTestRedis, (redis) => ({ ...redis.serviceOptions, workers: 2, env: DUP }));

  test('is refused: it exits non-zero naming the id and HOST_ID, and the running jobs run once', async () => {
    const { redis, service: first } = suite;
    const jobs = await enqueueMany(first, 4, 'owned', { durationMs: 3_000 });
    await waitForRunning(first, 4);
    const second = await startService({
      ...redis.serviceOptions,
      workers: 2,
      prefix: first.prefix,
      waitUntilReady: false,
      env: DUP,
    });
    assert.notEqual(await second.exited, 0);
    const refusals = linesOf(second.logs, 'lease.refused', { hostId: 'dup' });
    assert.deepEqual(
      [...new Set(refusals.map((line) => line.workerId))].sort(),
      ['dup-0', 'dup-1'],
      'each refused id says why',
    );
    for (const refusal of refusals) assert.match(String(refusal.holder), /\S/, 'naming the holder');
    const fatal = second.logs.find((line) => line.level === FATAL);
    assert.equal(fatal?.event, 'lease.refused-all');
    assert.equal(fatal.hostId, 'dup', 'the fatal line names the HOST_ID in use');
    assert.deepEqual(fatal.workerIds, ['dup-0', 'dup-1'], 'and the ids it could not take');
    assert.equal(new Set(fatal.reasons as string[]).size, 2, 'a reason for each id');
    assert.ok(!logged(second.logs, 'recovery.requeued'), 'it recovered nothing');
    assert.ok(!logged(second.logs, 'job.started'), 'it consumed nothing');

    const done = await waitForJobs(first, jobs);
    for (const job of done) assert.equal(job.attemptsStarted, 1, `${job.jobId} ran once`);
    assert.ok(!first.logs.some((line) => /Lock mismatch|Missing lock/.test(JSON.stringify(line))));
    await waitForIdle(first);
  });
});

describe('a worker paused past its lease', () => {
  const suite = serviceSuite(startTestRedis, (redis) => ({
    ...redis.serviceOptions,
    workers: 2,
    keepAlive: false,
    env: { ...FAST, WORKER_CONCURRENCY: '2', WORK_STEALING: 'false', LOG_LEVEL: 'debug' },
  }));

  test('for less than the retirement delay: it re-acquires the lease and its jobs run once', async () => {
    const { service } = suite;
    const jobs = await enqueueMany(service, 4, 'paused', { durationMs: 2_000 });
    await waitForRunning(service, 4);
    const paused = await listedWorker(service, 'test-0');
    process.kill(paused.pid, 'SIGSTOP');
    await waitFor(async () => (await listedWorker(service, 'test-0')).alive === false, {
      what: 'test-0 to be seen dead',
    });
    await sleep(TTL_MS);
    process.kill(paused.pid, 'SIGCONT');

    const done = await waitForJobs(service, jobs);
    for (const job of done) assert.equal(job.attemptsStarted, 1, `${job.jobId} ran once`);
    assert.ok(logged(service.logs, 'lease.reacquired', { workerId: 'test-0', pid: paused.pid }));
    const back = await listedWorker(service, 'test-0');
    assert.equal(back.pid, paused.pid, 'the same process carries on');
    assert.equal(back.alive, true);
    await waitForIdle(service);
  });

  test('past the retirement delay: its jobs run elsewhere, and on SIGCONT it exits and its id comes back empty', async () => {
    const { service } = suite;
    const jobs = await enqueueMany(service, 4, 'stranded', { durationMs: 2_000 });
    await waitForRunning(service, 4);
    const paused = await listedWorker(service, 'test-0');
    const theirs = jobs.filter((job) => job.assignedWorker === 'test-0');
    assert.equal(theirs.length, 2);
    process.kill(paused.pid, 'SIGSTOP');
    try {
      await waitFor(() => logged(service.logs, 'retirement.done', { retired: 'test-0' }), {
        what: 'test-0 to be retired',
      });
      const moved = await waitForJobs(service, theirs);
      for (const job of moved) {
        assert.equal(job.assignedWorker, 'test-1');
        assert.deepEqual(job.movedFrom, ['test-0']);
      }
    } finally {
      process.kill(paused.pid, 'SIGCONT');
    }
    await waitFor(() => !isAlive(paused.pid), { what: 'the paused process to exit' });
    assert.ok(logged(service.logs, 'lease.lost', { pid: paused.pid }), 'the paused process says its lease was lost');
    // Completion lines are written after BullMQ stores the completion: wait for both to be there.
    const completedBy = await waitFor(
      () => {
        const lines = linesOf(service.logs, 'job.completed').filter((line) =>
          theirs.some((job) => job.jobId === line.jobId),
        );
        return lines.length >= theirs.length ? lines : undefined;
      },
      { what: 'the completion lines of the moved jobs' },
    );
    assert.deepEqual(
      [...new Set(completedBy.map((line) => line.workerId))],
      ['test-1'],
      'only the new owner completed them',
    );

    const reborn = await waitFor(
      async () => {
        const found = (await service.workers()).workers.find((candidate) => candidate.id === 'test-0');
        return found?.alive && found.pid !== paused.pid ? found : undefined;
      },
      { what: 'test-0 to come back in a new process' },
    );
    assert.equal(reborn.active + reborn.queued, 0, 'it starts empty');
    await waitForJobs(service, jobs);
    await waitForIdle(service);
  });
});
