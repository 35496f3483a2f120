/**
 * Redis outages against the real cluster: while Redis is stopped or hung, enqueue and /healthz answer
 * 503 within a second instead of hanging; running jobs are not run twice; when Redis returns the
 * service resumes by itself; jobs accepted before the outage all complete, across a Redis restart
 * with AOF; and no phantom load is left behind. While Redis is away the log stays JSON lines, a few
 * per connection, and a stop waits for running jobs but not for Redis.
 *
 * Single mode only (test/support/test-redis.ts): its subject is the one redis-server hanging
 * (SIGSTOP) or going away. A cluster's counterparts, a master stopped, restarted or down, are in
 * cluster-faults.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createGate, FIXTURE_HANDLERS, holdSlots } from '../support/gate.js';
import { enqueueMany, reservationsLeft, waitForIdle, waitForJobs } from '../support/jobs.js';
import { lineOf, linesOf, logged } from '../support/log-lines.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { startService, type LogLine, type Service } from '../support/service.js';
import { waitFor } from '../support/wait.js';
import { queueNameFor } from '../../src/contracts/names.js';
import { OUTAGE_LOG_INTERVAL_MS } from '../../src/logging/outage.js';

/** The bound for a refusal while Redis is away. */
const REFUSAL_BOUND_MS = 1_000;

async function timed<T>(action: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await action();
  return { value, ms: performance.now() - started };
}

/** The service's stop time-out, which a stop during an outage must not wait out. */
const SHUTDOWN_TIMEOUT_MS = 30_000;

/** What reports an outage in each process, on its own: its three connections and its two consumers. */
const REPORTERS = ['command', 'consumer', 'subscriber', 'queue consumer', 'delayed job router'];
const ERROR_EVENTS = new Set(['redis.connection-error', 'consumer.error']);
const RESTORED_EVENTS = new Set(['redis.connection-restored', 'consumer.restored']);

/** `test-0 command`: which process's connection (or consumer) a line is about. */
function reporterOf(line: LogLine): string {
  return `${String(line.workerId)} ${String(line.connection ?? line.consumer)}`;
}

/** How many of `lines` each reporter wrote. */
function countBy(lines: readonly LogLine[], key: (line: LogLine) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of lines) counts.set(key(line), (counts.get(key(line)) ?? 0) + 1);
  return counts;
}

/**
 * Each worker process reconnects on its own back-off (up to 2 s): one healthy answer shows only the
 * process that gave it. Fresh connections land on any process, so many healthy answers in a row
 * show them all recovered.
 */
async function healthyEverywhere(service: Service): Promise<void> {
  let inARow = 0;
  await waitFor(
    async () => {
      const health = await service.request('GET', '/healthz', { headers: { connection: 'close' } });
      inARow = health.status === 200 ? inARow + 1 : 0;
      return inARow >= 10;
    },
    { intervalMs: 50, what: 'healthz to recover on every process' },
  );
}

describe('Redis outage', () => {
  let redis: TestRedis;
  let service: Service;
  before(async () => {
    redis = await startRedis({ appendOnly: true });
    service = await startService({
      redisUrl: redis.url,
      workers: 2,
      // The service's default, which the harness raises for the other tests: its bound is tested here.
      env: {
        WORKER_CONCURRENCY: '4',
        COMMAND_TIMEOUT_MS: '500',
        SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
        HANDLERS_DIR: FIXTURE_HANDLERS,
      },
    });
  });
  after(async () => {
    await service?.stop();
    await redis?.stop();
  });

  test('Redis stopped and restarted with AOF: fast 503s, automatic recovery, every accepted job runs once', async () => {
    // 8 run during the outage, 4 wait in Redis through it.
    const jobs = await enqueueMany(service, 12, 'outage', { durationMs: 2_500 });
    await waitFor(async () => (await service.workers()).totals.active === 8, { what: '8 running jobs' });

    await redis.stopServer();
    try {
      const refused = await timed(() => service.enqueue<{ code: string }>({ jobName: 'during-outage' }));
      assert.equal(refused.value.status, 503);
      assert.equal(refused.value.body.code, 'QUEUE_UNAVAILABLE');
      assert.ok(refused.ms < REFUSAL_BOUND_MS, `enqueue answered after ${refused.ms} ms`);
      const health = await timed(() => service.request('GET', '/healthz'));
      assert.equal(health.value.status, 503);
      assert.ok(health.ms < REFUSAL_BOUND_MS, `healthz answered after ${health.ms} ms`);
      const workers = await service.request('GET', '/workers');
      assert.equal(workers.status, 503, 'reads fail cleanly too');
    } finally {
      await redis.startServer();
    }

    await healthyEverywhere(service);
    const after = await service.enqueue<{ jobId: string; assignedWorker: string }>({
      jobName: 'after-outage',
      data: { durationMs: 10 },
    });
    assert.equal(after.status, 202, 'enqueue works again without a restart');

    const done = await waitForJobs(service, [...jobs, after.body]);
    for (const job of done) assert.equal(job.attemptsStarted, 1, `${job.jobId} ran exactly once`);
    await waitForIdle(service);
  });

  test('Redis hung (SIGSTOP): 503 within a second, and nothing half-done is left once it resumes', async () => {
    const jobs = await enqueueMany(service, 4, 'before-hang', { durationMs: 1_500 });
    redis.signal('SIGSTOP');
    try {
      for (let i = 0; i < 3; i += 1) {
        const refused = await timed(() => service.enqueue<{ code: string }>({ jobName: 'during-hang' }));
        assert.equal(refused.value.status, 503);
        assert.ok(refused.ms < REFUSAL_BOUND_MS, `enqueue answered after ${refused.ms} ms`);
      }
      const health = await timed(() => service.request('GET', '/healthz'));
      assert.equal(health.value.status, 503);
      assert.ok(health.ms < REFUSAL_BOUND_MS, `healthz answered after ${health.ms} ms`);
    } finally {
      redis.signal('SIGCONT');
    }
    await waitForJobs(service, jobs);
    // Reservations made by the timed-out requests ran late and were undone behind them.
    await waitForIdle(service);
    assert.equal(await reservationsLeft(redis.client, service.prefix), 0, 'no reservation is left behind');
    const queued = await Promise.all(
      ['test-0', 'test-1'].map((id) => redis.client.llen(`${service.prefix}:${queueNameFor(id)}:wait`)),
    );
    assert.deepEqual(queued, [0, 0], 'no refused task was enqueued');
  });

  test('Redis away for a while: the log stays JSON lines, one line per connection per interval, and one when it is back', async () => {
    const reporters = (await service.workers()).workers.flatMap((worker) =>
      REPORTERS.map((reporter) => `${worker.id} ${reporter}`),
    );
    const from = service.logs.length;
    const stderrFrom = service.stderr().length;
    const errorLines = () => service.logs.slice(from).filter((line) => ERROR_EVENTS.has(line.event ?? ''));

    const stoppedAt = Date.now();
    await redis.stopServer();
    let outageMs: number;
    let outageLines: LogLine[];
    try {
      // Two lines from every connection and consumer: the outage has lasted longer than an interval for each.
      await waitFor(
        () => {
          const counts = countBy(errorLines(), reporterOf);
          return reporters.every((reporter) => (counts.get(reporter) ?? 0) >= 2);
        },
        { timeoutMs: 60_000, what: 'two error lines from every connection and consumer' },
      );
    } finally {
      outageLines = service.logs.slice(from);
      await redis.startServer();
      outageMs = Date.now() - stoppedAt;
    }
    await healthyEverywhere(service);
    const lines = service.logs.slice(from);

    assert.deepEqual(
      lines.filter((line) => typeof line.level !== 'number').map((line) => line.msg),
      [],
      'every line on stdout is a JSON log line',
    );
    assert.equal(service.stderr().slice(stderrFrom), '', 'nothing was written around the log');
    // At most one line per interval of each kind, from each connection, consumer and loop of a process:
    // the first at once, then one per interval, and one more for an attempt between the restart and
    // the reconnect.
    const bound = Math.floor(outageMs / OUTAGE_LOG_INTERVAL_MS) + 2;
    const perKind = countBy(outageLines, (line) => `${reporterOf(line)} ${String(line.event)}`);
    const flooding = [...perKind].filter(([, count]) => count > bound);
    assert.deepEqual(flooding, [], `at most ${bound} lines of a kind in an outage of ${outageMs} ms`);
    const errors = errorLines();
    assert.deepEqual(
      errors.filter((line) => line.err !== undefined || typeof line.reason !== 'string' || /\n/.test(line.reason)),
      [],
      'an error line says what failed in one line, without a stack',
    );
    assert.ok(
      errors.some((line) => Number(line.suppressed) > 0),
      'the attempts between two lines were counted, not logged',
    );
    await waitFor(
      () => {
        const restored = service.logs.slice(from).filter((line) => RESTORED_EVENTS.has(line.event ?? ''));
        return reporters.every((reporter) => restored.some((line) => reporterOf(line) === reporter));
      },
      { what: 'a restored line from every connection and consumer' },
    );
    const restored = countBy(
      service.logs.slice(from).filter((line) => RESTORED_EVENTS.has(line.event ?? '')),
      reporterOf,
    );
    assert.deepEqual(
      [...restored].sort(),
      reporters.map((reporter) => [reporter, 1]).sort(),
      'one restored line from every connection and consumer',
    );
  });

  // Last: it stops the service.
  test('SIGTERM while Redis is away: a process with nothing running stops at once, one running a job waits for the job, not for Redis', async () => {
    // The gate's keys live on a Redis of their own, which stays up: the job ends when the test says.
    const gateRedis = await startRedis();
    try {
      const gate = createGate(gateRedis.client, gateRedis.url);
      const [held] = await holdSlots(service, gate, 1);
      assert.ok(held);
      const busy = held.assignedWorker;
      const idle = (await service.workers()).workers.map((worker) => worker.id).find((id) => id !== busy);
      assert.ok(idle);

      await redis.stopServer();
      const stopped = service.stop('SIGTERM');

      const idleDone = await waitFor(() => lineOf(service.logs, 'shutdown.done', { workerId: idle }), {
        what: 'the process with nothing running to stop',
      });
      const idleStarted = lineOf(service.logs, 'shutdown.started', { workerId: idle });
      assert.ok(idleStarted);
      const idleStopMs = Number(idleDone.time) - Number(idleStarted.time);
      assert.ok(
        idleStopMs < 10_000,
        `the process with nothing running stopped in ${idleStopMs} ms (SHUTDOWN_TIMEOUT_MS is ${SHUTDOWN_TIMEOUT_MS})`,
      );
      assert.ok(logged(service.logs, 'shutdown.redis-away', { workerId: idle, running: 0 }));
      assert.ok(
        logged(service.logs, 'shutdown.step-skipped', { workerId: idle, step: 'stop routing here' }),
        'taking the id out of selection did not wait for Redis',
      );

      const draining = await waitFor(() => lineOf(service.logs, 'shutdown.draining', { workerId: busy }), {
        what: 'the process running the job to wait for it',
      });
      assert.equal(draining.running, 1);
      // A connection error line an interval later shows it still there, waiting through the outage.
      await waitFor(
        () =>
          service.logs.some(
            (line) =>
              line.workerId === busy &&
              line.event === 'redis.connection-error' &&
              Number(line.time) >= Number(draining.time) + OUTAGE_LOG_INTERVAL_MS,
          ),
        { what: 'the process running the job to go on waiting through the outage' },
      );
      assert.equal(lineOf(service.logs, 'shutdown.done', { workerId: busy }), undefined, 'it waits for the job');

      const openedAt = service.logs.length;
      await gate.open();
      assert.equal(await stopped, 0);
      const afterJob = service.logs.slice(openedAt);
      assert.ok(
        logged(afterJob, 'shutdown.redis-away', { workerId: busy, running: 0 }),
        'it stopped once the job ended',
      );
      assert.ok(logged(afterJob, 'shutdown.done', { workerId: busy }));
      for (const event of ['shutdown.timeout', 'shutdown.cut', 'shutdown.step-failed']) {
        assert.deepEqual(linesOf(service.logs, event), [], `no ${event} line`);
      }
      assert.deepEqual(await gate.started(), [held.jobId], 'the job ran once');
    } finally {
      await gateRedis.stop();
    }
  });
});
