/**
 * A graceful shutdown with event streams open: `GET /jobs/:id/events` of a job that will not end
 * (a delayed one) holds its connection for as long as the client likes, and must not hold the
 * shutdown. SIGTERM ends every stream with a final `shutdown` event, the HTTP server closes while
 * the consumer stops taking jobs and lets its running ones finish, and every process exits on its own:
 * nothing waits for SHUTDOWN_TIMEOUT_MS, nothing is killed or cut, and a clean stop logs no warning.
 * While the jobs run the lease's heartbeat goes on, and names a dead worker id due for retirement: a
 * stopping process leaves it to a live one.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ledgerKeys } from '../../src/contracts/keys.js';
import { createGate, FIXTURE_HANDLERS, GATE_JOB, holdSlots } from '../support/gate.js';
import { enqueueMany, enqueueTask, isAlive, waitForJobs } from '../support/jobs.js';
import { lineOf, linesOf } from '../support/log-lines.js';
import { startService } from '../support/service.js';
import { openEvents } from '../support/sse.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
import { waitFor } from '../support/wait.js';

/** Far above the jobs' own time: a stop that waited for it could not pass the bound below. */
const SHUTDOWN_TIMEOUT_MS = 60_000;
/** Generous for a loaded machine, and well under SHUTDOWN_TIMEOUT_MS. */
const STOPS_WITHIN_MS = 30_000;
const STREAMS = 8;
/** A worker id whose lease expired long ago, as a host that died leaves it: due for retirement at once. */
const GHOST = 'ghost-0';
/** The service's WORKER_TTL_MS (its default), and HEARTBEAT_INTERVAL_MS. */
const WORKER_TTL_MS = 5_000;
const HEARTBEAT_INTERVAL_MS = 1_000;

let redis: ModeRedis;
before(async () => {
  redis = await startTestRedis();
});
after(async () => {
  await redis?.stop();
});

test('SIGTERM with event streams open ends each with a shutdown event, drains the running jobs, takes no new job and no retirement, and exits 0 without a time-out, a kill or a warning', async () => {
  const options = {
    ...redis.serviceOptions,
    workers: 2,
    env: {
      WORKER_CONCURRENCY: '4',
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      HANDLERS_DIR: FIXTURE_HANDLERS,
      // Per-job lines (started, completed) are debug.
      LOG_LEVEL: 'debug',
    },
  };
  const service = await startService(options);
  const workerPids = (await service.workers()).workers.map((worker) => worker.pid);
  const gate = createGate(redis.client, redis.nodeUrl);

  // A job that will not end while the test runs: its streams stay open until the server ends them.
  const delayed = await enqueueTask(service, { jobName: 'later', options: { delayMs: 3_600_000 } });
  const streams = await Promise.all(
    Array.from({ length: STREAMS }, () =>
      openEvents(`${service.url}/jobs/${delayed.jobId}/events`, { timeoutMs: 90_000 }),
    ),
  );
  assert.ok(streams.every((stream) => stream.status === 200));
  // Every slot (2 workers × 4) runs a held job; more wait behind them.
  const held = await holdSlots(service, gate, 8);
  const waiting = await enqueueMany(service, 4, GATE_JOB, gate.data());

  const stopped = service.stop('SIGTERM', 90_000);
  await waitFor(() => linesOf(service.logs, 'shutdown.draining').length === 2, {
    what: 'both processes to wait for their running jobs',
  });
  // The lease is renewed while the jobs run, and a renewal names the ids due for retirement: a
  // stopping process must not take one on (it would be cut off by its own stop). Its heartbeats go on
  // for a few beats after the id is due, and after each process has held its lease a whole TTL (the
  // steadiness a process needs before it retires anyone).
  await redis.client.hset(ledgerKeys(service.prefix).leases, GHOST, 'ghost/1|1');
  const steadyAt = Math.max(...linesOf(service.logs, 'process.ready').map((line) => Number(line.time))) + WORKER_TTL_MS;
  await sleep(Math.max(3 * HEARTBEAT_INTERVAL_MS, steadyAt + 2 * HEARTBEAT_INTERVAL_MS - Date.now()));
  // The streams end while the jobs still run: they do not wait for the drain, nor it for them.
  const ended = await Promise.all(streams.map((stream) => stream.ended));
  for (const events of ended) {
    assert.equal(events.at(-1)?.event, 'shutdown', `the stream ended with a shutdown event: ${JSON.stringify(events)}`);
  }

  const openedAt = Date.now();
  await gate.open();
  assert.equal(await stopped, 0);
  const stopMs = Date.now() - openedAt;
  assert.ok(stopMs < STOPS_WITHIN_MS, `stopped ${stopMs} ms after the jobs could end (SHUTDOWN_TIMEOUT_MS is 60 s)`);
  assert.ok(
    workerPids.every((pid) => !isAlive(pid)),
    'every process exited',
  );
  for (const event of ['shutdown.timeout', 'shutdown.cut', 'shutdown.forced', 'process.killed']) {
    assert.deepEqual(linesOf(service.logs, event), [], `no ${event} line`);
  }
  assert.equal(linesOf(service.logs, 'shutdown.done').length, 2, 'both processes finished their stop');
  const warnings = service.logs.filter((line) => (line.level ?? 0) >= 40);
  assert.deepEqual(warnings, [], 'a clean stop logs nothing at warn or above');

  assert.deepEqual(
    [...(await gate.started())].sort(),
    held.map((job) => job.jobId).sort(),
    'each held job ran once, and no waiting job started once the stop began',
  );
  assert.equal(linesOf(service.logs, 'job.completed').length, 8, 'the held jobs completed');
  assert.deepEqual(linesOf(service.logs, 'retirement.started'), [], 'a stopping process retired no worker id');

  const next = await startService({ ...options, prefix: service.prefix });
  try {
    const done = await waitForJobs(next, waiting);
    assert.ok(
      done.every((job) => job.attemptsStarted === 1),
      'the jobs left waiting ran after the next start, once each',
    );
    // The id was due all along: a running process retires it.
    await waitFor(() => lineOf(next.logs, 'retirement.done', { retired: GHOST }), { what: `${GHOST} to be retired` });
  } finally {
    assert.equal(await next.stop(), 0);
  }
});
