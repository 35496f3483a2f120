/**
 * The cluster-wide metrics exchange, primary and workers in one process, linked by in-memory
 * channels that carry structured clones as Node's IPC does (they stand in for the process channel,
 * not for Redis or BullMQ): a worker that does not answer in time is represented by its last report,
 * and the primary logs and counts it for that worker; a worker that cannot read its registry logs and
 * counts it; a scrape the primary never answers fails with METRICS_UNAVAILABLE (`GET /metrics` answers
 * it as a 503: test/integration/metrics-unavailable.test.ts).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, describe, test } from 'node:test';
import { Gauge, Registry } from 'prom-client';
import { IpcTimeoutError, MetricsUnavailableError } from '../../src/errors.js';
import { createHostMetricsClient, type HostMetricsClient } from '../../src/metrics/host-metrics-client.js';
import { createHostMetricsPrimary } from '../../src/metrics/host-metrics-primary.js';
import { createProcessMetrics } from '../../src/metrics/process-metrics.js';
import { captureLogger } from '../support/capture-logger.js';
import { parseMetrics, total, type Sample } from '../support/prom-text.js';
import { silentChannel } from '../support/silent-channel.js';
import { waitFor } from '../support/wait.js';

const HOST = 'unit';
const FAILURES = 'bullpen_metrics_ipc_failures_total';
const WARN = 40;

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly workerId?: string;
  readonly requestId?: number;
  readonly operation?: string;
}

const capturingLogger = () => captureLogger<LogLine>();

/**
 * The two ends of one primary-to-worker channel. Messages arrive as clones on a later turn, as over
 * IPC; `mute` drops what the worker sends, as a stalled worker would never send it.
 */
function channelPair() {
  const atPrimary = new EventEmitter();
  const atWorker = new EventEmitter();
  /** `held`: what the worker sends waits in the channel until `release`, as under a loaded machine. */
  const state = { muted: false, held: false, connected: true };
  const waiting: (() => void)[] = [];
  const deliver = (to: EventEmitter, message: unknown, callback: (error: Error | null) => void) => {
    const copy: unknown = structuredClone(message);
    setImmediate(() => {
      to.emit('message', copy);
      callback(null);
    });
    return true;
  };
  const worker = {
    isConnected: () => state.connected,
    on: (event: 'message', listener: (message: unknown) => void) => atPrimary.on(event, listener),
    once: (event: 'disconnect', listener: () => void) => atPrimary.once(event, listener),
    send: (message: unknown, callback: (error: Error | null) => void) => deliver(atWorker, message, callback),
  };
  const channel = {
    on: (event: 'message', listener: (message: unknown) => void) => atWorker.on(event, listener),
    off: (event: 'message', listener: (message: unknown) => void) => atWorker.off(event, listener),
    send: (message: unknown, callback: (error: Error | null) => void) => {
      if (state.muted) return true;
      if (state.held) {
        waiting.push(() => deliver(atPrimary, message, callback));
        return true;
      }
      return deliver(atPrimary, message, callback);
    },
  };
  return {
    worker,
    channel,
    state,
    waiting: () => waiting.length,
    release: () => waiting.splice(0).forEach((send) => send()),
    /** The channel closes after what was already sent through it has arrived, as over IPC. */
    disconnect: () =>
      setImmediate(() => {
        state.connected = false;
        atPrimary.emit('disconnect');
      }),
  };
}

/**
 * A primary with `count` workers, each with its own process metrics, linked in memory. As in the
 * service, a worker waits for the primary longer than the primary waits for a worker.
 */
function cluster(count: number, collectTimeoutMs: number) {
  const primaryLog = capturingLogger();
  const workerLog = capturingLogger();
  const primary = createHostMetricsPrimary({ timeoutMs: collectTimeoutMs, hostId: HOST, logger: primaryLog.logger });
  /** A worker process for slot `index`, attached to the primary: a first one, or a successor. */
  const join = (index: number) => {
    const pair = channelPair();
    const metrics = createProcessMetrics({
      workerId: `${HOST}-${index}`,
      hostId: HOST,
      knownJobNames: [],
      pool: { threads: 1, queueSize: 0 },
    });
    const client = createHostMetricsClient({
      registry: metrics.registry,
      timeoutMs: 30_000,
      channel: pair.channel,
      logger: workerLog.logger,
    });
    primary.attach(pair.worker, index);
    return { ...pair, metrics, client };
  };
  const workers = Array.from({ length: count }, (_, index) => join(index));
  return {
    primary,
    workers,
    join,
    primaryLog,
    workerLog,
    close: () => workers.forEach((worker) => worker.client.close()),
  };
}

const failures = (samples: readonly Sample[], worker: string, operation: string) =>
  total(samples, FAILURES, { worker, operation });

describe('cluster metrics over IPC', () => {
  test('a scrape sums every worker, and every failure series starts at 0 for every worker', async () => {
    const { workers, close } = cluster(2, 5_000);
    try {
      workers[0]?.metrics.jobFinished('any', 'completed', 0.1);
      workers[1]?.metrics.jobFinished('any', 'completed', 0.1);
      const samples = parseMetrics((await workers[0]?.client.scrape()) ?? '');
      assert.equal(total(samples, 'bullpen_jobs_completed_total'), 2);
      const series = samples
        .filter((sample) => sample.name === FAILURES)
        .map((s) => [s.labels.worker, s.labels.host, s.labels.operation, s.value]);
      assert.deepEqual(
        series.sort(),
        ['unit-0', 'unit-1'].flatMap((worker) =>
          ['collect', 'report', 'respond', 'scrape'].map((operation) => [worker, HOST, operation, 0]),
        ),
      );
    } finally {
      close();
    }
  });

  test('a report still in the channel when its worker exits is carried over to the successor', async () => {
    const { primary, workers, join, close } = cluster(2, 5_000);
    const successor = join(1);
    try {
      const dying = workers[1];
      assert.ok(dying);
      dying.metrics.jobFinished('any', 'completed', 0.1);
      // The primary asks; the dying worker's answer is still in the channel when its exit is known.
      dying.state.held = true;
      const scrape = primary.collect();
      await waitFor(() => dying.waiting() > 0, { what: 'the report to be sent' });
      const detached = primary.detach(dying.worker, 1);
      dying.release();
      dying.disconnect();
      await Promise.all([detached, scrape]);

      const samples = parseMetrics(await primary.collect());
      assert.equal(total(samples, 'bullpen_jobs_completed_total', { worker: 'unit-1' }), 1, 'carried over');
    } finally {
      close();
      successor.client.close();
    }
  });

  test('a worker carried over while a scrape waits for another is counted once, not twice', async () => {
    const { primary, workers, close } = cluster(2, 5_000);
    try {
      const [slow, dead] = workers;
      assert.ok(slow && dead);
      dead.metrics.jobFinished('any', 'completed', 0.1);
      await primary.collect();
      dead.disconnect();
      await waitFor(() => !dead.state.connected, { what: 'the channel to close' });
      // The scrape takes the dead worker's last report at once, then waits for the slow one; the
      // dead worker is carried over meanwhile.
      slow.state.held = true;
      const scrape = primary.collect();
      await waitFor(() => slow.waiting() > 0, { what: 'the slow report to be sent' });
      await primary.detach(dead.worker, 1);
      slow.release();
      const samples = parseMetrics(await scrape);
      assert.equal(total(samples, 'bullpen_jobs_completed_total', { worker: 'unit-1' }), 1);
      assert.equal(
        total(parseMetrics(await primary.collect()), 'bullpen_jobs_completed_total', { worker: 'unit-1' }),
        1,
      );
    } finally {
      close();
    }
  });

  test('a worker that stops answering: its last report stands in, and the primary logs and counts it for that worker', async () => {
    // A collect time-out with room for a loaded machine; the first scrape is repeated until the worker's
    // report has been seen, and only what happens after that is counted.
    const { workers, primaryLog, close } = cluster(2, 500);
    try {
      workers[1]?.metrics.jobFinished('any', 'completed', 0.1);
      const seen = await waitFor(async () => {
        const samples = parseMetrics((await workers[0]?.client.scrape()) ?? '');
        return total(samples, 'bullpen_jobs_completed_total', { worker: 'unit-1' }) === 1 ? samples : undefined;
      });
      const warnedBefore = primaryLog.lines.length;
      if (workers[1]) workers[1].state.muted = true;
      const samples = parseMetrics((await workers[0]?.client.scrape()) ?? '');
      assert.equal(
        total(samples, 'bullpen_jobs_completed_total', { worker: 'unit-1' }),
        1,
        "the silent worker's last report",
      );
      assert.equal(failures(samples, 'unit-1', 'collect') - failures(seen, 'unit-1', 'collect'), 1);
      const warned = primaryLog.lines
        .slice(warnedBefore)
        .filter((line) => line.level === WARN && line.operation === 'collect');
      assert.ok(warned.length >= 1);
      assert.ok(warned.some((line) => line.workerId === 'unit-1'));
      assert.ok(
        warned.every((line) => typeof line.requestId === 'number'),
        'each line names the request',
      );
    } finally {
      close();
    }
  });

  test('a worker that cannot read its own registry logs and counts the failed report', async () => {
    // The first scrape waits out the whole collect time-out (no report comes); the second needs the
    // report to arrive within it, which 100 ms did not always allow on a loaded CI machine.
    const { workers, workerLog, close } = cluster(1, 2_000);
    try {
      const registry = workers[0]?.metrics.registry ?? new Registry();
      new Gauge({
        name: 'bullpen_broken',
        help: 'A gauge whose collection fails.',
        registers: [registry],
        collect() {
          throw new Error('collect failed');
        },
      });
      // The primary gets no report: the worker's own scrape is answered without its series.
      await workers[0]?.client.scrape();
      const warned = workerLog.lines.filter((line) => line.level === WARN && line.operation === 'report');
      assert.equal(warned.length, 1);
      assert.equal(typeof warned[0]?.requestId, 'number');
      registry.removeSingleMetric('bullpen_broken');
      const samples = parseMetrics((await workers[0]?.client.scrape()) ?? '');
      assert.equal(failures(samples, 'unit-0', 'report'), 1);
      assert.equal(failures(samples, 'unit-0', 'collect'), 1, 'the primary saw no report in time either');
    } finally {
      close();
    }
  });

  describe('a primary that never answers', () => {
    let client: HostMetricsClient | undefined;
    after(() => client?.close());

    test('the scrape fails with METRICS_UNAVAILABLE, and counts it', async () => {
      const metrics = createProcessMetrics({
        workerId: `${HOST}-0`,
        hostId: HOST,
        knownJobNames: [],
        pool: { threads: 1, queueSize: 0 },
      });
      const { logger } = capturingLogger();
      client = createHostMetricsClient({ registry: metrics.registry, timeoutMs: 50, channel: silentChannel(), logger });

      const error = await client.scrape().then(
        () => assert.fail('answered'),
        (caught: unknown) => caught,
      );
      assert.ok(error instanceof MetricsUnavailableError);
      assert.equal(error.code, 'METRICS_UNAVAILABLE');
      assert.equal(error.status, 503);
      assert.ok(error.cause instanceof IpcTimeoutError, 'caused by the time-out');
      assert.equal(total(parseMetrics(await metrics.registry.metrics()), FAILURES, { operation: 'scrape' }), 1);
    });
  });
});
