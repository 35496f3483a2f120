/**
 * Fair order between groups (issue 22, item 2) on a real service of one one-slot worker with no
 * prefetch, so that the order in which jobs start is exactly the order in which they were handed out:
 * on one Redis or a cluster (test/support/test-redis.ts). Blockers hold the slot while the tasks
 * under test arrive and wait in the held queue; once the blockers end, the tasks start one at a time,
 * and the gate fixture records their order. Checked: round robin between groups against arrival
 * order, weights, priority before groups, arrival order within a group, a held job's view and cancel,
 * a delayed job that falls due into a busy pool, and the group counts once all is done.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createGate, FIXTURE_HANDLERS, GATE_JOB, type Gate } from '../support/gate.js';
import { startTestRedis } from '../support/test-redis.js';
import { serviceSuite } from '../support/service-suite.js';
import { waitFor } from '../support/wait.js';
import type { GroupSettings } from '../../src/ledger/groups.js';
import { testGroupLedger } from '../support/groups.js';
import type { Enqueued } from '../support/jobs.js';

interface Task {
  readonly group?: string;
  readonly priority?: number;
  readonly delayMs?: number;
}

describe('fair order between groups', () => {
  const suite = serviceSuite(startTestRedis, (redis) => ({
    ...redis.serviceOptions,
    workers: 1,
    env: { WORKER_CONCURRENCY: '1', PREFETCH: '0', HANDLERS_DIR: FIXTURE_HANDLERS, JOB_ATTEMPTS: '1' },
  }));

  const bulk = async (gate: Gate, tasks: readonly Task[]): Promise<Enqueued[]> => {
    const response = await suite.service.request<{ tasks: Enqueued[] }>('POST', '/enqueue-tasks', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        tasks: tasks.map(({ group, priority, delayMs }, i) => ({
          jobName: GATE_JOB,
          ...(group === undefined ? {} : { group }),
          data: gate.data({ i, group: group ?? 'default' }),
          ...(priority === undefined && delayMs === undefined
            ? {}
            : { options: { ...(priority === undefined ? {} : { priority }), ...(delayMs ? { delayMs } : {}) } }),
        })),
      }),
    });
    assert.equal(response.status, 202, response.text);
    return response.body.tasks;
  };

  /** A blocker holds the one slot until its gate opens; the tasks enqueued meanwhile are held. */
  const whileBlocked = async (arrive: (gate: Gate) => Promise<Enqueued[]>): Promise<string[]> => {
    const { redis } = suite;
    const blocker = createGate(redis.client, redis.nodeUrl);
    const gate = createGate(redis.client, redis.nodeUrl);
    await gate.open();
    await bulk(blocker, [{ group: 'blocker' }]);
    await blocker.waitStarted(1);
    const enqueued = await arrive(gate);
    await blocker.open();
    const started = await gate.waitStarted(enqueued.length);
    const groupOf = new Map(enqueued.map(({ jobId }, i) => [jobId, i]));
    assert.equal(new Set(started).size, started.length, 'no job started twice');
    return started.map((jobId) => String(groupOf.get(jobId)));
  };

  const groupsInOrder = async (tasks: readonly Task[], arrive?: (gate: Gate) => Promise<Enqueued[]>) => {
    const order = await whileBlocked(arrive ?? ((gate) => bulk(gate, tasks)));
    return order.map((index) => tasks[Number(index)]?.group ?? 'default');
  };

  const groupLedger = () => {
    const { redis, service } = suite;
    return testGroupLedger(redis.client, service.prefix);
  };
  const settings = (group: string, value: GroupSettings | undefined) => groupLedger().setSettings(group, value);

  test('groups take turns, whatever order their tasks arrived in; each group keeps its arrival order', async () => {
    const tasks: Task[] = [
      ...Array.from({ length: 6 }, () => ({ group: 'flood' })),
      ...Array.from({ length: 3 }, () => ({ group: 'small' })),
      { group: 'late' },
    ];
    const order = await whileBlocked((gate) => bulk(gate, tasks));
    const groups = order.map((index) => tasks[Number(index)]?.group);
    assert.deepEqual(groups, ['flood', 'late', 'small', 'flood', 'small', 'flood', 'small', 'flood', 'flood', 'flood']);
    const within = (group: string) => order.filter((index) => tasks[Number(index)]?.group === group).map(Number);
    for (const group of ['flood', 'small'])
      assert.deepEqual(
        within(group),
        [...within(group)].sort((a, b) => a - b),
        `${group} in arrival order`,
      );
  });

  test('a group of weight 3 gets three turns for every turn of a group of weight 1', async () => {
    await settings('heavy', { weight: 3 });
    try {
      const tasks: Task[] = [
        ...Array.from({ length: 9 }, () => ({ group: 'light' })),
        ...Array.from({ length: 9 }, () => ({ group: 'heavy' })),
      ];
      const groups = await groupsInOrder(tasks);
      assert.deepEqual(groups.slice(0, 12), [
        'heavy',
        'light',
        'heavy',
        'heavy',
        'heavy',
        'light',
        'heavy',
        'heavy',
        'heavy',
        'light',
        'heavy',
        'heavy',
      ]);
    } finally {
      await settings('heavy', undefined);
    }
  });

  test('priority goes first whatever the group; no priority before any priority, as in BullMQ', async () => {
    const tasks: Task[] = [
      { group: 'a', priority: 5 },
      { group: 'a', priority: 5 },
      { group: 'b', priority: 1 },
      { group: 'c' },
      { group: 'b', priority: 1 },
      { group: 'a' },
    ];
    const order = await whileBlocked((gate) => bulk(gate, tasks));
    assert.deepEqual(
      order.map((index) => tasks[Number(index)]).map((task) => `${task?.group}:${task?.priority ?? '-'}`),
      ['a:-', 'c:-', 'b:1', 'b:1', 'a:5', 'a:5'],
    );
  });

  test('a held job reads as waiting on the worker the 202 named, and a cancel takes it out of line', async () => {
    const { service } = suite;
    let kept: Enqueued[] = [];
    let cancelled: Enqueued | undefined;
    const order = await whileBlocked(async (gate) => {
      const enqueued = await bulk(gate, [{ group: 'x' }, { group: 'x' }, { group: 'x' }]);
      const [first, second, third] = enqueued as [Enqueued, Enqueued, Enqueued];
      const view = await service.request<{ state: string; assignedWorker: string; group: string }>(
        'GET',
        `/jobs/${first.jobId}`,
      );
      assert.equal(view.status, 200, view.text);
      assert.deepEqual(
        { state: view.body.state, assignedWorker: view.body.assignedWorker, group: view.body.group },
        { state: 'waiting', assignedWorker: first.assignedWorker, group: 'x' },
      );
      const cancel = await service.request('DELETE', `/jobs/${second.jobId}`);
      assert.equal(cancel.status, 200, cancel.text);
      cancelled = second;
      kept = [first, third];
      return kept;
    });
    assert.deepEqual(order, ['0', '1'], 'the cancelled job never started');
    const view = await service.request<{ state: string }>('GET', `/jobs/${cancelled?.jobId ?? ''}`);
    assert.equal(view.body.state, 'cancelled');
  });

  test('a delayed task that falls due while every worker is busy waits for its group turn', async () => {
    const tasks: Task[] = [{ group: 'due', delayMs: 300 }, ...Array.from({ length: 4 }, () => ({ group: 'flood' }))];
    const groups = await groupsInOrder(tasks, async (gate) => {
      const enqueued = await bulk(gate, tasks);
      // Due, and held: it waits in the held queue like the others.
      await waitFor(async () => ((await groupLedger().view('due')).waiting === 1 ? true : undefined), {
        timeoutMs: 10_000,
        what: 'the due task to be held',
      });
      return enqueued;
    });
    assert.ok(groups.indexOf('due') <= 1, `the due task waited for its turn only: ${groups.join(',')}`);
  });

  test('once every job ended, no group counts a job', async () => {
    const { redis, service } = suite;
    const keys = await waitFor(
      async () => {
        const [waiting, inflight, running] = await Promise.all(
          ['waiting', 'inflight', 'running'].map((name) =>
            redis.client.hgetall(`${service.prefix}:{sched}:groups:${name}`),
          ),
        );
        const counted = { ...waiting, ...inflight, ...running };
        return Object.keys(counted).length === 0 ? counted : undefined;
      },
      { timeoutMs: 30_000, what: 'every group count to be gone' },
    );
    assert.deepEqual(keys, {});
  });
});
