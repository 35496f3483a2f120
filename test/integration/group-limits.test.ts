/**
 * Limits per group (issue 22, item 3), pool-wide, on a real service of two two-slot workers (the
 * default prefetch), on one Redis or a cluster: a group at its concurrency holds no more than that
 * many jobs running and leaves the other slots to the other groups (no head-of-line blocking); a raised
 * limit applies at once; a paused group's tasks are accepted and wait while the others run; a rate
 * limit spaces the group's starts; the counts return to nothing once all is done.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createGate, FIXTURE_HANDLERS, GATE_JOB, type Gate } from '../support/gate.js';
import { startTestRedis } from '../support/test-redis.js';
import { serviceSuite } from '../support/service-suite.js';
import { waitFor } from '../support/wait.js';
import { waitForJobs, type Enqueued, type JobView } from '../support/jobs.js';
import type { GroupLedger } from '../../src/ledger/groups.js';
import { enqueueGateJobs, testGroupLedger } from '../support/groups.js';

describe('limits per group', () => {
  const suite = serviceSuite(startTestRedis, (redis) => ({
    ...redis.serviceOptions,
    workers: 2,
    env: { WORKER_CONCURRENCY: '2', HANDLERS_DIR: FIXTURE_HANDLERS, JOB_ATTEMPTS: '1' },
  }));

  const groups = (): GroupLedger => testGroupLedger(suite.redis.client, suite.service.prefix);

  const bulk = (gate: Gate, group: string, count: number): Promise<Enqueued[]> =>
    enqueueGateJobs(suite.service, gate, group, count);

  const countsOf = async (group: string) => {
    const { waiting, running } = await groups().view(group);
    return { waiting, running };
  };

  /** Polls until the counts read `expected`, then checks they still do a moment later. */
  const settlesAt = async (group: string, expected: { waiting: number; running: number }) => {
    await waitFor(async () => (JSON.stringify(await countsOf(group)) === JSON.stringify(expected) ? true : undefined), {
      timeoutMs: 20_000,
      what: `${group} to read ${JSON.stringify(expected)}`,
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(await countsOf(group), expected, `${group} stays at its limit`);
  };

  test('a group at its concurrency runs no more, the others use the free slots, a raise applies at once', async () => {
    const { redis, service } = suite;
    await groups().setSettings('capped', { concurrency: 2 });
    const held = createGate(redis.client, redis.nodeUrl);
    const free = createGate(redis.client, redis.nodeUrl);
    await free.open();
    const capped = await bulk(held, 'capped', 6);
    const others = await bulk(free, 'others', 8);
    // Two of the capped group hold two slots; the two other slots serve every other task.
    await waitForJobs(service, others);
    await settlesAt('capped', { waiting: 4, running: 2 });
    assert.equal((await held.started()).length, 2);

    await groups().setSettings('capped', { concurrency: 3 });
    await settlesAt('capped', { waiting: 3, running: 3 });

    await held.open();
    await waitForJobs(service, capped);
    assert.equal(new Set(await held.started()).size, 6, 'each capped job ran once');
    await groups().setSettings('capped', undefined);
  });

  test('a paused group accepts tasks that wait, while other groups run; resumed, they run', async () => {
    const { redis, service } = suite;
    await groups().setSettings('paused', { paused: true });
    const gate = createGate(redis.client, redis.nodeUrl);
    await gate.open();
    const paused = await bulk(gate, 'paused', 3);
    const others = await bulk(gate, 'others', 3);
    await waitForJobs(service, others);
    await settlesAt('paused', { waiting: 3, running: 0 });

    await groups().setSettings('paused', { paused: false });
    await waitForJobs(service, paused);
  });

  test('a rate limit spaces the group starts: at most max in any window of durationMs', async () => {
    const { redis, service } = suite;
    await groups().setSettings('limited', { rateLimit: { max: 2, durationMs: 1_000 } });
    const gate = createGate(redis.client, redis.nodeUrl);
    await gate.open();
    const limited = await bulk(gate, 'limited', 6);
    await waitForJobs(service, limited);
    const starts = (
      await Promise.all(
        limited.map(async ({ jobId }) => {
          const view = await service.request<JobView>('GET', `/jobs/${jobId}`);
          return Date.parse(view.body.timestamps.startedAt ?? '');
        }),
      )
    ).sort((a, b) => a - b);
    // The limit holds on the ledger's clock when each job is handed out; a start follows within
    // milliseconds, so the starts are spaced by the window less that jitter.
    for (let i = 0; i + 2 < starts.length; i += 1) {
      const gap = (starts[i + 2] ?? 0) - (starts[i] ?? 0);
      assert.ok(gap >= 900, `starts ${i} and ${i + 2} are ${gap} ms apart: ${starts.join(', ')}`);
    }
    await groups().setSettings('limited', undefined);
  });

  test('once every job ended, no group counts a job and nothing is held', async () => {
    const { redis, service } = suite;
    await waitFor(
      async () => {
        const all = await groups().all();
        return all.every(({ waiting, inflight, running }) => waiting + inflight + running === 0) ? true : undefined;
      },
      { timeoutMs: 30_000, what: 'every group count to be gone' },
    );
    assert.equal(await redis.client.zcard(`${service.prefix}:{sched}:groups:held`), 0);
  });
});

describe('a default concurrency for every group (GROUP_CONCURRENCY)', () => {
  const suite = serviceSuite(startTestRedis, (redis) => ({
    ...redis.serviceOptions,
    workers: 1,
    env: { WORKER_CONCURRENCY: '4', GROUP_CONCURRENCY: '1', HANDLERS_DIR: FIXTURE_HANDLERS, JOB_ATTEMPTS: '1' },
  }));

  test('caps every group without its own; a group setting overrides it', async () => {
    const { redis, service } = suite;
    const groups = testGroupLedger(redis.client, service.prefix, 1);
    await groups.setSettings('wider', { concurrency: 2 });
    const gate = createGate(redis.client, redis.nodeUrl);
    const tasks = ['one', 'one', 'one', 'wider', 'wider', 'wider'].map((group, i) => ({
      jobName: GATE_JOB,
      group,
      data: gate.data({ i }),
    }));
    const response = await service.request<{ tasks: Enqueued[] }>('POST', '/enqueue-tasks', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tasks }),
    });
    assert.equal(response.status, 202, response.text);
    await gate.waitStarted(3);
    const counts = async () => {
      const [one, wider] = await Promise.all([groups.view('one'), groups.view('wider')]);
      return [one.running, one.waiting, wider.running, wider.waiting];
    };
    await waitFor(async () => (JSON.stringify(await counts()) === '[1,2,2,1]' ? true : undefined), {
      what: 'one of `one` and two of `wider` to run',
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(await counts(), [1, 2, 2, 1], 'the fourth slot stays free: no group may start another');
    await gate.open();
    await waitForJobs(service, response.body.tasks);
    await groups.setSettings('wider', undefined);
  });
});
