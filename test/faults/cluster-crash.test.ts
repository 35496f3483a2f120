/**
 * Crashes between the slots of a Redis Cluster (issue 12), where what one Redis does in one
 * transaction takes several:
 * - an enqueue with an Idempotency-Key, whose jobs and key record live in different slots: a worker
 *   process killed part-way (after its plan is written, or after the first of several queues' adds)
 *   leaves a plan, and the client's retry with the same key, once the plan is stale, finishes that
 *   enqueue. One key makes one set of jobs, all of them run;
 * - a delayed job's routing, killed between its location record and its add: BullMQ runs the
 *   routing again, which adds the job once.
 * Each time the load ledger returns to 0.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { waitForIdle, waitForJobs } from '../support/jobs.js';
import { startClusterService, type ClusterService } from '../support/cluster-service.js';
import { skipUnlessClusterTools } from '../support/redis-cluster.js';
import type { HttpResult } from '../support/service.js';
import { waitFor } from '../support/wait.js';

const WORKERS = 3;
/**
 * How old a dead request's plan must be before a retry takes it over (IDEMPOTENCY_STALE_CLAIM_MS):
 * the retries only wait this out, so it is lower than the 30 s default, and above the harness's
 * COMMAND_TIMEOUT_MS (5 s), as the configuration requires.
 */
const STALE_CLAIM_MS = 6_000;

interface Placed {
  readonly jobId: string;
  readonly assignedWorker: string | null;
}

describe('crashes between the slots of a Redis Cluster', { skip: skipUnlessClusterTools() }, () => {
  let stack: ClusterService;
  before(async () => {
    stack = await startClusterService({
      workers: WORKERS,
      // A routing cut off by the kill is run again once its lock lapses.
      env: {
        BULLPEN_KILL_HOOK: 'true',
        WORKER_CONCURRENCY: '2',
        LOCK_DURATION_MS: '5000',
        IDEMPOTENCY_STALE_CLAIM_MS: String(STALE_CLAIM_MS),
      },
    });
  });
  after(() => stack?.stop());

  const post = <T>(path: string, key: string, body: unknown): Promise<HttpResult<T>> =>
    stack.service.request<T>('POST', path, {
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
    });

  const arming = () => `${stack.service.prefix}:test:kill-after-add-step`;

  /** Sends a request whose worker process kills itself after `step`; its client gets no answer. */
  const crashAt = async (step: string, path: string, key: string, body: unknown) => {
    await stack.cluster.client.set(arming(), step);
    await assert.rejects(post(path, key, body), 'the process that took the request died before answering');
    assert.equal(await stack.cluster.client.exists(arming()), 0, 'the arming was used');
  };

  /** Retries until the dead request's plan is stale and the retry finishes it. */
  const retryUntilAnswered = <T>(path: string, key: string, body: unknown): Promise<HttpResult<T>> =>
    waitFor(
      async () => {
        const response = await post<T>(path, key, body).catch(() => undefined);
        if (response === undefined) return undefined;
        // Until the plan is stale, its key reads as held by a request still running.
        if (response.status === 409) return undefined;
        return response;
      },
      { timeoutMs: STALE_CLAIM_MS + 60_000, intervalMs: 1_000, what: 'the retry to finish the dead request' },
    );

  /** The jobs of this name in the listing (every job created, whatever its state). */
  const listed = async (jobName: string): Promise<string[]> => {
    const page = await stack.service.request<{ jobs: { jobId: string }[] }>(
      'GET',
      `/jobs?jobName=${jobName}&limit=100`,
    );
    assert.equal(page.status, 200, page.text);
    return page.body.jobs.map((job) => job.jobId).sort();
  };

  test('killed after the plan, before any add: the retry adds the job and answers the planned id', async () => {
    const body = { jobName: 'planned-only', data: { durationMs: 0 } };
    await crashAt('planned', '/enqueue-task', 'key-planned', body);
    assert.deepEqual(await listed('planned-only'), [], 'no job was added before the crash');

    const response = await retryUntilAnswered<Placed>('/enqueue-task', 'key-planned', body);
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('idempotent-replayed'), 'true');
    await waitForJobs(stack.service, [
      { jobId: response.body.jobId, assignedWorker: response.body.assignedWorker ?? '' },
    ]);
    assert.deepEqual(await listed('planned-only'), [response.body.jobId], 'exactly one job for the key');

    const again = await post<Placed>('/enqueue-task', 'key-planned', body);
    assert.equal(again.status, 200);
    assert.equal(again.body.jobId, response.body.jobId);
  });

  test('killed after the first of several queues: the retry adds the rest, and every job runs once', async () => {
    const body = {
      tasks: Array.from({ length: WORKERS * 2 }, (_, i) => ({ jobName: 'half-batch', data: { i, durationMs: 0 } })),
    };
    await crashAt('added 1', '/enqueue-tasks', 'key-batch', body);
    const before = await listed('half-batch');
    assert.ok(before.length > 0 && before.length < body.tasks.length, `${before.length} jobs before the retry`);

    const response = await retryUntilAnswered<{ tasks: Placed[] }>('/enqueue-tasks', 'key-batch', body);
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('idempotent-replayed'), 'true');
    const planned = response.body.tasks;
    assert.equal(planned.length, body.tasks.length);
    // The jobs added before the crash are among the answer's: none was made twice.
    for (const jobId of before)
      assert.ok(
        planned.some((job) => job.jobId === jobId),
        `${jobId} is in the answer`,
      );
    assert.deepEqual(await listed('half-batch'), planned.map((job) => job.jobId).sort());
    await waitForJobs(
      stack.service,
      planned.map((job) => ({ jobId: job.jobId, assignedWorker: job.assignedWorker ?? '' })),
    );
    await waitForIdle(stack.service);
  });

  test("killed between a delayed job's location and its add: the job is routed again, once, and runs once", async () => {
    await stack.cluster.client.set(arming(), 'located');
    const response = await stack.service.enqueue<Placed>({
      jobName: 'routed-once',
      data: { durationMs: 0 },
      options: { delayMs: 300 },
    });
    assert.equal(response.status, 202, response.text);
    await waitFor(async () => (await stack.cluster.client.exists(arming())) === 0, {
      timeoutMs: 30_000,
      what: 'a router to reach the step and die',
    });
    const [view] = await waitForJobs(stack.service, [{ jobId: response.body.jobId, assignedWorker: '' }]);
    assert.notEqual(view?.assignedWorker, null, 'routed to a worker');
    assert.deepEqual(await listed('routed-once'), [response.body.jobId], 'one job, under its first id');
    await waitForIdle(stack.service);
  });
});
