/**
 * Work stealing with real processes: a worker whose own queue is empty takes the waiting jobs of a
 * worker busy with a long job, instead of leaving them to wait behind it. The 202 answer keeps the
 * first choice; GET /jobs/:id shows where the job ran and where it came from; the ledger follows.
 * Every job is a gate job, so the order of events is fixed by the test, not by durations.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createGate, FIXTURE_HANDLERS, GATE_JOB, holdSlots, type Gate } from '../support/gate.js';
import { enqueueTask, readJob, waitForIdle, waitForJobs, type Enqueued } from '../support/jobs.js';
import { parseMetrics, total } from '../support/prom-text.js';
import { startTestRedis } from '../support/test-redis.js';
import type { Service } from '../support/service.js';
import { serviceSuite } from '../support/service-suite.js';

/** In a group of their own: a stolen job keeps it (issue 22). */
const GROUP = 'tenant-stolen';
const enqueue = (service: Service, gate: Gate) =>
  enqueueTask(service, { jobName: GATE_JOB, group: GROUP, data: gate.data() });

describe('work stealing', () => {
  const suite = serviceSuite(startTestRedis, (redis) => ({
    ...redis.serviceOptions,
    workers: 2,
    // Room for three jobs beyond each worker's slot (PREFETCH): jobs wait on a worker, as they did
    // before groups, only as its prefetch (and after a retry); with none, they wait in the held queue.
    env: { WORKER_CONCURRENCY: '1', PREFETCH: '3', HANDLERS_DIR: FIXTURE_HANDLERS },
  }));

  test('jobs waiting behind a long one run on the idle worker before the long one ends', async () => {
    const { redis, service } = suite;
    // The long job holds its worker's only slot until the end; the short ones are held until all are
    // placed, so that the routing sees the same load whatever the machine's speed.
    const longGate = createGate(redis.client, redis.nodeUrl);
    const shortGate = createGate(redis.client, redis.nodeUrl);
    const [long] = await holdSlots(service, longGate, 1);
    assert.ok(long);
    const shorts: Enqueued[] = [];
    for (let i = 0; i < 7; i += 1) shorts.push(await enqueue(service, shortGate));
    const behindLong = shorts.filter((job) => job.assignedWorker === long.assignedWorker);
    assert.equal(behindLong.length, 3, 'least-loaded routing still placed jobs behind the long one');
    const idle = shorts.find((job) => job.assignedWorker !== long.assignedWorker)?.assignedWorker;

    await shortGate.open();
    const done = await waitForJobs(service, shorts);
    assert.equal((await readJob(service, long.jobId)).state, 'active', 'the long job is still running');
    for (const job of done.filter((view) => behindLong.some((stolen) => stolen.jobId === view.jobId))) {
      assert.equal(job.assignedWorker, idle, 'it ran on the idle worker');
      assert.deepEqual(job.movedFrom, [long.assignedWorker]);
      assert.equal(job.attemptsStarted, 1);
      assert.equal((job as typeof job & { group: string }).group, GROUP, 'it kept its group');
    }
    const samples = parseMetrics((await service.request('GET', '/metrics')).text);
    assert.equal(total(samples, 'bullpen_jobs_moved_total', { reason: 'stolen' }), 3);
    assert.equal(total(samples, 'bullpen_jobs_moved_total', { reason: 'retired' }), 0);
    await longGate.open();
    await waitForJobs(service, [long]);
    await waitForIdle(service);
  });
});
