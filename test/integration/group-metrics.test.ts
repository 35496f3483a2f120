/**
 * The group gauges of `/metrics` (issue 22, item 5) on a real service of two one-slot workers without
 * prefetch, on one Redis or a cluster (test/support/test-redis.ts), with GROUP_METRICS_TOP=2: while
 * gate jobs hold every slot, tasks of five groups wait in the held queue, and a scrape names exactly
 * the two groups with most waiting, sums every other group into `group="other"`, and adds up to what
 * `GET /workers` and the group ledger count. Before any work and after it, `other` is there alone, at 0.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createGate, FIXTURE_HANDLERS, GATE_JOB } from '../support/gate.js';
import { enqueueTask, waitForJobs, waitForRunning, type Enqueued } from '../support/jobs.js';
import { parseMetrics, type Sample } from '../support/prom-text.js';
import type { Service } from '../support/service.js';
import { serviceSuite } from '../support/service-suite.js';
import { startTestRedis } from '../support/test-redis.js';
import { waitFor } from '../support/wait.js';
import { groupKeys } from '../../src/contracts/keys.js';

const WORKERS = 2;
const TOP = 2;
const HOST_ID = 'test';
type GroupGauge = 'bullpen_group_waiting' | 'bullpen_group_inflight' | 'bullpen_group_running';

/** Each gauge's series as `[group, value]`, in the order of the exposition; fails on a stray label. */
async function groupGauges(service: Service): Promise<Record<GroupGauge, [string, number][]>> {
  const response = await service.request('GET', '/metrics');
  assert.equal(response.status, 200, response.text);
  const samples = parseMetrics(response.text);
  const of = (name: GroupGauge) =>
    samples
      .filter((sample) => sample.name === name)
      .map((sample: Sample): [string, number] => {
        assert.deepEqual(Object.keys(sample.labels).sort(), ['group', 'host'], `the labels of ${name}`);
        assert.equal(sample.labels.host, HOST_ID, `${name} names the host that served the scrape`);
        return [sample.labels.group ?? '', sample.value];
      });
  return {
    bullpen_group_waiting: of('bullpen_group_waiting'),
    bullpen_group_inflight: of('bullpen_group_inflight'),
    bullpen_group_running: of('bullpen_group_running'),
  };
}

const sum = (series: readonly [string, number][]): number => series.reduce((total, [, value]) => total + value, 0);

const ONLY_OTHER_AT_ZERO = {
  bullpen_group_waiting: [['other', 0]],
  bullpen_group_inflight: [['other', 0]],
  bullpen_group_running: [['other', 0]],
};

describe('group gauges on /metrics', () => {
  const suite = serviceSuite(startTestRedis, (redis) => ({
    ...redis.serviceOptions,
    workers: WORKERS,
    env: {
      WORKER_CONCURRENCY: '1',
      PREFETCH: '0',
      GROUP_METRICS_TOP: String(TOP),
      HOST_ID,
      HANDLERS_DIR: FIXTURE_HANDLERS,
      JOB_ATTEMPTS: '1',
    },
  }));

  test('a fresh service: every group gauge has group="other" alone, at 0', async () => {
    assert.deepEqual(await groupGauges(suite.service), ONLY_OTHER_AT_ZERO);
  });

  test('while the slots are busy, the groups with most waiting are named and other sums the rest', async () => {
    const { redis, service } = suite;
    const gate = createGate(redis.client, redis.nodeUrl);
    const enqueue = (group: string, jobName: string, data: Record<string, unknown>) =>
      enqueueTask<Enqueued>(service, { jobName, group, data });
    // The gate jobs of `busy` take both slots; with no prefetch, every later task is held.
    const busy = [await enqueue('busy', GATE_JOB, gate.data()), await enqueue('busy', GATE_JOB, gate.data())];
    await gate.waitStarted(WORKERS);
    await waitForRunning(service, WORKERS);
    // Arrival order is not the ranking: the smallest backlogs come first. g-b and g-c tie on waiting
    // (and on running), and the name decides; busy runs 2 but waits for nothing, so it ranks last.
    const backlog: [string, number][] = [
      ['g-d', 1],
      ['g-c', 3],
      ['g-b', 3],
      ['g-a', 4],
      ['g-e', 2],
    ];
    const held: Enqueued[] = [];
    for (const [group, count] of backlog) {
      for (let i = 0; i < count; i += 1) held.push(await enqueue(group, 'plain', { durationMs: 0, i }));
    }
    const heldTotal = sum(backlog);
    const keys = groupKeys(service.prefix);
    const ledgerWaiting = async () => {
      const waiting = await redis.client.hgetall(keys.waiting);
      return Object.values(waiting).reduce((total, value) => total + Number(value), 0);
    };
    await waitFor(async () => (await ledgerWaiting()) === heldTotal, { what: `${heldTotal} held tasks` });

    const [gauges, { totals }, running, inflight] = await Promise.all([
      groupGauges(service),
      service.workers(),
      redis.client.hgetall(keys.running),
      redis.client.hgetall(keys.inflight),
    ]);
    assert.deepEqual(gauges, {
      // other: g-c 3 + g-e 2 + g-d 1 + busy 0.
      bullpen_group_waiting: [
        ['g-a', 4],
        ['g-b', 3],
        ['other', 6],
      ],
      bullpen_group_inflight: [
        ['g-a', 0],
        ['g-b', 0],
        ['other', WORKERS],
      ],
      bullpen_group_running: [
        ['g-a', 0],
        ['g-b', 0],
        ['other', WORKERS],
      ],
    });
    // The gauges add up to what the rest of the service counts.
    assert.equal(sum(gauges.bullpen_group_waiting), await ledgerWaiting());
    assert.equal(sum(gauges.bullpen_group_running), totals.active, 'running: GET /workers');
    assert.equal(sum(gauges.bullpen_group_inflight), totals.active + totals.queued, 'in flight: GET /workers');
    assert.deepEqual([running, inflight], [{ busy: String(WORKERS) }, { busy: String(WORKERS) }], 'the ledger');

    await gate.open();
    await waitForJobs(service, [...busy, ...held]);
    // A finished job leaves its group's counts with its last transition: other alone again, at 0.
    await waitFor(async () => JSON.stringify(await groupGauges(service)) === JSON.stringify(ONLY_OTHER_AT_ZERO), {
      what: 'the group gauges to return to other alone, at 0',
    }).catch(async () => assert.deepEqual(await groupGauges(service), ONLY_OTHER_AT_ZERO));
  });
});
