/**
 * Per-job options on a real service (one worker, one slot): `priority` orders one worker's waiting
 * jobs, those without a priority first; `attempts` and `backoffMs` override the service's retry
 * defaults; and options that are out of range or unknown are refused with 400, enqueuing nothing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createGate, FIXTURE_HANDLERS, GATE_JOB, holdSlots, openGate } from '../support/gate.js';
import { readJob, waitForIdle, waitForJobs, type Enqueued, enqueueTask } from '../support/jobs.js';
import { startRedis } from '../support/redis-server.js';
import { serviceSuite } from '../support/service-suite.js';
import { queueNameFor } from '../../src/contracts/names.js';

interface Refusal {
  readonly code: string;
  readonly details: { path: string; message: string }[];
}

describe('job options', () => {
  const suite = serviceSuite(startRedis, (redis) => ({
    redisUrl: redis.url,
    workers: 1,
    env: { WORKER_CONCURRENCY: '1', HANDLERS_DIR: FIXTURE_HANDLERS, JOB_ATTEMPTS: '3', JOB_BACKOFF_MS: '20000' },
  }));

  const enqueue = (body: unknown) => enqueueTask<Enqueued>(suite.service, body);

  test('priority orders waiting jobs: without one first, then 1, 3, 5', async () => {
    const { redis, service } = suite;
    const blocker = createGate(redis.client, redis.url);
    const ordered = await openGate(redis.client, redis.url);
    const held = await holdSlots(service, blocker, 1);
    // The slot is taken: these wait, and start one at a time in the order the queue gives them.
    const jobs = {
      p5: await enqueue({ jobName: GATE_JOB, data: ordered.data(), options: { priority: 5 } }),
      p1: await enqueue({ jobName: GATE_JOB, data: ordered.data(), options: { priority: 1 } }),
      none: await enqueue({ jobName: GATE_JOB, data: ordered.data() }),
      p3: await enqueue({ jobName: GATE_JOB, data: ordered.data(), options: { priority: 3 } }),
    };
    await blocker.open();
    await waitForJobs(service, [...held, ...Object.values(jobs)]);
    const names = new Map(Object.entries(jobs).map(([name, job]) => [job.jobId, name]));
    assert.deepEqual(
      (await ordered.started()).map((id) => names.get(id)),
      ['none', 'p1', 'p3', 'p5'],
    );
    assert.equal(
      (await service.request<{ priority: number | null }>('GET', `/jobs/${jobs.p3.jobId}`)).body.priority,
      3,
    );
    assert.equal(
      (await service.request<{ priority: number | null }>('GET', `/jobs/${jobs.none.jobId}`)).body.priority,
      null,
    );
  });

  test('attempts and backoffMs override the defaults for one job', async () => {
    const { service } = suite;
    const startedAt = Date.now();
    const job = await enqueue({
      jobName: 'retried',
      data: { durationMs: 0, fail: 'always' },
      options: { attempts: 2, backoffMs: 50 },
    });
    const [failed] = await waitForJobs(service, [job], { state: 'failed', timeoutMs: 30_000 });
    assert.equal(failed?.attemptsMade, 2, 'two attempts, not the default three');
    assert.equal((await service.request<{ attempts: number }>('GET', `/jobs/${job.jobId}`)).body.attempts, 2);
    assert.equal((await readJob(service, job.jobId)).failedReason, 'always');
    // The default back-off (20 s) would have held the retry for 20 s; the job's own is 50 ms.
    assert.ok(Date.now() - startedAt < 10_000, 'retried after its own back-off, not the default');
    await waitForIdle(service);
  });

  test('out-of-range or unknown options are refused with 400 naming them, and nothing is enqueued', async () => {
    const { redis, service } = suite;
    const waitingBefore = await redis.client.llen(`${service.prefix}:${queueNameFor('test-0')}:wait`);
    const cases: [unknown, string][] = [
      [{ priority: 0 }, 'options.priority'],
      [{ priority: 2_097_153 }, 'options.priority'],
      [{ priority: 1.5 }, 'options.priority'],
      [{ attempts: 0 }, 'options.attempts'],
      [{ attempts: 101 }, 'options.attempts'],
      [{ backoffMs: -1 }, 'options.backoffMs'],
      [{ sooner: true }, 'options'],
      ['fast', 'options'],
    ];
    for (const [options, path] of cases) {
      const response = await service.enqueue<Refusal>({ jobName: 'refused', options });
      assert.equal(response.status, 400, JSON.stringify(options));
      assert.equal(response.body.code, 'VALIDATION_FAILED');
      assert.ok(
        response.body.details.some((detail) => detail.path === path),
        `${JSON.stringify(options)}: ${JSON.stringify(response.body.details)}`,
      );
    }
    assert.equal(await redis.client.llen(`${service.prefix}:${queueNameFor('test-0')}:wait`), waitingBefore);
    assert.equal(await redis.client.zcard(`${service.prefix}:${queueNameFor('test-0')}:prioritized`), 0);
  });
});
