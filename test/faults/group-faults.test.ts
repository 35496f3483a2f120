/**
 * Groups under process faults (issue 22), on one Redis or a cluster: a worker process killed with
 * SIGKILL while it runs a capped group's jobs leaves the group's counts exact (its limit is never
 * exceeded, and every count is back to nothing once all is done); a process killed right after it
 * handed held jobs out, before it moved them to their worker (BULLPEN_KILL_HOOK), loses none: the
 * recovery of another process moves them after the grace period, and each runs once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createGate, FIXTURE_HANDLERS, type Gate } from '../support/gate.js';
import { readJob, reservationsLeft, waitForIdle, waitForJobs, type Enqueued } from '../support/jobs.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
import { startService, type Service } from '../support/service.js';
import { waitFor } from '../support/wait.js';
import type { GroupLedger } from '../../src/ledger/groups.js';
import { enqueueGateJobs, testGroupLedger } from '../support/groups.js';

let redis: ModeRedis;
let service: Service;
let groups: GroupLedger;
before(async () => {
  redis = await startTestRedis();
  service = await startService({
    ...redis.serviceOptions,
    workers: 2,
    env: {
      WORKER_CONCURRENCY: '2',
      HANDLERS_DIR: FIXTURE_HANDLERS,
      BULLPEN_KILL_HOOK: 'true',
      RESERVATION_GRACE_MS: '1000',
      RECONCILE_INTERVAL_MS: '500',
    },
  });
  groups = testGroupLedger(redis.client, service.prefix);
});
after(async () => {
  await service?.stop();
  await redis?.stop();
});

const bulk = (gate: Gate, group: string, count: number): Promise<Enqueued[]> =>
  enqueueGateJobs(service, gate, group, count);

/** Every group count gone, nothing held or on its way, no reservation left. */
async function settled(): Promise<void> {
  await waitFor(
    async () => {
      const all = await groups.all();
      const counted = all.filter(({ waiting, inflight, running }) => waiting + inflight + running > 0);
      const releasing = await groups.releasing();
      return counted.length === 0 && releasing.length === 0 ? true : undefined;
    },
    { timeoutMs: 30_000, what: 'every group count to be gone' },
  );
  assert.equal(await reservationsLeft(redis.client, service.prefix), 0);
}

describe('groups under process faults', () => {
  test('kill -9 of a process running capped jobs: the cap holds throughout and the counts end exact', async () => {
    await groups.setSettings('capped', { concurrency: 2 });
    const gate = createGate(redis.client, redis.nodeUrl);
    const capped = await bulk(gate, 'capped', 6);
    const others = await bulk(gate, 'others', 2);
    await gate.waitStarted(4);
    const running = await waitFor(
      async () => {
        const views = await Promise.all(capped.map(({ jobId }) => readJob(service, jobId)));
        const active = views.filter((view) => view.state === 'active');
        return active.length === 2 ? active : undefined;
      },
      { what: 'two capped jobs to run' },
    );
    const victimId = running[0]?.assignedWorker ?? '';
    const victim = (await service.workers()).workers.find((worker) => worker.id === victimId);
    assert.ok(victim, `the worker ${victimId} is listed`);

    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, (await groups.view('capped')).running);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    process.kill(victim.pid, 'SIGKILL');
    // The interrupted jobs run again under the same id, a new process.
    await waitFor(
      async () => {
        const revived = (await service.workers()).workers.find((worker) => worker.id === victimId);
        return revived?.alive === true && revived.pid !== victim.pid ? true : undefined;
      },
      { timeoutMs: 30_000, what: 'the killed worker id to come back' },
    );
    await waitFor(async () => ((await groups.view('capped')).running === 2 ? true : undefined), {
      timeoutMs: 30_000,
      what: 'two capped jobs to run again',
    });
    await gate.open();
    await waitForJobs(service, [...capped, ...others], { timeoutMs: 60_000 });
    sampling = false;
    await sampler;
    assert.ok(peak <= 2, `the capped group ran ${peak} at once`);
    const starts = await gate.started();
    for (const { jobId } of running.filter((view) => view.assignedWorker === victimId))
      assert.equal(starts.filter((id) => id === jobId).length, 2, `${jobId} ran again after the kill`);
    assert.deepEqual(await groups.view('capped'), {
      group: 'capped',
      settings: { concurrency: 2 },
      waiting: 0,
      inflight: 0,
      running: 0,
    });
    await groups.setSettings('capped', undefined);
    await settled();
  });

  test('a process killed right after a release, before its moves: the jobs run once, moved by another', async () => {
    const blocker = createGate(redis.client, redis.nodeUrl);
    const gate = createGate(redis.client, redis.nodeUrl);
    await gate.open();
    const blockers = await bulk(blocker, 'blockers', 4);
    await blocker.waitStarted(4);
    const held = await bulk(gate, 'held', 4);
    await redis.client.set(`${service.prefix}:test:kill-after-release-step`, 'released');
    await blocker.open();
    await waitForJobs(service, [...blockers, ...held], { timeoutMs: 60_000 });
    assert.equal(await redis.client.exists(`${service.prefix}:test:kill-after-release-step`), 0, 'the arming was used');
    const starts = await gate.started();
    assert.deepEqual([...starts].sort(), held.map(({ jobId }) => jobId).sort(), 'each held job ran once');
    await waitForIdle(service);
    await settled();
  });
});
