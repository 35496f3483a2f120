/**
 * Fair share across hosts (issue 22): two primaries (their own PORT and HOST_ID) on one Redis or a
 * cluster form one pool, and the fair order and a group's limits hold over the whole pool, not per
 * host or per worker. A group that floods through one host does not delay a group that arrives
 * through the other; a group's concurrency caps its jobs running on both hosts together.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createGate, FIXTURE_HANDLERS, type Gate } from '../support/gate.js';
import { waitForJobs, type Enqueued } from '../support/jobs.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
import { startService, type Service } from '../support/service.js';
import { waitFor } from '../support/wait.js';
import type { GroupLedger } from '../../src/ledger/groups.js';
import { enqueueGateJobs, testGroupLedger } from '../support/groups.js';

const PREFIX = 'twohosts';

const bulk = (host: Service, gate: Gate, group: string, count: number): Promise<Enqueued[]> =>
  enqueueGateJobs(host, gate, group, count);

describe('groups over two hosts on one Redis', () => {
  let redis: ModeRedis;
  let hosts: Service[] = [];
  let groups: GroupLedger;
  before(async () => {
    redis = await startTestRedis();
    hosts = await Promise.all(
      ['h1', 'h2'].map((hostId) =>
        startService({
          ...redis.serviceOptions,
          workers: 1,
          prefix: PREFIX,
          env: { WORKER_CONCURRENCY: '2', HANDLERS_DIR: FIXTURE_HANDLERS, JOB_ATTEMPTS: '1', HOST_ID: hostId },
        }),
      ),
    );
    groups = testGroupLedger(redis.client, PREFIX);
  });
  after(async () => {
    await Promise.all(hosts.map((host) => host.stop()));
    await redis?.stop();
  });

  test('a group that floods through one host does not hold back a group arriving through the other', async () => {
    const [h1, h2] = hosts as [Service, Service];
    const blocker = createGate(redis.client, redis.nodeUrl);
    const gate = createGate(redis.client, redis.nodeUrl);
    await gate.open();
    // The four slots of the pool are busy: what follows waits in the held queue.
    await bulk(h1, blocker, 'blockers', 4);
    await blocker.waitStarted(4);
    const flood = await bulk(h1, gate, 'flood', 12);
    const late = await bulk(h2, gate, 'late', 4);
    await blocker.open();
    const started = await gate.waitStarted(16);
    const lateIds = new Set(late.map(({ jobId }) => jobId));
    const positions = started.flatMap((jobId, i) => (lateIds.has(jobId) ? [i + 1] : []));
    // Handed out in turn (flood, late, flood, late, ...): the late group's fourth job is the eighth
    // handed out; four slots start jobs side by side, so a start may come up to three places later.
    assert.equal(positions.length, 4);
    assert.ok(Math.max(...positions) <= 11, `the late group started at ${positions.join(', ')} of 16`);
    await waitForJobs(h2, [...flood, ...late]);
  });

  test('a group concurrency holds over both hosts together, and the other slots serve the others', async () => {
    const [h1, h2] = hosts as [Service, Service];
    await groups.setSettings('capped', { concurrency: 1 });
    const held = createGate(redis.client, redis.nodeUrl);
    const free = createGate(redis.client, redis.nodeUrl);
    await free.open();
    const capped = [...(await bulk(h1, held, 'capped', 3)), ...(await bulk(h2, held, 'capped', 3))];
    const others = [...(await bulk(h2, free, 'others', 6)), ...(await bulk(h1, free, 'others', 6))];
    await waitForJobs(h1, others);
    await waitFor(async () => ((await groups.view('capped')).running === 1 ? true : undefined), {
      what: 'one capped job to run',
    });
    let peak = 0;
    const sampling = (async () => {
      for (let i = 0; i < 20; i += 1) {
        peak = Math.max(peak, (await groups.view('capped')).running);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    await sampling;
    assert.equal(peak, 1, 'one capped job runs in the whole pool');
    assert.equal((await held.started()).length, 1);
    await held.open();
    await waitForJobs(h1, capped);
    assert.equal(new Set(await held.started()).size, 6, 'each capped job ran once');
    await groups.setSettings('capped', undefined);
  });
});
