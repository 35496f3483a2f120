/**
 * `options.delayMs` and `options.timeoutMs` on a real service of two one-slot workers, on one Redis
 * or a cluster (test/support/test-redis.ts). A delayed job reads `delayed`, holds no slot on any
 * worker while it waits, and when due is routed to the least-loaded worker then; it can be cancelled
 * while it waits. `timeoutMs` stops one job's run.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createGate, FIXTURE_HANDLERS, GATE_JOB, holdSlots, openGate } from '../support/gate.js';
import { readJob, waitForIdle, waitForJobs, type Enqueued, enqueueTask } from '../support/jobs.js';
import { startTestRedis } from '../support/test-redis.js';
import { serviceSuite } from '../support/service-suite.js';
import { queueNameFor, DELAYED_QUEUE } from '../../src/contracts/names.js';
import { jobIndexKey } from '../../src/contracts/keys.js';

interface Delayed {
  readonly jobId: string;
  readonly assignedWorker: string | null;
}

interface Refusal {
  readonly code: string;
  readonly details: { path: string; message: string }[];
}

const JOB_TIMEOUT_MS = 60_000;

describe('delayed jobs and per-job time-outs', () => {
  const suite = serviceSuite(startTestRedis, (redis) => ({
    ...redis.serviceOptions,
    workers: 2,
    env: {
      WORKER_CONCURRENCY: '1',
      HANDLERS_DIR: FIXTURE_HANDLERS,
      JOB_ATTEMPTS: '1',
      JOB_TIMEOUT_MS: String(JOB_TIMEOUT_MS),
      MAX_TASK_DURATION_MS: '30000',
    },
  }));

  const enqueue = (body: unknown) => enqueueTask<Delayed>(suite.service, body);
  const asEnqueued = (job: Delayed): Enqueued => ({ jobId: job.jobId, assignedWorker: job.assignedWorker ?? '' });

  test('a delayed job waits without load, then runs on the least-loaded worker, not before it is due', async () => {
    const { redis, service } = suite;
    const gate = createGate(redis.client, redis.nodeUrl);
    const [held] = await holdSlots(service, gate, 1);
    assert.ok(held);
    const delayMs = 1_500;
    const delayed = await enqueue({ jobName: 'later', data: { durationMs: 0 }, options: { delayMs } });
    assert.equal(delayed.assignedWorker, null, 'no worker is chosen before it is due');
    assert.match(delayed.jobId, /^scheduled~/);

    const waiting = await readJob(service, delayed.jobId);
    assert.equal(waiting.state, 'delayed');
    assert.equal(waiting.assignedWorker, null);
    const { totals } = await service.workers();
    assert.deepEqual([totals.queued, totals.active], [0, 1], 'only the held job counts: the delayed one adds no load');

    const [done] = await waitForJobs(service, [asEnqueued(delayed)]);
    assert.ok(done);
    // One worker is busy with the held job: the delayed job went to the other one.
    assert.ok(done.assignedWorker !== null && done.assignedWorker !== held.assignedWorker, JSON.stringify(done));
    const enqueuedAt = Date.parse(done.timestamps.enqueuedAt ?? '');
    const startedAt = Date.parse(done.timestamps.startedAt ?? '');
    assert.ok(
      startedAt >= enqueuedAt + delayMs,
      `started ${startedAt - enqueuedAt} ms after enqueue, before it was due`,
    );
    await gate.open();
    await waitForIdle(service);
  });

  test('a delayed job can be cancelled while it waits, and then never runs', async () => {
    const { redis, service } = suite;
    const gate = await openGate(redis.client, redis.nodeUrl);
    const delayed = await enqueue({ jobName: GATE_JOB, data: gate.data(), options: { delayMs: 1_000 } });
    const response = await service.request<{ state: string }>('DELETE', `/jobs/${delayed.jobId}`);
    assert.equal(response.status, 200, response.text);
    assert.equal(response.body.state, 'cancelled');
    // Past its due time, with a job enqueued after it done: it would have run by now.
    const later = await enqueue({ jobName: GATE_JOB, data: gate.data(), options: { delayMs: 1_200 } });
    await waitForJobs(service, [asEnqueued(later)]);
    assert.equal((await readJob(service, delayed.jobId)).state, 'cancelled');
    assert.deepEqual(await gate.started(), [later.jobId]);
  });

  test('a batch may mix delayed and immediate tasks', async () => {
    const { service } = suite;
    const response = await service.request<{ tasks: Delayed[] }>('POST', '/enqueue-tasks', {
      body: JSON.stringify({
        tasks: [
          { jobName: 'now', data: { durationMs: 0 } },
          { jobName: 'soon', data: { durationMs: 0 }, options: { delayMs: 300 } },
        ],
      }),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(response.status, 202, response.text);
    const [now, soon] = response.body.tasks as [Delayed, Delayed];
    assert.notEqual(now.assignedWorker, null);
    assert.equal(soon.assignedWorker, null);
    await waitForJobs(service, [asEnqueued(now), asEnqueued(soon)]);
    await waitForIdle(service);
  });

  test('options.timeoutMs stops one job at its own limit', async () => {
    const { service } = suite;
    const job = await enqueue({ jobName: 'hang', options: { timeoutMs: 300 } });
    const [failed] = await waitForJobs(service, [asEnqueued(job)], { state: 'failed' });
    assert.match(failed?.failedReason ?? '', /time limit of 300 ms/);
    assert.equal((await service.request<{ timeoutMs: number }>('GET', `/jobs/${job.jobId}`)).body.timeoutMs, 300);
    await waitForIdle(service);
  });

  test('out-of-range delays and time-outs are refused with 400, and nothing is enqueued', async () => {
    const { redis, service } = suite;
    const before = await redis.client.zcard(jobIndexKey(service.prefix));
    const cases: [unknown, string][] = [
      [{ delayMs: -1 }, 'options.delayMs'],
      [{ delayMs: 30 * 24 * 3_600_000 + 1 }, 'options.delayMs'],
      [{ delayMs: 1.5 }, 'options.delayMs'],
      [{ delayMs: '100' }, 'options.delayMs'],
      [{ timeoutMs: 0 }, 'options.timeoutMs'],
      [{ timeoutMs: JOB_TIMEOUT_MS + 1 }, 'options.timeoutMs'],
    ];
    for (const [options, path] of cases) {
      const response = await service.enqueue<Refusal>({ jobName: 'refused', options });
      assert.equal(response.status, 400, JSON.stringify(options));
      assert.ok(
        response.body.details.some((detail) => detail.path === path),
        `${JSON.stringify(options)}: ${JSON.stringify(response.body.details)}`,
      );
    }
    assert.equal(await redis.client.zcard(jobIndexKey(service.prefix)), before);
    assert.equal(await redis.client.zcard(`${service.prefix}:${queueNameFor(DELAYED_QUEUE)}:delayed`), 0);
  });
});
