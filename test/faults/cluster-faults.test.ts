/**
 * Faults of a Redis Cluster under the service (issue 12): a master restarted (the same process, with
 * AOF) while jobs wait and run on it loses no accepted job, and the service carries on by itself;
 * while a master is down, requests that need it are refused with a JSON 503 rather than left hanging.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { waitForIdle, type JobView } from '../support/jobs.js';
import { startClusterService, type ClusterService } from '../support/cluster-service.js';
import { skipUnlessClusterTools } from '../support/redis-cluster.js';
import { waitFor } from '../support/wait.js';

const WORKERS = 3;

interface Placed {
  readonly jobId: string;
  readonly assignedWorker: string;
}

describe('Redis Cluster faults', { skip: skipUnlessClusterTools() }, () => {
  let stack: ClusterService;
  before(async () => {
    stack = await startClusterService({
      // A short node time-out, so that a master down for longer is marked failed, and cleared, quickly.
      cluster: { appendOnly: true, nodeTimeoutMs: 3_000 },
      workers: WORKERS,
      env: { WORKER_CONCURRENCY: '2', LOCK_DURATION_MS: '5000' },
    });
  });
  after(() => stack?.stop());

  test('a master restarted with AOF loses no accepted job, and the service resumes by itself', async () => {
    const enqueued: Placed[] = [];
    for (let i = 0; i < WORKERS * 4; i += 1) {
      const response = await stack.service.enqueue<Placed>({ jobName: 'survivor', data: { i, durationMs: 1_000 } });
      assert.equal(response.status, 202, response.text);
      enqueued.push(response.body);
    }
    const victim = await stack.masterOfQueue('test-0');
    await stack.cluster.stopNode(victim);
    // Down for longer than the node time-out: the cluster marks it failed and stops serving.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    await stack.cluster.startNode(victim);
    await stack.cluster.waitUntilOk(60_000);

    // Every accepted job completes (some may run twice: delivery is at-least-once).
    await waitFor(
      async () => {
        const views = await Promise.all(
          enqueued.map(async (job) => (await stack.service.request<JobView>('GET', `/jobs/${job.jobId}`)).body),
        );
        return views.every((view) => view.state === 'completed');
      },
      { timeoutMs: 120_000, intervalMs: 500, what: 'every accepted job to complete after the restart' },
    );
    await waitFor(
      async () => (await stack.service.enqueue({ jobName: 'after', data: { durationMs: 0 } })).status === 202,
      { timeoutMs: 60_000, intervalMs: 500, what: 'enqueue to work again' },
    );
    await waitForIdle(stack.service);
  });

  test('while a master is down, a request that needs it gets a JSON 503, and the process keeps serving', async () => {
    const victim = await stack.masterOfQueue('test-1');
    await stack.cluster.stopNode(victim);
    try {
      // Once the cluster marks the master failed, every slot is refused (full coverage is required).
      const refused = await waitFor(
        async () => {
          const response = await stack.service.request<{ code: string }>('GET', '/jobs/test-1~missing');
          return response.status === 503 ? response : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250, what: 'a 503 while the master is down' },
      );
      assert.equal(refused.body.code, 'QUEUE_UNAVAILABLE');
      assert.equal(
        (await stack.service.request('GET', '/healthz')).headers.get('content-type')?.startsWith('application/json'),
        true,
      );
    } finally {
      await stack.cluster.startNode(victim);
      await stack.cluster.waitUntilOk(60_000);
    }
    await waitFor(
      async () => (await stack.service.enqueue({ jobName: 'back', data: { durationMs: 0 } })).status === 202,
      { timeoutMs: 60_000, intervalMs: 500, what: 'enqueue to work again' },
    );
    await waitForIdle(stack.service);
  });
});
