/**
 * Process faults and restarts against the real cluster: a worker killed mid-job comes back under the
 * same id and its jobs still complete; SIGTERM lets running jobs finish and keeps waiting ones for
 * the next start; workers never outlive their primary.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { startService, type Service } from '../support/service.js';
import { waitFor } from '../support/wait.js';

interface Enqueued {
  readonly jobId: string;
  readonly assignedWorker: string;
}

interface JobBody {
  readonly state: string;
  readonly attemptsMade: number;
  readonly failedReason: string | null;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function enqueueMany(service: Service, count: number, durationMs: number): Promise<Enqueued[]> {
  const responses = await Promise.all(
    Array.from({ length: count }, (_, i) => service.enqueue<Enqueued>({ jobName: 'lifecycle', data: { i, durationMs } })),
  );
  for (const response of responses) assert.equal(response.status, 202, response.text);
  return responses.map((response) => response.body);
}

async function waitForCompletion(service: Service, jobs: readonly Enqueued[], timeoutMs = 90_000): Promise<JobBody[]> {
  return waitFor(
    async () => {
      const views = await Promise.all(jobs.map((job) => service.request<JobBody>('GET', `/jobs/${job.jobId}`)));
      for (const view of views) assert.notEqual(view.body.state, 'failed', `a job failed: ${view.text}`);
      return views.every((view) => view.body.state === 'completed') ? views.map((view) => view.body) : undefined;
    },
    { timeoutMs, intervalMs: 250, what: `${jobs.length} jobs to complete` },
  );
}

async function waitForIdle(service: Service): Promise<void> {
  await waitFor(async () => {
    const { totals } = await service.workers();
    return totals.active === 0 && totals.queued === 0;
  }, { what: 'load counters to return to 0' });
}

describe('worker crash', () => {
  let redis: TestRedis;
  let service: Service;
  before(async () => {
    redis = await startRedis();
    service = await startService({ redisUrl: redis.url, workers: 2, env: { WORKER_CONCURRENCY: '4' } });
  });
  after(async () => {
    await service?.stop();
    await redis?.stop();
  });

  test('kill -9 of a worker brings the same id back and its interrupted jobs complete', async () => {
    const jobs = await enqueueMany(service, 8, 3_000);
    const victim = (await service.workers()).workers.find((worker) => worker.id === 'test-0');
    assert.ok(victim);
    await waitFor(async () => {
      const state = await service.workers();
      return state.workers.find((worker) => worker.id === 'test-0')?.active === 4;
    }, { what: 'the victim to run its 4 jobs' });

    process.kill(victim.pid, 'SIGKILL');

    const revived = await waitFor(async () => {
      const state = await service.workers();
      const worker = state.workers.find((candidate) => candidate.id === 'test-0');
      return worker && worker.pid !== victim.pid && worker.alive ? worker : undefined;
    }, { what: 'test-0 to come back' });
    assert.notEqual(revived.pid, victim.pid);
    assert.equal((await service.workers()).workers.length, 2, 'no new id was invented');

    const done = await waitForCompletion(service, jobs);
    assert.ok(done.every((job) => job.failedReason === null), 'interrupted jobs were re-run, not failed');
    await waitForIdle(service);
    assert.ok(service.logs.some((line) => line.msg === 'worker died; forking it again' && line.workerId === 'test-0'));
  });
});

describe('shutdown and restart', () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  test('SIGTERM lets running jobs finish, exits 0, and waiting jobs run after the next start', async () => {
    const env = { WORKER_CONCURRENCY: '2', SHUTDOWN_TIMEOUT_MS: '30000' };
    const first = await startService({ redisUrl: redis.url, workers: 2, env });
    // 4 slots: 4 jobs run, 4 wait.
    const jobs = await enqueueMany(first, 8, 2_000);
    await waitFor(async () => (await first.workers()).totals.active === 4, { what: '4 running jobs' });
    const workerPids = (await first.workers()).workers.map((worker) => worker.pid);

    assert.equal(await first.stop('SIGTERM'), 0);
    assert.ok(workerPids.every((pid) => !isAlive(pid)), 'every worker process exited');
    const completedBeforeExit = first.logs.filter((line) => line.msg === 'job completed').length;
    assert.equal(completedBeforeExit, 4, 'the 4 running jobs finished; no waiting job was started');

    const second = await startService({ redisUrl: redis.url, workers: 2, env, prefix: first.prefix });
    try {
      await waitForCompletion(second, jobs);
      assert.equal(second.logs.filter((line) => line.msg === 'job completed').length, 4, 'the 4 waiting jobs ran after restart');
      await waitForIdle(second);
    } finally {
      assert.equal(await second.stop(), 0);
    }
  });

  test('worker processes do not outlive a killed primary', async () => {
    const service = await startService({ redisUrl: redis.url, workers: 2 });
    const pids = (await service.workers()).workers.map((worker) => worker.pid);
    assert.equal(pids.length, 2);
    await service.stop('SIGKILL');
    await waitFor(() => pids.every((pid) => !isAlive(pid)), { what: 'orphaned workers to exit' });
  });
});
