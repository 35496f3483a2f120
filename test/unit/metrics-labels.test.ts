/**
 * The labels of the metrics, without a cluster: every process series carries its worker and its host,
 * the work-ownership counters exist from the start and add up when the primary sums processes (and
 * carries a dead process's counts over to its successor), and every ledger gauge carries the host of
 * its worker.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { renderLoadMetrics, type WorkerGauges } from '../../src/metrics/load-metrics.js';
import { createProcessMetrics, type ProcessMetrics } from '../../src/metrics/process-metrics.js';
import { parseMetrics, total, type Sample } from '../support/prom-text.js';

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

const pool = { threads: 2, queueSize: 0 };

function processMetrics(workerId: string, hostId: string): ProcessMetrics {
  return createProcessMetrics({ workerId, hostId, knownJobNames: ['sha256'], pool });
}

async function samplesOf(metrics: ProcessMetrics): Promise<Sample[]> {
  return parseMetrics(await metrics.registry.metrics());
}

/** What the primary does with the processes' reports (see src/metrics/cluster-metrics.ts). */
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

  test('an enqueue is labelled with the worker it was routed to, and the host that accepted it', async () => {
    const metrics = processMetrics('alpha-0', 'alpha');
    metrics.jobEnqueued('beta-3', 'sha256');
    const [enqueued, ...more] = (await samplesOf(metrics)).filter((sample) => sample.name === 'bullpen_jobs_enqueued_total');
    assert.equal(more.length, 0);
    assert.deepEqual(enqueued?.labels, { worker: 'beta-3', job_name: 'sha256', host: 'alpha' });
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

  test('help texts say what moved and retired mean', async () => {
    const text = await processMetrics('alpha-0', 'alpha').registry.metrics();
    assert.match(text, /^# HELP bullpen_jobs_moved_total Jobs moved from one worker's queue to another's, by reason \(stolen: .*; retired: .*\)\.$/m);
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
    const reports = await Promise.all([predecessor, successor, other].map((metrics) => metrics.registry.getMetricsAsJSON()));
    const samples = await aggregate(...reports);

    const moved = (worker: string, reason: string) => total(samples, 'bullpen_jobs_moved_total', { worker, host: 'alpha', reason });
    assert.equal(moved('alpha-0', 'stolen'), 2);
    assert.equal(moved('alpha-0', 'retired'), 1);
    assert.equal(moved('alpha-1', 'stolen'), 0);
    assert.equal(moved('alpha-1', 'retired'), 0);
    assert.equal(samples.filter((sample) => sample.name === 'bullpen_jobs_moved_total').length, 4, 'one series per worker and reason');
    assert.equal(total(samples, 'bullpen_workers_retired_total', { worker: 'alpha-0', host: 'alpha' }), 1);
    assert.equal(total(samples, 'bullpen_workers_retired_total', { worker: 'alpha-1', host: 'alpha' }), 2);
  });
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
    const names = ['bullpen_worker_active_jobs', 'bullpen_worker_queued_jobs', 'bullpen_worker_concurrency', 'bullpen_worker_up', 'bullpen_queue_jobs'];
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
