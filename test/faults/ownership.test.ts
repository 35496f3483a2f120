/**
 * Ownership under faults, with real processes: a second instance with a HOST_ID that a live
 * instance holds is refused and touches nothing; a worker paused past its lease TTL (SIGSTOP) but
 * not long enough to be retired re-acquires its lease and finishes its jobs once; a worker paused
 * past retirement finds its lease lost on SIGCONT, hands its jobs over (they ran elsewhere) and
 * exits, and its id comes back empty in a new process.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { enqueueMany, isAlive, waitForIdle, waitForJobs } from '../support/jobs.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
import { startService, type Service, type WorkerView } from '../support/service.js';
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

async function worker(service: Service, id: string): Promise<WorkerView> {
  const found = (await service.workers()).workers.find((candidate) => candidate.id === id);
  assert.ok(found, `${id} is listed`);
  return found;
}

describe('a second instance with a HOST_ID in use', () => {
  let redis: ModeRedis;
  let first: Service;
  before(async () => {
    redis = await startTestRedis();
    first = await startService({
      ...redis.serviceOptions,
      workers: 2,
      env: { ...FAST, WORKER_CONCURRENCY: '2', HOST_ID: 'dup', LOG_LEVEL: 'debug' },
    });
  });
  after(async () => {
    await first?.stop();
    await redis?.stop();
  });

  test('is refused: it exits non-zero naming the id and HOST_ID, and the running jobs run once', async () => {
    const jobs = await enqueueMany(first, 4, 'owned', { durationMs: 3_000 });
    await waitFor(async () => (await first.workers()).totals.active === 4, { what: 'the 4 jobs to run' });
    const second = await startService({
      ...redis.serviceOptions,
      workers: 2,
      prefix: first.prefix,
      waitUntilReady: false,
      env: { ...FAST, WORKER_CONCURRENCY: '2', HOST_ID: 'dup', LOG_LEVEL: 'debug' },
    });
    const code = await new Promise<number | null>((resolve) =>
      second.child.once('exit', (exitCode) => resolve(exitCode)),
    );
    assert.notEqual(code, 0);
    const fatal = second.logs.find((line) => line.level === 60);
    assert.match(String(fatal?.msg), /worker id dup-[01] is held by another live process/);
    assert.match(String(fatal?.msg), /HOST_ID=dup/);
    const refusals = second.logs.filter(
      (line) => line.level === 50 && /is held by another live process/.test(String(line.msg)),
    );
    assert.deepEqual(
      [...new Set(refusals.map((line) => line.workerId))].sort(),
      ['dup-0', 'dup-1'],
      'each refused id says why',
    );
    assert.ok(
      !second.logs.some((line) => line.msg === 'requeued jobs interrupted by a previous process'),
      'it recovered nothing',
    );
    assert.ok(!second.logs.some((line) => line.msg === 'job started'), 'it consumed nothing');

    const done = await waitForJobs(first, jobs);
    for (const job of done) assert.equal(job.attemptsStarted, 1, `${job.jobId} ran once`);
    assert.ok(!first.logs.some((line) => /Lock mismatch|Missing lock/.test(JSON.stringify(line))));
    await waitForIdle(first);
  });
});

describe('a worker paused past its lease', () => {
  let redis: ModeRedis;
  let service: Service;
  before(async () => {
    redis = await startTestRedis();
    service = await startService({
      ...redis.serviceOptions,
      workers: 2,
      keepAlive: false,
      env: { ...FAST, WORKER_CONCURRENCY: '2', WORK_STEALING: 'false', LOG_LEVEL: 'debug' },
    });
  });
  after(async () => {
    await service?.stop();
    await redis?.stop();
  });

  test('for less than the retirement delay: it re-acquires the lease and its jobs run once', async () => {
    const jobs = await enqueueMany(service, 4, 'paused', { durationMs: 2_000 });
    await waitFor(async () => (await service.workers()).totals.active === 4, { what: 'the jobs to run' });
    const paused = await worker(service, 'test-0');
    process.kill(paused.pid, 'SIGSTOP');
    await waitFor(async () => (await worker(service, 'test-0')).alive === false, { what: 'test-0 to be seen dead' });
    await sleep(TTL_MS);
    process.kill(paused.pid, 'SIGCONT');

    const done = await waitForJobs(service, jobs);
    for (const job of done) assert.equal(job.attemptsStarted, 1, `${job.jobId} ran once`);
    assert.ok(
      service.logs.some(
        (line) => line.workerId === 'test-0' && /lapsed and nobody took it: re-acquired/.test(String(line.msg)),
      ),
    );
    const back = await worker(service, 'test-0');
    assert.equal(back.pid, paused.pid, 'the same process carries on');
    assert.equal(back.alive, true);
    await waitForIdle(service);
  });

  test('past the retirement delay: its jobs run elsewhere, and on SIGCONT it exits and its id comes back empty', async () => {
    const jobs = await enqueueMany(service, 4, 'stranded', { durationMs: 2_000 });
    await waitFor(async () => (await service.workers()).totals.active === 4, { what: 'the jobs to run' });
    const paused = await worker(service, 'test-0');
    const theirs = jobs.filter((job) => job.assignedWorker === 'test-0');
    assert.equal(theirs.length, 2);
    process.kill(paused.pid, 'SIGSTOP');
    try {
      await waitFor(() => service.logs.some((line) => line.msg === 'worker id retired' && line.retired === 'test-0'), {
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
    assert.ok(
      service.logs.some((line) => line.pid === paused.pid && /lease of this worker id was lost/.test(String(line.msg))),
    );
    // Completion lines are written after BullMQ stores the completion: wait for both to be there.
    const completedBy = await waitFor(
      () => {
        const lines = service.logs.filter(
          (line) => line.msg === 'job completed' && theirs.some((job) => job.jobId === line.jobId),
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
