/**
 * A task's tenant `group` (issue 22, item 1) on a real service of two one-slot workers, on one Redis
 * or a cluster (test/support/test-redis.ts): accepted on single and bulk enqueue, `default` when not
 * given, refused with 400 naming the field when malformed (nothing enqueued), and kept with the job
 * wherever it goes: `GET /jobs/:id`, the `group` filter of `GET /jobs`, the job's events, a delayed
 * job's routing, a retry and an idempotent replay. Moves are checked in stealing.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FIXTURE_HANDLERS } from '../support/gate.js';
import { waitForJobs, type Enqueued, type JobView, enqueueTask } from '../support/jobs.js';
import { startTestRedis } from '../support/test-redis.js';
import { serviceSuite } from '../support/service-suite.js';
import { readEvents } from '../support/sse.js';
import { jobIndexKey } from '../../src/contracts/keys.js';

interface Grouped extends JobView {
  readonly group: string;
  readonly data: unknown;
}

interface Refusal {
  readonly code: string;
  readonly details: { path: string; message: string }[];
}

/** The fields a refusal names (an empty group breaks two rules of one field). */
const pathsOf = ({ details }: Refusal): string[] => [...new Set(details.map(({ path }) => path))];

describe('task groups', () => {
  const suite = serviceSuite(startTestRedis, (redis) => ({
    ...redis.serviceOptions,
    workers: 2,
    env: { WORKER_CONCURRENCY: '1', HANDLERS_DIR: FIXTURE_HANDLERS, JOB_ATTEMPTS: '1' },
  }));

  const enqueue = (body: unknown) => enqueueTask<Enqueued & { assignedWorker: string | null }>(suite.service, body);
  const read = async (jobId: string): Promise<Grouped> => {
    const response = await suite.service.request<Grouped>('GET', `/jobs/${jobId}`);
    assert.equal(response.status, 200, response.text);
    return response.body;
  };
  const listed = async (query: string): Promise<Grouped[]> => {
    const response = await suite.service.request<{ jobs: Grouped[] }>('GET', `/jobs?${query}`);
    assert.equal(response.status, 200, response.text);
    return response.body.jobs;
  };
  /** A job whose worker is chosen later (a delayed one) is followed by its id alone. */
  const asEnqueued = ({ jobId, assignedWorker }: { jobId: string; assignedWorker: string | null }): Enqueued => ({
    jobId,
    assignedWorker: assignedWorker ?? '',
  });

  test('a group is kept on single and bulk enqueue, `default` without one, and the data stays the client’s', async () => {
    const { service } = suite;
    const single = await enqueue({ jobName: 'plain', group: 'tenant-a:eu.1_x', data: { durationMs: 0, n: 1 } });
    const plain = await enqueue({ jobName: 'plain', data: { durationMs: 0 } });
    const bulk = await service.request<{ tasks: Enqueued[] }>('POST', '/enqueue-tasks', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        tasks: [
          { jobName: 'plain', group: 'tenant-b', data: { durationMs: 0 } },
          { jobName: 'plain', data: { durationMs: 0 } },
          { jobName: 'plain', group: 'default', data: { durationMs: 0 } },
        ],
      }),
    });
    assert.equal(bulk.status, 202, bulk.text);
    const all = [single, plain, ...bulk.body.tasks].map(asEnqueued);
    await waitForJobs(service, all);

    const views = await Promise.all(all.map(({ jobId }) => read(jobId)));
    assert.deepEqual(
      views.map((view) => view.group),
      ['tenant-a:eu.1_x', 'default', 'tenant-b', 'default', 'default'],
    );
    assert.deepEqual(views[0]?.data, { durationMs: 0, n: 1 }, 'the group is not part of the data');

    const tenantA = await listed('group=tenant-a:eu.1_x');
    assert.deepEqual(
      tenantA.map((view) => view.jobId),
      [single.jobId],
    );
    const defaults = (await listed('group=default')).map((view) => view.jobId).sort();
    assert.deepEqual(defaults, [plain.jobId, bulk.body.tasks[1]?.jobId, bulk.body.tasks[2]?.jobId].sort());
    assert.deepEqual(await listed('group=nobody&state=completed'), []);

    const { events } = await readEvents(`${service.url}/jobs/${single.jobId}/events`);
    assert.ok(events.length > 0);
    for (const { event, data } of events) {
      assert.equal((data as { group?: string }).group, 'tenant-a:eu.1_x', `the ${event} event names the group`);
    }
  });

  test('a malformed group is refused with 400 naming it, and nothing is enqueued', async () => {
    const { redis, service } = suite;
    const indexed = () => redis.client.zcard(jobIndexKey(service.prefix));
    const before = await indexed();
    const bad: unknown[] = ['g'.repeat(65), '', 'a b', 'tenant/a', 'é', 5, null, ['a'], { name: 'a' }];
    for (const group of bad) {
      const single = await service.request<Refusal>('POST', '/enqueue-task', {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jobName: 'plain', group, data: { durationMs: 0 } }),
      });
      assert.equal(single.status, 400, `${JSON.stringify(group)}: ${single.text}`);
      assert.equal(single.body.code, 'VALIDATION_FAILED');
      assert.deepEqual(pathsOf(single.body), ['group']);
      const many = await service.request<Refusal>('POST', '/enqueue-tasks', {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          tasks: [
            { jobName: 'plain', group: 'fine', data: { durationMs: 0 } },
            { jobName: 'plain', group, data: { durationMs: 0 } },
          ],
        }),
      });
      assert.equal(many.status, 400, many.text);
      assert.deepEqual(pathsOf(many.body), ['tasks.1.group']);
    }
    assert.ok(
      (
        await service.request<Refusal>('POST', '/enqueue-task', {
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ jobName: 'plain', group: 'g'.repeat(64), data: { durationMs: 0 } }),
        })
      ).status === 202,
      '64 characters are allowed',
    );
    assert.equal(await indexed(), before + 1, 'only the valid task was enqueued');
    const query = await service.request<Refusal>('GET', '/jobs?group=a%20b');
    assert.equal(query.status, 400, query.text);
    assert.equal(query.body.details[0]?.path, 'group');
  });

  test('a delayed job keeps its group when it is routed, and a retry and a replay keep it too', async () => {
    const { service } = suite;
    const delayed = await enqueue({
      jobName: 'plain',
      group: 'tenant-d',
      data: { durationMs: 0 },
      options: { delayMs: 500 },
    });
    assert.equal(delayed.assignedWorker, null);
    assert.equal((await read(delayed.jobId)).group, 'tenant-d', 'while it waits in the delayed queue');
    const failing = await enqueue({
      jobName: 'failing',
      group: 'tenant-r',
      data: { durationMs: 0, fail: 'on purpose' },
    });
    await waitForJobs(service, [asEnqueued(delayed)]);
    const routed = await read(delayed.jobId);
    assert.notEqual(routed.assignedWorker, null, 'it was routed to a worker');
    assert.equal(routed.group, 'tenant-d');

    await waitForJobs(service, [asEnqueued(failing)], { state: 'failed' });
    const retried = await service.request<Enqueued>('POST', `/jobs/${failing.jobId}/retry`);
    assert.equal(retried.status, 202, retried.text);
    assert.equal((await read(retried.body.jobId)).group, 'tenant-r', 'the retry runs in the same group');

    const keyed = (group: string) =>
      service.request<Enqueued>('POST', '/enqueue-task', {
        headers: { 'content-type': 'application/json', 'idempotency-key': 'group-replay' },
        body: JSON.stringify({ jobName: 'plain', group, data: { durationMs: 0 } }),
      });
    const first = await keyed('tenant-k');
    assert.equal(first.status, 202, first.text);
    const replay = await keyed('tenant-k');
    assert.equal(replay.status, 200, replay.text);
    assert.equal(replay.body.jobId, first.body.jobId);
    assert.equal((await read(replay.body.jobId)).group, 'tenant-k');
    const otherGroup = await keyed('tenant-other');
    assert.equal(otherGroup.status, 422, 'the same key with another group is another request');
    await waitForJobs(service, [retried.body], { state: 'failed' });
    await waitForJobs(service, [first.body]);
  });
});
