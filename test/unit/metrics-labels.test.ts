/**
 * The labels of the metrics, without a cluster: every process series carries its worker and its host,
 * every labelled counter exists from the start for every known label set and adds up when the primary
 * sums processes (and carries a dead process's counts over to its successor), the job histograms have
 * buckets that resolve the documented job lengths, and every ledger gauge carries the host of its
 * worker.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { renderLoadMetrics, type WorkerGauges } from '../../src/metrics/load-metrics.js';
import {
  DROPPED_DEFAULT_METRICS,
  JOB_DURATION_BUCKETS,
  JOB_WAIT_BUCKETS,
  UNDO_OPERATIONS,
  createProcessMetrics,
  type ProcessMetrics,
} from '../../src/metrics/process-metrics.js';
import { parseMetrics, total, type Sample } from '../support/prom-text.js';

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

const pool = { threads: 2, queueSize: 0 };

function processMetrics(workerId: string, hostId: string): ProcessMetrics {
  return createProcessMetrics({ workerId, hostId, knownJobNames: ['sha256'], pool });
}

async function samplesOf(metrics: ProcessMetrics): Promise<Sample[]> {
  return parseMetrics(await metrics.registry.metrics());
}

/** What the primary does with the processes' reports (see src/metrics/host-metrics-primary.ts). */
async function aggregate(...reports: MetricsJson[]): Promise<Sample[]> {
  return parseMetrics(await AggregatorRegistry.aggregate(reports).metrics());
}

describe('process metrics', () => {
  test('every series carries the worker id and the host id', async () => {
    const metrics = processMetrics('alpha-0', 'alpha');
    metrics.jobStarted('sha256', 0.1);
    metrics.jobFinished('sha256', 'completed', 0.2);
    metrics.httpRequest('/workers', 'GET', 200, 0.001);
    const samples = await samplesOf(metrics);
    assert.ok(samples.length > 50, 'default process metrics are included');
    const stray = samples.filter((sample) => sample.labels.worker !== 'alpha-0' || sample.labels.host !== 'alpha');
    assert.deepEqual(stray, []);
  });

  test('an enqueue is labelled with the worker it was routed to (assigned_worker), the process and the host that accepted it', async () => {
    const metrics = processMetrics('alpha-0', 'alpha');
    metrics.jobEnqueued('beta-3', 'sha256');
    metrics.jobEnqueued('beta-3', 'no-handler');
    const enqueued = (await samplesOf(metrics)).filter((sample) => sample.name === 'bullpen_jobs_enqueued_total');
    const routed = enqueued.filter((sample) => sample.labels.assigned_worker === 'beta-3');
    assert.deepEqual(
      routed.map((sample) => [sample.labels, sample.value]),
      [
        [{ assigned_worker: 'beta-3', job_name: 'sha256', worker: 'alpha-0', host: 'alpha' }, 1],
        [{ assigned_worker: 'beta-3', job_name: 'other', worker: 'alpha-0', host: 'alpha' }, 1],
      ],
    );
    // The reporting process's own id is never overwritten by the assigned worker's.
    assert.ok(enqueued.every((sample) => sample.labels.worker === 'alpha-0'));
  });

  test('the job counters exist at 0 from the start for every known job name and "other"', async () => {
    const samples = await samplesOf(
      createProcessMetrics({ workerId: 'alpha-2', hostId: 'alpha', knownJobNames: ['sha256', 'resize'], pool }),
    );
    const series = (name: string) =>
      samples
        .filter((sample) => sample.name === name)
        .map((sample) => [sample.labels, sample.value])
        .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
    for (const name of ['bullpen_jobs_completed_total', 'bullpen_jobs_failed_total']) {
      assert.deepEqual(
        series(name),
        ['other', 'resize', 'sha256'].map((job_name) => [{ job_name, worker: 'alpha-2', host: 'alpha' }, 0]),
        name,
      );
    }
    assert.deepEqual(
      series('bullpen_jobs_enqueued_total'),
      ['other', 'resize', 'sha256'].map((job_name) => [
        { assigned_worker: 'alpha-2', job_name, worker: 'alpha-2', host: 'alpha' },
        0,
      ]),
      "enqueues to this process's own worker id",
    );
  });

  test('a handler named "other" does not give the job counters a second "other" series', async () => {
    const samples = await samplesOf(
      createProcessMetrics({ workerId: 'alpha-2', hostId: 'alpha', knownJobNames: ['other'], pool }),
    );
    assert.equal(samples.filter((sample) => sample.name === 'bullpen_jobs_failed_total').length, 1);
  });

  test('no gauge ends in _total: the three default *_total gauges are dropped, their by-type gauges kept', async () => {
    const text = await processMetrics('alpha-0', 'alpha').registry.metrics();
    const gaugesNamedTotal = [...text.matchAll(/^# TYPE (\S+_total) (\S+)$/gm)]
      .filter((match) => match[2] !== 'counter')
      .map((match) => match[1]);
    assert.deepEqual(gaugesNamedTotal, []);
    for (const name of DROPPED_DEFAULT_METRICS) assert.doesNotMatch(text, new RegExp(`^# TYPE ${name} `, 'm'));
    for (const name of [
      'bullpen_nodejs_active_handles',
      'bullpen_nodejs_active_requests',
      'bullpen_nodejs_active_resources',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} gauge$`, 'm'), `${name} (by type) stays`);
    }
  });

  test('jobs moved exist for both reasons at 0 from the start, and workers retired at 0', async () => {
    const samples = await samplesOf(processMetrics('alpha-1', 'alpha'));
    const moved = samples.filter((sample) => sample.name === 'bullpen_jobs_moved_total');
    assert.deepEqual(
      moved.map((sample) => [sample.labels, sample.value]),
      [
        [{ reason: 'stolen', worker: 'alpha-1', host: 'alpha' }, 0],
        [{ reason: 'retired', worker: 'alpha-1', host: 'alpha' }, 0],
      ],
    );
    const retired = samples.filter((sample) => sample.name === 'bullpen_workers_retired_total');
    assert.deepEqual(
      retired.map((sample) => [sample.labels, sample.value]),
      [[{ worker: 'alpha-1', host: 'alpha' }, 0]],
    );
  });

  test('jobMoved counts by reason and workerRetired counts retirements', async () => {
    const metrics = processMetrics('alpha-1', 'alpha');
    metrics.jobMoved('stolen');
    metrics.jobMoved('stolen');
    metrics.jobMoved('retired');
    metrics.workerRetired();
    const samples = await samplesOf(metrics);
    assert.equal(total(samples, 'bullpen_jobs_moved_total', { reason: 'stolen' }), 2);
    assert.equal(total(samples, 'bullpen_jobs_moved_total', { reason: 'retired' }), 1);
    assert.equal(total(samples, 'bullpen_workers_retired_total'), 1);
  });

  test('undo failures exist for every operation at 0 from the start, and count by operation', async () => {
    const metrics = processMetrics('alpha-1', 'alpha');
    const series = async () =>
      (await samplesOf(metrics))
        .filter((sample) => sample.name === 'bullpen_undo_failures_total')
        .map((sample) => [sample.labels, sample.value]);
    assert.deepEqual(
      await series(),
      UNDO_OPERATIONS.map((operation) => [{ operation, worker: 'alpha-1', host: 'alpha' }, 0]),
    );
    metrics.undoFailed('remove_job');
    metrics.undoFailed('remove_job');
    metrics.undoFailed('cancel_reservation');
    const samples = await samplesOf(metrics);
    assert.equal(total(samples, 'bullpen_undo_failures_total', { operation: 'remove_job' }), 2);
    assert.equal(total(samples, 'bullpen_undo_failures_total', { operation: 'cancel_reservation' }), 1);
    assert.equal(total(samples, 'bullpen_undo_failures_total', { operation: 'release_reservation' }), 0);
  });

  test('help texts say what moved and retired mean', async () => {
    const text = await processMetrics('alpha-0', 'alpha').registry.metrics();
    assert.match(
      text,
      /^# HELP bullpen_jobs_moved_total Jobs moved from one worker's queue to another's, by reason \(stolen: .*; retired: .*\)\.$/m,
    );
    assert.match(text, /^# TYPE bullpen_jobs_moved_total counter$/m);
    assert.match(text, /^# HELP bullpen_workers_retired_total Dead worker ids retired by this process: .*\.$/m);
    assert.match(text, /^# TYPE bullpen_workers_retired_total counter$/m);
  });

  test("the primary's sum keeps workers and hosts apart and adds a dead process's counts to its successor's", async () => {
    const predecessor = processMetrics('alpha-0', 'alpha');
    predecessor.jobMoved('stolen');
    predecessor.workerRetired();
    const successor = processMetrics('alpha-0', 'alpha');
    successor.jobMoved('stolen');
    successor.jobMoved('retired');
    const other = processMetrics('alpha-1', 'alpha');
    other.workerRetired();
    other.workerRetired();
    const reports = await Promise.all(
      [predecessor, successor, other].map((metrics) => metrics.registry.getMetricsAsJSON()),
    );
    const samples = await aggregate(...reports);

    const moved = (worker: string, reason: string) =>
      total(samples, 'bullpen_jobs_moved_total', { worker, host: 'alpha', reason });
    assert.equal(moved('alpha-0', 'stolen'), 2);
    assert.equal(moved('alpha-0', 'retired'), 1);
    assert.equal(moved('alpha-1', 'stolen'), 0);
    assert.equal(moved('alpha-1', 'retired'), 0);
    assert.equal(
      samples.filter((sample) => sample.name === 'bullpen_jobs_moved_total').length,
      4,
      'one series per worker and reason',
    );
    assert.equal(total(samples, 'bullpen_workers_retired_total', { worker: 'alpha-0', host: 'alpha' }), 1);
    assert.equal(total(samples, 'bullpen_workers_retired_total', { worker: 'alpha-1', host: 'alpha' }), 2);
  });
});

describe('job duration and wait buckets', () => {
  /** The job lengths the README documents and the tests and benchmarks use, in seconds. */
  const REQUIRED = [1, 2.5, 5, 7.5, 10, 12.5, 15, 20, 30, 60];

  for (const [name, buckets] of [
    ['bullpen_job_duration_seconds', JOB_DURATION_BUCKETS],
    ['bullpen_job_wait_seconds', JOB_WAIT_BUCKETS],
  ] as const) {
    test(`${name}: the documented job lengths, small buckets for short jobs, and up to ten minutes`, () => {
      const missing = REQUIRED.filter((le) => !buckets.includes(le));
      assert.deepEqual(missing, [], `${name} lacks buckets`);
      assert.ok(
        buckets.every((le, i) => i === 0 || le > (buckets[i - 1] ?? Infinity)),
        `${name}: buckets strictly increase: ${buckets.join(', ')}`,
      );
      assert.ok((buckets[0] ?? Infinity) <= 0.005, `${name}: a bucket of 5 ms or less for millisecond jobs`);
      assert.ok(buckets.filter((le) => le < 1).length >= 5, `${name}: several buckets under a second`);
      assert.equal(buckets.at(-1), 600, `${name}: the last finite bucket is ten minutes, MAX_TASK_DURATION_MS`);
    });

    test(`${name}: the registered histogram exports exactly these buckets`, async () => {
      const metrics = processMetrics('alpha-0', 'alpha');
      metrics.jobStarted('sha256', 7);
      metrics.jobFinished('sha256', 'completed', 7);
      const samples = await samplesOf(metrics);
      const exported = samples.filter(
        (sample) => sample.name === `${name}_bucket` && sample.labels.job_name === 'sha256',
      );
      assert.deepEqual(
        exported.map((sample) => sample.labels.le),
        [...buckets.map(String), '+Inf'],
      );
      // 7 s falls between 5 and 7.5: the bucket 7.5 counts it and 5 does not.
      assert.equal(total(samples, `${name}_bucket`, { job_name: 'sha256', le: '5' }), 0);
      assert.equal(total(samples, `${name}_bucket`, { job_name: 'sha256', le: '7.5' }), 1);
    });
  }
});

describe('ledger gauges', () => {
  const worker = (id: string, hostId: string, load: Partial<WorkerGauges> = {}): WorkerGauges => ({
    id,
    hostId,
    concurrency: 8,
    queued: 0,
    active: 0,
    alive: true,
    ...load,
  });

  test('every gauge carries the worker and the host the ledger records for it', async () => {
    const workers = [
      worker('alpha-0', 'alpha', { active: 3, queued: 1 }),
      worker('beta-0', 'beta', { active: 5, alive: false }),
      worker('orphan-0', ''),
    ];
    const counts = new Map([['alpha-0', { waiting: 1, active: 3 }]]);
    const samples = parseMetrics(await renderLoadMetrics(workers, counts));
    const names = [
      'bullpen_worker_active_jobs',
      'bullpen_worker_queued_jobs',
      'bullpen_worker_concurrency',
      'bullpen_worker_up',
      'bullpen_queue_jobs',
    ];
    for (const name of names) {
      const series = samples.filter((sample) => sample.name === name);
      assert.ok(series.length >= workers.length, `${name} for every worker`);
      for (const sample of series) {
        const expected = workers.find((w) => w.id === sample.labels.worker);
        assert.ok(expected !== undefined, `${name}: unknown worker ${String(sample.labels.worker)}`);
        assert.equal(sample.labels.host, expected.hostId, `${name}{worker="${expected.id}"}: host`);
      }
    }
    assert.equal(total(samples, 'bullpen_worker_active_jobs', { worker: 'alpha-0', host: 'alpha' }), 3);
    assert.equal(total(samples, 'bullpen_worker_queued_jobs', { worker: 'alpha-0', host: 'alpha' }), 1);
    assert.equal(total(samples, 'bullpen_worker_up', { worker: 'beta-0', host: 'beta' }), 0);
    assert.equal(total(samples, 'bullpen_queue_jobs', { worker: 'alpha-0', host: 'alpha', state: 'waiting' }), 1);
    assert.equal(total(samples, 'bullpen_queue_jobs', { worker: 'beta-0', host: 'beta', state: 'waiting' }), 0);
  });
});
