/**
 * `GET /metrics` against the real cluster: one cluster-wide view whichever process answers, counters
 * that add up and never go backwards (not even across a worker's re-fork), and load gauges that agree
 * with `GET /workers` and the Redis ledger. Every series names its host, and its worker unless it is a
 * group gauge (a group is no process's: test/integration/group-metrics.test.ts covers those), every
 * labelled counter exists at 0 before its first event, and the exposition passes `promtool check metrics`
 * (needs `promtool` on PATH, from Debian's `prometheus` package; CI installs it; without it those
 * tests are skipped, saying how to install it, except in CI (`CI` set), where they fail instead).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { startTestRedis } from '../support/test-redis.js';
import type { Service } from '../support/service.js';
import { serviceSuite } from '../support/service-suite.js';
import { cumulativeNames, parseMetrics, seriesKey, total, type Sample } from '../support/prom-text.js';
import { createGate, FIXTURE_HANDLERS, GATE_JOB } from '../support/gate.js';
import { enqueueMany, listedWorker, waitForJobs, waitForRunning } from '../support/jobs.js';
import { skipUnlessInstalled } from '../support/prometheus-server.js';
import { waitFor } from '../support/wait.js';
import { ledgerKeys } from '../../src/contracts/keys.js';

const WORKERS = 4;
const CONCURRENCY = 2;
const HOST_ID = 'test';
const WORKER_IDS = Array.from({ length: WORKERS }, (_, index) => `${HOST_ID}-${index}`);
/** The handlers of the fixture handler folder (test/fixtures/handlers/), plus `other` for every other name. */
const JOB_NAMES = ['chatty', 'exit-thread', 'flaky', 'gate', 'hang', 'memory-hog', 'other', 'videoProcessing'];
/** Counts of the whole pool per group, which name the host that served the scrape and no worker. */
const GROUP_GAUGES = ['bullpen_group_waiting', 'bullpen_group_inflight', 'bullpen_group_running'];
const LEDGER_GAUGES = [
  'bullpen_worker_active_jobs',
  'bullpen_worker_queued_jobs',
  'bullpen_worker_concurrency',
  'bullpen_worker_up',
  'bullpen_queue_jobs',
];

async function scrape(service: Service): Promise<{ text: string; samples: Sample[] }> {
  const response = await service.request('GET', '/metrics');
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
  return { text: response.text, samples: parseMetrics(response.text) };
}

/**
 * `promtool check metrics` on an exposition: its exit code and what it printed (lint problems, one a
 * line). In CI, where a missing promtool does not skip the tests, fails saying how to install it.
 */
function promtoolCheckMetrics(text: string): { status: number | null; output: string } {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  if (result.error !== undefined) {
    const missing = (result.error as NodeJS.ErrnoException).code === 'ENOENT';
    assert.fail(
      missing
        ? 'promtool is not on PATH: install Prometheus (Debian/Ubuntu: apt-get install prometheus; CI installs it) to check /metrics'
        : `could not run promtool: ${result.error.message}`,
    );
  }
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}

async function assertPromtoolAccepts(service: Service, when: string): Promise<void> {
  const { text } = await scrape(service);
  const { status, output } = promtoolCheckMetrics(text);
  assert.equal(output, '', `promtool check metrics found problems in /metrics ${when}:\n${output}`);
  assert.equal(status, 0, `promtool check metrics exited ${status} on /metrics ${when}`);
}

describe('/metrics', () => {
  const suite = serviceSuite(startTestRedis, (redis) => ({
    ...redis.serviceOptions,
    workers: WORKERS,
    env: {
      WORKER_CONCURRENCY: String(CONCURRENCY),
      // One job may wait on each worker beyond its slots (the gauges test reads one there).
      PREFETCH: '1',
      JOB_ATTEMPTS: '2',
      JOB_BACKOFF_MS: '10',
      HOST_ID,
      HANDLERS_DIR: FIXTURE_HANDLERS,
    },
  }));

  test('a fresh service: jobs moved, by both reasons, and workers retired are at 0 for every worker', async () => {
    const { service } = suite;
    const { text, samples } = await scrape(service);
    assert.match(text, /^# TYPE bullpen_jobs_moved_total counter$/m);
    assert.match(text, /^# TYPE bullpen_workers_retired_total counter$/m);
    const moved = samples.filter((sample) => sample.name === 'bullpen_jobs_moved_total');
    assert.deepEqual(
      moved.map((sample) => [sample.labels.worker, sample.labels.host, sample.labels.reason, sample.value]).sort(),
      WORKER_IDS.flatMap((worker) => [
        [worker, HOST_ID, 'retired', 0],
        [worker, HOST_ID, 'stolen', 0],
      ]),
    );
    const retired = samples.filter((sample) => sample.name === 'bullpen_workers_retired_total');
    // No labels of its own: only the worker's and the host's.
    assert.deepEqual(
      retired
        .map((sample) => [
          Object.keys(sample.labels).sort().join(','),
          sample.labels.worker,
          sample.labels.host,
          sample.value,
        ])
        .sort(),
      WORKER_IDS.map((worker) => ['host,worker', worker, HOST_ID, 0]),
    );
  });

  test('a fresh service: the job counters exist at 0 for every worker and job name', async () => {
    const { service } = suite;
    const { samples } = await scrape(service);
    const zeros = (name: string) =>
      samples
        .filter((sample) => sample.name === name)
        .map((sample) => [sample.labels.worker, sample.labels.job_name, sample.value])
        .sort();
    const everyWorkerAndJob = WORKER_IDS.flatMap((worker) => JOB_NAMES.map((job) => [worker, job, 0]));
    assert.deepEqual(zeros('bullpen_jobs_completed_total'), everyWorkerAndJob);
    assert.deepEqual(zeros('bullpen_jobs_failed_total'), everyWorkerAndJob);
    assert.deepEqual(zeros('bullpen_jobs_cancelled_total'), everyWorkerAndJob);
    assert.deepEqual(zeros('bullpen_jobs_expired_total'), everyWorkerAndJob);
    // Each process starts the enqueues routed to its own worker id; its labels are
    // worker (the reporting process), host, assigned_worker and job_name.
    const enqueued = samples.filter((sample) => sample.name === 'bullpen_jobs_enqueued_total');
    assert.deepEqual(
      enqueued
        .map((sample) => [
          Object.keys(sample.labels).sort().join(','),
          sample.labels.worker,
          sample.labels.assigned_worker,
          sample.labels.job_name,
          sample.value,
        ])
        .sort(),
      WORKER_IDS.flatMap((worker) =>
        JOB_NAMES.map((job) => ['assigned_worker,host,job_name,worker', worker, worker, job, 0]),
      ),
    );
  });

  test(
    'a fresh service: promtool check metrics accepts /metrics',
    { skip: skipUnlessInstalled('promtool') },
    async () => {
      await assertPromtoolAccepts(suite.service, 'of a fresh service');
    },
  );

  test('every series names its worker and its host: process metrics and ledger gauges alike; group gauges their group and host', async () => {
    const { service } = suite;
    const { samples } = await scrape(service);
    const bullpen = samples.filter((sample) => sample.name.startsWith('bullpen_'));
    const grouped = bullpen.filter((sample) => GROUP_GAUGES.includes(sample.name));
    const unlabelled = bullpen.filter(
      (sample) =>
        !GROUP_GAUGES.includes(sample.name) &&
        (sample.labels.host !== HOST_ID || !WORKER_IDS.includes(sample.labels.worker ?? '')),
    );
    assert.deepEqual(unlabelled, [], `series without host="${HOST_ID}" and a known worker`);
    assert.deepEqual(
      [...new Set(grouped.map((sample) => `${sample.name}{${Object.keys(sample.labels).sort().join(',')}}`))].sort(),
      GROUP_GAUGES.map((name) => `${name}{group,host}`).sort(),
      'every group gauge is there, labelled by group and host only',
    );
    assert.deepEqual(
      grouped.filter((sample) => sample.labels.host !== HOST_ID),
      [],
      `group gauges without host="${HOST_ID}"`,
    );
    for (const name of ['bullpen_process_resident_memory_bytes', 'bullpen_pool_threads', ...LEDGER_GAUGES]) {
      const workers = new Set(bullpen.filter((sample) => sample.name === name).map((sample) => sample.labels.worker));
      assert.deepEqual([...workers].sort(), WORKER_IDS, `${name} for every worker`);
    }
  });

  test('every scrape shows all workers, whichever process answers it', async () => {
    const { service } = suite;
    for (let i = 0; i < 8; i += 1) {
      const { samples } = await scrape(service);
      const workers = new Set(
        samples.filter((sample) => sample.name === 'bullpen_process_resident_memory_bytes').map((s) => s.labels.worker),
      );
      assert.deepEqual([...workers].sort(), WORKER_IDS);
      const up = samples.filter((sample) => sample.name === 'bullpen_worker_up');
      assert.deepEqual(
        up.map((sample) => [sample.labels.worker, sample.labels.host, sample.value]).sort(),
        WORKER_IDS.map((worker) => [worker, HOST_ID, 1]),
      );
    }
  });

  test('after N jobs the completed counter has grown by exactly N', async () => {
    const { service } = suite;
    const before = total((await scrape(service)).samples, 'bullpen_jobs_completed_total');
    const jobs = await enqueueMany(service, 25, 'metered', { durationMs: 20 });
    await waitForJobs(service, jobs);
    const { samples } = await scrape(service);
    assert.equal(total(samples, 'bullpen_jobs_completed_total') - before, 25);
    assert.ok(total(samples, 'bullpen_jobs_enqueued_total') >= 25);
    // Enqueues carry the worker a task was routed to as assigned_worker, and the process that accepted
    // it as worker; the routing spreads 25 tasks over more than one worker.
    const enqueued = samples.filter((sample) => sample.name === 'bullpen_jobs_enqueued_total');
    for (const sample of enqueued) {
      assert.ok(WORKER_IDS.includes(sample.labels.assigned_worker ?? ''), `assigned_worker of ${seriesKey(sample)}`);
      assert.ok(WORKER_IDS.includes(sample.labels.worker ?? ''), `worker of ${seriesKey(sample)}`);
    }
    const assigned = new Set(
      enqueued.filter((sample) => sample.value > 0).map((sample) => sample.labels.assigned_worker),
    );
    assert.ok(assigned.size > 1, `25 tasks were all routed to ${[...assigned].join(', ')}`);
    const durations = total(samples, 'bullpen_job_duration_seconds_count');
    const waits = total(samples, 'bullpen_job_wait_seconds_count');
    assert.ok(durations >= 25, `${durations} durations observed`);
    assert.ok(waits >= 25, `${waits} waits observed (${durations} durations)`);
    assert.ok(
      total(samples, 'bullpen_http_request_duration_seconds_count', { route: '/enqueue-task', status_code: '202' }) >=
        25,
    );
  });

  test('a failing job counts each failed attempt and keeps its final reason', async () => {
    const { service } = suite;
    const before = total((await scrape(service)).samples, 'bullpen_jobs_failed_total');
    const [job] = await enqueueMany(service, 1, 'metered', { durationMs: 10, fail: 'boom' });
    assert.ok(job);
    await waitForJobs(service, [job], { state: 'failed' });
    const view = await service.request<{ failedReason: string; attemptsMade: number }>('GET', `/jobs/${job.jobId}`);
    assert.equal(view.body.failedReason, 'boom');
    assert.equal(view.body.attemptsMade, 2);
    assert.equal(total((await scrape(service)).samples, 'bullpen_jobs_failed_total') - before, 2);
  });

  test('per-worker gauges equal GET /workers and the Redis counters while jobs run', async () => {
    const { redis, service } = suite;
    // One gate job per slot and one more per worker: every slot runs one, every worker has one waiting,
    // and nothing moves while the three are read.
    const gate = createGate(redis.client, redis.nodeUrl);
    const jobs = await enqueueMany(service, WORKERS * (CONCURRENCY + 1), GATE_JOB, gate.data());
    await gate.waitStarted(WORKERS * CONCURRENCY);
    await waitForRunning(service, WORKERS * CONCURRENCY);
    const [{ samples }, workers, active, queued] = await Promise.all([
      scrape(service),
      service.workers(),
      redis.client.hgetall(ledgerKeys(service.prefix).active),
      redis.client.hgetall(ledgerKeys(service.prefix).queued),
    ]);
    for (const worker of workers.workers) {
      const gauge = (name: string) => total(samples, name, { worker: worker.id, host: HOST_ID });
      assert.equal(gauge('bullpen_worker_active_jobs'), worker.active, `${worker.id} active`);
      assert.equal(gauge('bullpen_worker_queued_jobs'), worker.queued, `${worker.id} queued`);
      assert.equal(gauge('bullpen_worker_concurrency'), worker.concurrency);
      assert.equal(Number(active[worker.id] ?? 0), worker.active);
      assert.equal(Number(queued[worker.id] ?? 0), worker.queued);
      assert.equal(gauge('bullpen_worker_active_jobs'), CONCURRENCY);
    }
    assert.equal(total(samples, 'bullpen_worker_queued_jobs'), WORKERS);
    assert.equal(total(samples, 'bullpen_queue_jobs', { state: 'active' }), WORKERS * CONCURRENCY);
    await gate.open();
    await waitForJobs(service, jobs);
  });

  test('consecutive scrapes never go backwards, even across a killed and re-forked worker', async () => {
    const { service } = suite;
    const jobs = await enqueueMany(service, 24, 'metered', { durationMs: 300 });
    const victim = (await service.workers()).workers[2];
    assert.ok(victim);
    const scrapes: { text: string; samples: Sample[] }[] = [await scrape(service)];
    process.kill(victim.pid, 'SIGKILL');
    for (let i = 0; i < 20; i += 1) scrapes.push(await scrape(service));
    await waitFor(async () => (await service.workers()).workers.find((w) => w.id === victim.id)?.pid !== victim.pid);
    await waitForJobs(service, jobs);
    scrapes.push(await scrape(service));

    const cumulative = cumulativeNames(scrapes[0]?.text ?? '');
    assert.ok(cumulative.has('bullpen_jobs_completed_total') && cumulative.has('bullpen_job_duration_seconds_bucket'));
    for (let i = 1; i < scrapes.length; i += 1) {
      const previous = new Map((scrapes[i - 1]?.samples ?? []).map((sample) => [seriesKey(sample), sample.value]));
      for (const sample of scrapes[i]?.samples ?? []) {
        if (!cumulative.has(sample.name)) continue;
        const earlier = previous.get(seriesKey(sample));
        if (earlier !== undefined)
          assert.ok(sample.value >= earlier, `${seriesKey(sample)} went from ${earlier} to ${sample.value}`);
      }
    }
  });

  test('a 405 or 413 on a known route counts under that route; the dashboard, its files and API under admin', async () => {
    const { service } = suite;
    const requests = async (where: Readonly<Record<string, string>>) =>
      total((await scrape(service)).samples, 'bullpen_http_request_duration_seconds_count', where);
    const unmatched = await requests({ route: 'unmatched' });
    const json = { 'content-type': 'application/json' };

    assert.equal((await service.request('PUT', '/workers')).status, 405);
    assert.equal((await service.request('DELETE', '/jobs/x~y/retry')).status, 405);
    const big = JSON.stringify({ jobName: 'big', data: { pad: 'x'.repeat(200_000) } });
    assert.equal((await service.request('POST', '/enqueue-task', { body: big, headers: json })).status, 413);
    const page = await service.request('GET', '/admin/queues');
    assert.equal(page.status, 200);
    const script = /src="(static\/js\/[^"]+\.js)"/.exec(page.text)?.[1];
    assert.ok(script, 'the page names its scripts');
    assert.equal((await service.request('GET', `/admin/queues/${script}`)).status, 200);
    assert.equal((await service.request('GET', '/admin/queues/api/queues')).status, 200);
    assert.equal(
      (await service.request('POST', '/admin/queues/api/queues', { body: '{}', headers: json })).status,
      405,
    );

    await waitFor(
      async () =>
        (await requests({ route: '/workers', method: 'PUT', status_code: '405' })) >= 1 &&
        (await requests({ route: '/jobs/:id/retry', method: 'DELETE', status_code: '405' })) >= 1 &&
        (await requests({ route: '/enqueue-task', method: 'POST', status_code: '413' })) >= 1 &&
        (await requests({ route: 'admin', method: 'GET', status_code: '200' })) >= 3 &&
        (await requests({ route: 'admin', method: 'POST', status_code: '405' })) >= 1,
      { what: 'the requests counted under their routes' },
    );
    assert.equal(await requests({ route: 'unmatched' }), unmatched, 'none of them counted as unmatched');
    const routes = new Set((await scrape(service)).samples.map((sample) => sample.labels.route));
    const stray = [...routes].filter((route) => route !== undefined && /admin\/|static|~/.test(route));
    assert.deepEqual(stray, [], 'no path of the dashboard, nor a job id, became a label');
  });

  test('labels stay bounded: no job ids, unknown job names folded into "other"', async () => {
    const { service } = suite;
    const jobs = await enqueueMany(service, 3, 'some-unlisted-name', { durationMs: 1 });
    await waitForJobs(service, jobs);
    const { samples } = await scrape(service);
    const jobNames = new Set(samples.map((sample) => sample.labels.job_name).filter((name) => name !== undefined));
    assert.ok(!jobNames.has('some-unlisted-name'));
    assert.ok(jobNames.has('other'));
    assert.ok(
      samples.every((sample) => !Object.values(sample.labels).some((value) => value.includes('~'))),
      'no job id in any label',
    );
  });

  test(
    'after completed, failed, retried and re-forked work: promtool check metrics still accepts /metrics',
    { skip: skipUnlessInstalled('promtool') },
    async () => {
      const { service } = suite;
      // Work of its own, so that the test stands alone: jobs that complete, one that fails both its
      // attempts (so it was retried once), then a worker killed and forked again.
      const completed = await enqueueMany(service, 4, 'metered', { durationMs: 10 });
      const failing = await enqueueMany(service, 1, 'metered', { durationMs: 10, fail: 'boom' });
      await waitForJobs(service, completed);
      await waitForJobs(service, failing, { state: 'failed' });
      const victim = await listedWorker(service, `${HOST_ID}-1`);
      process.kill(victim.pid, 'SIGKILL');
      await waitFor(
        async () => {
          const reforked = await listedWorker(service, victim.id);
          return reforked.alive && reforked.pid !== victim.pid;
        },
        { what: `${victim.id} to be forked again` },
      );
      await assertPromtoolAccepts(service, 'after jobs ran, failed and a worker was re-forked');
    },
  );
});
