/**
 * Several hosts as one pool: two and three primaries (each its own PORT and HOST_ID) on one Redis
 * (a server or a cluster).
 * A burst spreads over every worker of every host; a host killed for good has all its jobs completed
 * by the others, its worker ids retired from the ledger; and the same HOST_ID started again later
 * starts empty and works.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createGate, FIXTURE_HANDLERS, GATE_JOB } from '../support/gate.js';
import { parseMetrics, total } from '../support/prom-text.js';
import { isAlive, readJob, waitForIdle, waitForJobs, type Enqueued } from '../support/jobs.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
import { startService, type Service } from '../support/service.js';
import { waitFor } from '../support/wait.js';

const RETIRE_MS = 4_000;
/** Short liveness so that a dead host is noticed, and retired, within a test's patience. */
const FAST = {
  WORKER_CONCURRENCY: '2',
  // Jobs wait on a worker beyond its slots, as they did before groups: a dead host leaves some.
  PREFETCH: '10',
  HEARTBEAT_INTERVAL_MS: '250',
  WORKER_TTL_MS: '2000',
  WORKER_RETIRE_MS: String(RETIRE_MS),
  RECONCILE_INTERVAL_MS: '1000',
  SHUTDOWN_TIMEOUT_MS: '5000',
  HANDLERS_DIR: FIXTURE_HANDLERS,
} as const;

/** Hosts of one and of two workers: the pool mixes both, and every boot spared keeps the suite fast. */
function startHost(redis: ModeRedis, prefix: string, hostId: string, workers: number): Promise<Service> {
  return startService({ ...redis.serviceOptions, workers, prefix, env: { ...FAST, HOST_ID: hostId } });
}

/** Sends the tasks round-robin over the hosts' HTTP ports, all at once. */
async function burst(
  hosts: readonly Service[],
  count: number,
  data: Record<string, unknown>,
  jobName = 'pool',
): Promise<Enqueued[]> {
  const responses = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      (hosts[i % hosts.length] as Service).enqueue<Enqueued>({ jobName, data: { i, ...data } }),
    ),
  );
  for (const response of responses) assert.equal(response.status, 202, response.text);
  return responses.map((response) => response.body);
}

function spread(jobs: readonly Enqueued[], workerIds: readonly string[]): number {
  const counts = workerIds.map((id) => jobs.filter((job) => job.assignedWorker === id).length);
  return Math.max(...counts) - Math.min(...counts);
}

/** Kills a whole host for good: its primary and every worker process, with no chance to clean up. */
async function killHost(host: Service): Promise<void> {
  const pids = (await host.workers()).workers
    .filter((worker) => worker.id.startsWith(`${host.hostId}-`))
    .map((worker) => worker.pid);
  host.child.kill('SIGKILL');
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  await waitFor(() => pids.every((pid) => !isAlive(pid)), { what: 'the killed host to be gone' });
}

describe('three hosts on one Redis', () => {
  let redis: ModeRedis;
  let hosts: Service[] = [];
  before(async () => {
    redis = await startTestRedis();
    hosts = await Promise.all(
      (['h1', 'h2', 'h3'] as const).map((id) => startHost(redis, 'three', id, id === 'h1' ? 2 : 1)),
    );
  });
  after(async () => {
    await Promise.all(hosts.map((host) => host.stop()));
    await redis?.stop();
  });

  test('a burst sent to all three spreads over all four workers with spread <= 1, and completes', async () => {
    const { workers } = await (hosts[0] as Service).workers();
    const ids = workers.map((worker) => worker.id);
    assert.deepEqual(ids, ['h1-0', 'h1-1', 'h2-0', 'h3-0']);
    // Gate jobs: none ends while the burst is placed, so the routing sees only the burst's own load.
    const gate = createGate(redis.client, redis.nodeUrl);
    const jobs = await burst(hosts, 40, gate.data(), GATE_JOB);
    assert.ok(spread(jobs, ids) <= 1, `spread ${spread(jobs, ids)}`);
    await gate.open();
    await waitForJobs(hosts[2] as Service, jobs);
    await waitForIdle(hosts[1] as Service);
  });
});

describe('a host killed for good', () => {
  let redis: ModeRedis;
  let survivor: Service;
  let doomed: Service;
  let reborn: Service | undefined;
  before(async () => {
    redis = await startTestRedis();
    [survivor, doomed] = await Promise.all([startHost(redis, 'pool', 'a', 2), startHost(redis, 'pool', 'b', 1)]);
  });
  after(async () => {
    await Promise.all([survivor?.stop(), doomed?.stop('SIGKILL'), reborn?.stop()]);
    await redis?.stop();
  });

  test('all its jobs, running and waiting, complete elsewhere within WORKER_RETIRE_MS + 5 s + their duration', async () => {
    const durationMs = 1_000;
    const jobs = await burst([survivor, doomed], 12, { durationMs });
    assert.ok(spread(jobs, ['a-0', 'a-1', 'b-0']) <= 1, 'the burst spreads over both hosts');
    const theirs = jobs.filter((job) => job.assignedWorker.startsWith('b-'));
    assert.equal(theirs.length, 4);
    await waitFor(async () => (await survivor.workers()).totals.active === 6, { what: 'every slot to be busy' });

    const killedAt = Date.now();
    await killHost(doomed);
    const done = await waitForJobs(survivor, jobs, { timeoutMs: 60_000 });
    const lastFinish = Math.max(
      ...done.filter((job) => job.jobId.startsWith('b-')).map((job) => Date.parse(job.timestamps.finishedAt ?? '')),
    );
    const bound = RETIRE_MS + 5_000 + durationMs;
    assert.ok(
      lastFinish - killedAt <= bound,
      `the dead host's jobs finished ${lastFinish - killedAt} ms after the kill (bound ${bound} ms)`,
    );

    for (const job of done.filter((view) => view.jobId.startsWith('b-'))) {
      assert.match(job.assignedWorker, /^a-/, 'it finished on the surviving host');
      assert.deepEqual(
        job.movedFrom.map((id) => id.slice(0, 2)),
        ['b-'],
      );
      assert.ok(job.attemptsStarted <= 2, `${job.jobId} started ${job.attemptsStarted} times`);
    }

    const state = await waitFor(
      async () => {
        const workers = await survivor.workers();
        return workers.workers.length === 2 ? workers : undefined;
      },
      { what: 'the dead ids to leave /workers' },
    );
    assert.deepEqual(
      state.workers.map((worker) => worker.id),
      ['a-0', 'a-1'],
    );
    assert.equal(state.totals.capacity, 4);
    await waitForIdle(survivor);

    const samples = parseMetrics((await survivor.request('GET', '/metrics')).text);
    assert.equal(total(samples, 'bullpen_workers_retired_total'), 1);
    assert.ok(total(samples, 'bullpen_jobs_moved_total', { reason: 'retired' }) >= 1);
    assert.equal(
      samples.filter((sample) => sample.name.startsWith('bullpen_worker_') && sample.labels.host === 'b').length,
      0,
      'no gauge shows the dead host',
    );
  });

  test('the same HOST_ID started again later starts empty and works', async () => {
    // Host b gone for good, its id retired: as the test above leaves it, made sure of here so that
    // this test also stands alone.
    if (doomed.child.exitCode === null && doomed.child.signalCode === null) await killHost(doomed);
    await waitFor(async () => (await survivor.workers()).workers.every((worker) => !worker.id.startsWith('b-')), {
      what: 'the dead ids to leave /workers',
    });
    reborn = await startHost(redis, 'pool', 'b', 1);
    const { workers } = await reborn.workers();
    const worker = workers.find((candidate) => candidate.id === 'b-0');
    assert.ok(worker?.alive, 'b-0 is back');
    assert.equal(worker.active + worker.queued, 0, 'b-0 starts empty');
    const jobs = await burst([reborn, survivor], 8, { durationMs: 100 });
    assert.ok(
      jobs.some((job) => job.assignedWorker.startsWith('b-')),
      'the new host takes work',
    );
    await waitForJobs(reborn, jobs);
    for (const job of jobs) assert.equal((await readJob(reborn, job.jobId)).state, 'completed');
    await waitForIdle(reborn);
  });
});
