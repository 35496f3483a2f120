/**
 * Job bodies that fail in every way a real one can: throwing (retried with back-off, the final reason
 * kept), running past their time limit (the thread is stopped), killing their thread, or running out
 * of thread memory. Each fails that job alone: the process and its other jobs carry on.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { enqueueMany, readJob, waitForIdle, waitForJobs } from '../support/jobs.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { startService, type Service } from '../support/service.js';

const BACKOFF_MS = 200;

describe('failing jobs', () => {
  let redis: TestRedis;
  let service: Service;
  let pids: number[];
  before(async () => {
    redis = await startRedis();
    service = await startService({
      redisUrl: redis.url,
      workers: 2,
      env: {
        WORKER_CONCURRENCY: '4',
        HANDLERS_DIR: 'dist/test/fixtures/handlers',
        JOB_ATTEMPTS: '3',
        JOB_BACKOFF_MS: String(BACKOFF_MS),
        THREAD_MEMORY_LIMIT_MB: '64',
        // Unset: the default, every thread started with its worker.
        WARM_THREADS: '',
      },
    });
    pids = (await service.workers()).workers.map((worker) => worker.pid);
    const metrics = await service.request('GET', '/metrics');
    for (const worker of ['test-0', 'test-1']) {
      assert.match(
        metrics.text,
        new RegExp(`bullpen_pool_threads\\{worker="${worker}",host="test"\\} 4\\n`),
        'warm threads',
      );
    }
  });
  after(async () => {
    const stillSame = (await service.workers()).workers.map((worker) => worker.pid);
    await service?.stop();
    await redis?.stop();
    assert.deepEqual(stillSame, pids, 'no worker process died along the way');
  });

  test('a handler that throws is retried with exponential back-off and succeeds', async () => {
    const [job] = await enqueueMany(service, 1, 'flaky', {});
    assert.ok(job);
    const [done] = await waitForJobs(service, [job]);
    assert.equal(done?.result?.attempt, 2);
    assert.equal(done?.attemptsMade, 2);
    const enqueued = Date.parse(done?.timestamps.enqueuedAt ?? '');
    const started = Date.parse(done?.timestamps.startedAt ?? '');
    assert.ok(started - enqueued >= BACKOFF_MS, 'the retry waited for its back-off');
  });

  test('a job that keeps failing fails after JOB_ATTEMPTS, keeping its reason and its last progress', async () => {
    // Several at once, on both workers: the progress the dummy reports just before it throws (90:
    // a job that fails never reads 100, as if done) must be saved before the failure is, for every
    // one of them, not only when the timing is kind.
    const jobs = await enqueueMany(service, 8, 'doomed', { fail: 'disk on fire', durationMs: 1 });
    const failed = await waitForJobs(service, jobs, { state: 'failed' });
    for (const job of failed) {
      assert.equal(job.failedReason, 'disk on fire');
      assert.equal(job.attemptsMade, 3);
      assert.equal(job.progress, 90, `${job.jobId} failed with the progress its last step reported`);
      // Exponential: 200 ms then 400 ms between the three attempts.
      const span = Date.parse(job.timestamps.finishedAt ?? '') - Date.parse(job.timestamps.enqueuedAt ?? '');
      assert.ok(span >= BACKOFF_MS * 3, `three attempts took ${span} ms`);
    }
  });

  test('time limit, dead thread and memory limit each fail only their own job', async () => {
    const healthy = await enqueueMany(service, 4, 'healthy', { durationMs: 1_500 });
    const [hang] = await enqueueMany(service, 1, 'hang', { timeoutMs: 300 });
    const [exit] = await enqueueMany(service, 1, 'exit-thread', {});
    const [hog] = await enqueueMany(service, 1, 'memory-hog', {});
    assert.ok(hang && exit && hog);

    const failed = await waitForJobs(service, [hang, exit, hog], { state: 'failed', timeoutMs: 120_000 });
    const reasons = new Map(failed.map((job) => [job.jobName, job.failedReason ?? '']));
    assert.match(reasons.get('hang') ?? '', /time limit of 300 ms/);
    assert.match(reasons.get('exit-thread') ?? '', /exited with code: 3/);
    assert.match(reasons.get('memory-hog') ?? '', /memory limit/);
    assert.ok(
      failed.every((job) => job.attemptsMade === 3),
      'each failure counted as a failed attempt',
    );

    await waitForJobs(service, healthy);
    const after = await enqueueMany(service, 8, 'after', { durationMs: 50 });
    await waitForJobs(service, after);
    const threads = await service.request('GET', '/metrics');
    assert.match(threads.text, /bullpen_pool_threads\{worker="test-0",host="test"\} 4/, 'lost threads were replaced');
    await waitForIdle(service);
    assert.equal((await readJob(service, hang.jobId)).state, 'failed');
  });
});
