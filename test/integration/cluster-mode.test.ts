/**
 * The service on a real 3-master Redis Cluster (`REDIS_CLUSTER_NODES`), through the same helpers as
 * on one Redis: the workers' queues spread over the masters, least-loaded routing, the load ledger
 * back at 0, the listing, a delayed job, a cancel, and a batch. The faults of a cluster have files of
 * their own (test/faults/cluster-*.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ledgerKeys } from '../../src/contracts/keys.js';
import { waitForIdle, waitForJobs, type Enqueued, enqueueTask } from '../support/jobs.js';
import { startClusterService, type ClusterService } from '../support/cluster-service.js';
import { skipUnlessClusterTools } from '../support/redis-cluster.js';

const WORKERS = 4;
const CONCURRENCY = 2;

interface Placed {
  readonly jobId: string;
  readonly assignedWorker: string | null;
}

describe('on a Redis Cluster', { skip: skipUnlessClusterTools() }, () => {
  let stack: ClusterService;
  before(async () => {
    stack = await startClusterService({
      workers: WORKERS,
      env: { WORKER_CONCURRENCY: String(CONCURRENCY), TASK_DURATION_MS: '300' },
    });
  });
  after(() => stack?.stop());

  const enqueue = (body: unknown) => enqueueTask<Placed>(stack.service, body);
  const asEnqueued = (job: Placed): Enqueued => ({ jobId: job.jobId, assignedWorker: job.assignedWorker ?? '' });

  test("the workers' queues spread over the masters; the ledger sits in one slot", async () => {
    const masters = new Set<number>();
    for (let index = 0; index < WORKERS; index += 1) masters.add(await stack.masterOfQueue(`test-${index}`));
    assert.ok(masters.size >= 2, `queues on ${masters.size} master(s)`);
    const keys = ledgerKeys(stack.service.prefix);
    const slots = new Set(
      await Promise.all(
        [keys.heartbeats, keys.queued, keys.index, keys.jobs('test-0')].map((key) => stack.cluster.slotOf(key)),
      ),
    );
    assert.equal(slots.size, 1);
  });

  test('jobs are routed least-loaded, all complete, and the counters return to 0', async () => {
    const jobs = await Promise.all(
      Array.from({ length: WORKERS * CONCURRENCY * 2 }, () => enqueue({ jobName: 'spread' })),
    );
    const perWorker = new Map<string, number>();
    for (const job of jobs) perWorker.set(job.assignedWorker ?? '', (perWorker.get(job.assignedWorker ?? '') ?? 0) + 1);
    assert.deepEqual(
      [...perWorker.values()],
      Array.from({ length: WORKERS }, () => 2 * CONCURRENCY),
    );
    await waitForJobs(stack.service, jobs.map(asEnqueued));
    await waitForIdle(stack.service);
    const listed = await stack.service.request<{ jobs: { jobId: string }[] }>('GET', '/jobs?jobName=spread&limit=100');
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual(listed.body.jobs.map((job) => job.jobId).sort(), jobs.map((job) => job.jobId).sort());
  });

  test('a delayed job is routed when due; a waiting job is cancelled', async () => {
    const delayed = await enqueue({ jobName: 'later', data: { durationMs: 0 }, options: { delayMs: 500 } });
    assert.equal(delayed.assignedWorker, null);
    const [done] = await waitForJobs(stack.service, [asEnqueued(delayed)]);
    assert.ok(done?.assignedWorker?.startsWith('test-'));

    const held = await Promise.all(
      Array.from({ length: WORKERS * CONCURRENCY }, () => enqueue({ jobName: 'held', data: { durationMs: 1_500 } })),
    );
    const waiting = await enqueue({ jobName: 'waiting', data: { durationMs: 0 } });
    const cancelled = await stack.service.request<{ state: string }>('DELETE', `/jobs/${waiting.jobId}`);
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.equal(cancelled.body.state, 'cancelled');
    await waitForJobs(stack.service, held.map(asEnqueued));
    await waitForIdle(stack.service);
  });

  test('a batch over several queues is accepted whole, and its Idempotency-Key replays it', async () => {
    const send = () =>
      stack.service.request<{ tasks: Placed[] }>('POST', '/enqueue-tasks', {
        body: JSON.stringify({
          tasks: Array.from({ length: 8 }, (_, i) => ({ jobName: 'batch', data: { i, durationMs: 0 } })),
        }),
        headers: { 'content-type': 'application/json', 'idempotency-key': 'cluster-batch-1' },
      });
    const first = await send();
    assert.equal(first.status, 202, first.text);
    assert.equal(new Set(first.body.tasks.map((task) => task.assignedWorker)).size, WORKERS);
    const again = await send();
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.body, first.body);
    await waitForJobs(stack.service, first.body.tasks.map(asEnqueued));
    await waitForIdle(stack.service);
  });
});
