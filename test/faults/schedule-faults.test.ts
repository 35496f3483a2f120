/**
 * Schedules under faults (issue 23), on one Redis or a cluster (test/support/test-redis.ts):
 * - two hosts on one Redis, a schedule ticking every second for a minute while their processes are
 *   killed (SIGKILL, one at a time, while three of four are alive) and re-forked across its ticks:
 *   every tick makes exactly one job, none doubled, none lost (the pool was never down, so no tick
 *   counts as missed); and one killed right between a tick's job and its record;
 * - the whole pool down for longer than the scheduler's down threshold, then started again: the
 *   schedules survive the restart and go on ticking, a `runOnce` schedule makes one job for all its
 *   missed ticks and a `skip` schedule none, both count them, and neither bursts.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { SCHEDULER_DOWN_AFTER_MS } from '../../src/schedules/scheduler.js';
import { isAlive } from '../support/jobs.js';
import { logged } from '../support/log-lines.js';
import { distinctTicks, jobsOf, putSchedule, readSchedule } from '../support/schedules.js';
import { startService, type Service } from '../support/service.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
import { waitFor } from '../support/wait.js';

const EVERY_MS = 1_000;
const CHAOS_MS = 60_000;
/**
 * How often a process is killed: several times in each process's life (re-forks back off), while the
 * re-forks leave the machine room for the test files running beside this one.
 */
const KILL_EVERY_MS = 3_500;
/**
 * How long the processes may take to be back after the minute of kills: a process killed many times
 * in a minute is forked again after up to 30 s (restart-policy.ts), and one whose id is being retired
 * meanwhile waits for that before it may take the id, or is refused and forked again.
 */
const BACK_WITHIN_MS = 150_000;
/** A kill only while at least this many of the four processes are alive: the pool is never down. */
const ALIVE_BEFORE_KILL = 3;
const ENV = {
  WORKER_CONCURRENCY: '2',
  JOB_ATTEMPTS: '3',
  HEARTBEAT_INTERVAL_MS: '250',
  WORKER_TTL_MS: '2000',
  RECONCILE_INTERVAL_MS: '1000',
  SHUTDOWN_TIMEOUT_MS: '5000',
} as const;

/** The jobs' ticks, checked to be one interval apart from the first to the last: none lost. */
function assertConsecutive(ticks: readonly number[]): void {
  const gaps = ticks.slice(1).flatMap((tick, i) => {
    const step = tick - (ticks[i] ?? tick);
    return step === EVERY_MS ? [] : [`${new Date(ticks[i] ?? 0).toISOString()} +${step} ms`];
  });
  assert.deepEqual(gaps, [], 'every tick between the first and the last made its job');
}

describe('two hosts, processes killed and re-forked across the ticks for a minute', () => {
  let redis: ModeRedis;
  let hosts: Service[] = [];
  before(async () => {
    redis = await startTestRedis();
    hosts = await Promise.all(
      ['ha', 'hb'].map((id) =>
        startService({
          ...redis.serviceOptions,
          workers: 2,
          prefix: 'chaos',
          env: { ...ENV, HOST_ID: id, BULLPEN_KILL_HOOK: 'true' },
        }),
      ),
    );
  });
  after(async () => {
    await Promise.all(hosts.map((host) => host.stop()));
    await redis?.stop();
  });

  test('every tick makes exactly one job: none doubled, none lost', async () => {
    const [first, second] = hosts as [Service, Service];
    const created = await putSchedule(first, 'heartbeat', {
      everyMs: EVERY_MS,
      jobName: 'beat',
      data: { durationMs: 20 },
    });
    const firstTick = Date.parse(created.body.nextRunAt ?? '');
    const chaosEnds = Date.now() + CHAOS_MS;
    let kills = 0;
    while (Date.now() < chaosEnds) {
      await sleep(KILL_EVERY_MS * (0.5 + Math.random()));
      // Any host that listens answers for the whole pool (one whose processes are all down does not).
      const pool = await first.workers().catch(() => second.workers().catch(() => undefined));
      const alive = (pool?.workers ?? []).filter((worker) => worker.alive && isAlive(worker.pid));
      if (alive.length < ALIVE_BEFORE_KILL) continue;
      const victim = alive[Math.floor(Math.random() * alive.length)];
      if (victim === undefined) continue;
      process.kill(victim.pid, 'SIGKILL');
      kills += 1;
    }
    const chaosEnded = Date.now();
    await Promise.all(hosts.map((host) => host.waitForAlive(2, BACK_WITHIN_MS)));
    // Ticks delayed by a kill (a claim's lease, 5 s) are made late, one by one: wait for them.
    const caughtUp = await waitFor(
      async () => {
        const view = await readSchedule(second, 'heartbeat');
        return view.lastRun !== null && Date.parse(view.lastRun.tickAt) >= chaosEnded ? view : undefined;
      },
      { timeoutMs: 60_000, what: 'the schedule to catch up with the ticks of the minute' },
    );
    assert.equal((await first.request('DELETE', '/schedules/heartbeat')).status, 204);
    const jobs = await jobsOf(first, 'heartbeat');
    const ticks = distinctTicks(jobs);
    assert.equal(ticks[0], firstTick, 'the first job is for the first tick');
    assertConsecutive(ticks);
    assert.ok(ticks.length >= CHAOS_MS / EVERY_MS, `${ticks.length} jobs in a minute of ticks`);
    assert.equal(caughtUp.missed, 0, 'with processes alive throughout, no tick was missed');
    assert.ok(kills >= 10, `${kills} processes killed`);
    assert.ok(
      ticks.length >= caughtUp.runs,
      `every run the schedule counted is a job (${ticks.length} jobs, ${caughtUp.runs} runs)`,
    );
  });

  test("a process killed after making a tick's job, before recording the tick: the next claimer finds that job", async () => {
    const [first, second] = hosts as [Service, Service];
    await Promise.all(hosts.map((host) => host.waitForAlive(2, BACK_WITHIN_MS)));
    const arming = `${first.prefix}:test:kill-after-tick-step`;
    await redis.client.set(arming, 'made');
    const from = [first.logs.length, second.logs.length];
    await putSchedule(first, 'armed', { everyMs: EVERY_MS, jobName: 'beat', data: { durationMs: 20 } });
    await waitFor(async () => (await redis.client.exists(arming)) === 0, { what: 'a process to take the arming' });
    const armedAt = Date.now();
    // The killed tick's lease (5 s) passes, another process claims it, and the schedule goes on.
    await waitFor(
      async () => {
        const view = await readSchedule(second, 'armed');
        return view.lastRun !== null && Date.parse(view.lastRun.tickAt) >= armedAt + 3 * EVERY_MS;
      },
      { timeoutMs: 30_000, what: 'the schedule to go on past the killed tick' },
    );
    assert.equal((await first.request('DELETE', '/schedules/armed')).status, 204);
    const ticks = distinctTicks(await jobsOf(first, 'armed'));
    assertConsecutive(ticks);
    const exited = [first, second].some((host, i) =>
      host.logs.slice(from[i]).some((line) => line.event === 'process.died' && line.signal === 'SIGKILL'),
    );
    assert.ok(exited, 'a process was killed holding the tick');
  });
});

describe('the whole pool down, then started again', () => {
  let redis: ModeRedis;
  let service: Service | undefined;
  before(async () => {
    redis = await startTestRedis();
  });
  after(async () => {
    await service?.stop();
    await redis?.stop();
  });

  test('schedules survive the restart; runOnce makes one job for the missed ticks, skip none; both count them', async () => {
    const start = () => startService({ ...redis.serviceOptions, workers: 2, prefix: 'restart', env: ENV });
    service = await start();
    const task = { everyMs: EVERY_MS, jobName: 'beat', data: { durationMs: 20 } };
    await putSchedule(service, 'run-once', { ...task, missedTicks: 'runOnce' });
    await putSchedule(service, 'skipper', { ...task, missedTicks: 'skip' });
    const running = service;
    await waitFor(
      async () =>
        (await readSchedule(running, 'run-once')).runs >= 2 && (await readSchedule(running, 'skipper')).runs >= 2,
      { what: 'both schedules to run twice' },
    );
    assert.equal(await service.stop(), 0);
    const stoppedAt = Date.now();
    service = undefined;
    await sleep(SCHEDULER_DOWN_AFTER_MS + 3_000);
    service = await start();
    const back = service;
    const catchUp = (name: string) =>
      waitFor(
        () =>
          // From the first line: the first look may come before the start returns.
          back.logs.find((line) => line.event === 'schedule.tick' && line.schedule === name && Number(line.missed) > 0),
        { what: `the catch-up tick of ${name}` },
      );
    const [runOnceLine, skipLine] = await Promise.all([catchUp('run-once'), catchUp('skipper')]);
    // Two more ticks each after the catch-up: they go on, one job per tick.
    await waitFor(
      async () => {
        const views = await Promise.all(['run-once', 'skipper'].map((name) => readSchedule(back, name)));
        return views.every(
          (view) => view.lastRun !== null && Date.parse(view.lastRun.tickAt) > Number(skipLine.time) + 2 * EVERY_MS,
        );
      },
      { what: 'both schedules to tick again after the restart' },
    );
    for (const name of ['run-once', 'skipper']) await back.request('DELETE', `/schedules/${name}`);

    const downFor = Number(runOnceLine.time) - stoppedAt;
    for (const [name, line] of [
      ['run-once', runOnceLine],
      ['skipper', skipLine],
    ] as const) {
      const jobs = await jobsOf(back, name);
      const ticks = distinctTicks(jobs);
      // One gap in the ticks: the ticks that fell while the pool was down.
      const gaps = ticks.slice(1).flatMap((tick, i) => (tick - (ticks[i] ?? tick) === EVERY_MS ? [] : [i]));
      assert.equal(gaps.length, 1, `${name}: one run of missed ticks, at ${JSON.stringify(ticks)}`);
      const gapAt = gaps[0] ?? 0;
      const missed = ((ticks[gapAt + 1] ?? 0) - (ticks[gapAt] ?? 0)) / EVERY_MS - 1;
      assert.ok(missed * EVERY_MS >= downFor - 2 * EVERY_MS, `${name}: ${missed} ticks missed in ${downFor} ms down`);
      assert.equal(line.missed, missed, `${name}: the missed ticks are counted`);
      if (name === 'run-once') {
        // The job for the missed ticks: made at once, for the last of them, standing for the rest.
        assert.equal(line.outcome, 'made');
        const stoodFor = jobs.find((job) => job.jobId === line.jobId);
        assert.ok(stoodFor, 'the catch-up job exists');
        assert.ok(Date.parse(stoodFor.schedule?.tickAt ?? '') <= Number(line.time), 'it is for a tick already past');
      } else {
        assert.equal(line.outcome, 'none');
        assert.equal(line.jobId, null);
      }
      assert.ok(logged(back.logs, 'schedule.tick', { schedule: name, outcome: 'made' }));
    }
  });
});
