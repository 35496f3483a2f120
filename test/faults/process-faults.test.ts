/**
 * Process faults against the real cluster: a worker killed mid-job comes back under the same id at
 * once and its interrupted jobs run again within seconds, not after BullMQ's 30 s lock; a worker that
 * keeps dying is restarted with growing delays; workers never outlive their primary.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createGate, FIXTURE_HANDLERS, GATE_JOB } from '../support/gate.js';
import { enqueueMany, isAlive, readJob, waitForIdle, waitForJobs } from '../support/jobs.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
import { lineOf, logged } from '../support/log-lines.js';
import { startService, type Service } from '../support/service.js';
import { waitFor } from '../support/wait.js';

/**
 * From kill to the interrupted jobs running again: about 2 s on an idle machine (a re-fork and its
 * recovery), bounded here with margin for a loaded 2-core machine running test files side by side.
 * What it proves is that recovery does not wait for BullMQ's 30 s lock to expire.
 */
const RECOVERY_BOUND_MS = 15_000;

// One Redis for the file: each test's service has a key prefix of its own.
let redis: ModeRedis;
before(async () => {
  redis = await startTestRedis();
});
after(async () => {
  await redis?.stop();
});

describe('worker crash', () => {
  let service: Service;
  before(async () => {
    service = await startService({
      ...redis.serviceOptions,
      workers: 2,
      env: { WORKER_CONCURRENCY: '4', HANDLERS_DIR: FIXTURE_HANDLERS },
    });
  });
  after(async () => {
    await service?.stop();
  });

  test('kill -9 mid-job: same id back, interrupted jobs re-run long before the 30 s lock expires and complete, counters exact', async () => {
    const gate = createGate(redis.client, redis.nodeUrl);
    const jobs = await enqueueMany(service, 8, GATE_JOB, gate.data());
    const victimJobs = jobs.filter((job) => job.assignedWorker === 'test-0');
    assert.equal(victimJobs.length, 4);
    await gate.waitStarted(8);
    await waitFor(
      async () => (await service.workers()).workers.find((worker) => worker.id === 'test-0')?.active === 4,
      {
        what: 'the victim to run its 4 jobs',
      },
    );
    const victim = (await service.workers()).workers.find((worker) => worker.id === 'test-0');
    assert.ok(victim);

    const killedAt = Date.now();
    process.kill(victim.pid, 'SIGKILL');

    const restarted = await waitFor(
      async () => {
        const views = await Promise.all(victimJobs.map((job) => readJob(service, job.jobId)));
        const startedAgain = views.every(
          (view) => view.state === 'active' && Date.parse(view.timestamps.startedAt ?? '') >= killedAt,
        );
        return startedAgain ? views : undefined;
      },
      { intervalMs: 50, what: 'the interrupted jobs to run again' },
    );
    const rerunAfterMs = Math.max(...restarted.map((view) => Date.parse(view.timestamps.startedAt ?? '') - killedAt));
    assert.ok(rerunAfterMs < RECOVERY_BOUND_MS, `interrupted jobs ran again ${rerunAfterMs} ms after the kill`);

    // The new process recovers and runs the jobs before its first heartbeat: on a loaded machine the
    // old one's heartbeat can be older than WORKER_TTL_MS by then, so `alive` may lag the re-run.
    await waitFor(
      async () => {
        const revived = (await service.workers()).workers.find((worker) => worker.id === 'test-0');
        return revived?.alive === true && revived.pid !== victim.pid;
      },
      { what: 'test-0 to be back in a new process' },
    );
    assert.equal((await service.workers()).workers.length, 2, 'no new id was invented');

    await gate.open();
    const done = await waitForJobs(service, jobs);
    assert.ok(
      done.every((job) => job.failedReason === null),
      'interrupted jobs were re-run, not failed',
    );
    for (const job of done) assert.equal(job.attemptsStarted, job.assignedWorker === 'test-0' ? 2 : 1, job.jobId);
    await waitForIdle(service);
  });

  test('a worker that keeps dying is restarted with growing delays', async () => {
    const delays: number[] = [];
    for (let round = 0; round < 3; round += 1) {
      const victim = (await service.workers()).workers.find((worker) => worker.id === 'test-1' && worker.alive);
      assert.ok(victim);
      process.kill(victim.pid, 'SIGKILL');
      const line = await waitFor(
        () => lineOf(service.logs, 'process.died', { workerId: 'test-1', childPid: victim.pid }),
        { what: 'the primary to notice the death' },
      );
      delays.push(Number(line.restartInMs));
      await waitFor(
        async () => {
          const worker = (await service.workers()).workers.find((candidate) => candidate.id === 'test-1');
          return worker !== undefined && worker.pid !== victim.pid && worker.alive;
        },
        { what: 'test-1 to come back' },
      );
    }
    assert.ok(delays[0] !== undefined && delays[1] !== undefined && delays[2] !== undefined);
    assert.ok(delays[1] > delays[0] && delays[2] > delays[1], `restart delays ${delays.join(', ')} should grow`);
  });
});

describe('primary crash', () => {
  test('worker processes do not outlive a killed primary', async () => {
    const service = await startService({ ...redis.serviceOptions, workers: 2, env: { SHUTDOWN_TIMEOUT_MS: '5000' } });
    const pids = (await service.workers()).workers.map((worker) => worker.pid);
    assert.equal(pids.length, 2);
    await service.stop('SIGKILL');
    try {
      await waitFor(() => pids.every((pid) => !isAlive(pid)), {
        timeoutMs: 60_000,
        what: 'orphaned workers to exit',
      });
    } catch (error) {
      const last = service.logs.filter((line) => pids.includes(Number(line.pid))).slice(-10);
      assert.fail(
        `${String(error)}; still alive: ${pids.filter(isAlive).join(', ')}; last lines: ${JSON.stringify(last)}`,
      );
    }
  });
});

describe('stopping while a worker restarts', () => {
  test('a worker forked just before SIGTERM still hears the stop: the primary does not wait SHUTDOWN_TIMEOUT_MS for it', async () => {
    const service = await startService({
      ...redis.serviceOptions,
      workers: 1,
      env: { SHUTDOWN_TIMEOUT_MS: '60000' },
    });
    const [victim] = (await service.workers()).workers;
    assert.ok(victim);
    process.kill(victim.pid, 'SIGKILL');
    const forked = await waitFor(
      () =>
        service.logs.find(
          (line) => line.event === 'process.forked' && line.workerId === victim.id && line.childPid !== victim.pid,
        ),
      { what: 'the primary to fork the worker again' },
    );
    // The new process is still starting: it has not taken its lease or opened its port yet.
    const stoppedAt = Date.now();
    assert.equal(await service.stop('SIGTERM'), 0);
    assert.ok(
      Date.now() - stoppedAt < 30_000,
      `the stop took ${Date.now() - stoppedAt} ms, SHUTDOWN_TIMEOUT_MS is 60000`,
    );
    assert.ok(!logged(service.logs, 'process.killed'), 'no process had to be killed');
    assert.ok(!isAlive(Number(forked.childPid)), 'the new worker exited');
  });
});
