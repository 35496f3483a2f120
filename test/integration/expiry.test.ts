/**
 * Job expiry on a real service (two worker processes of one slot each, jobs waiting on a worker beyond
 * its slot): a job not started by its expiry never runs, wherever it waits (behind a busy slot, held
 * for its group's turn, routed when due into a busy pool, moved to another worker's queue). It reads
 * `expired` soon after its time while the slots' holders still run, its slot or place in line is given
 * back at once, it is counted once, and its event stream ends with `expired`. A job that started
 * first runs to its end. The consumer's own check stops an expired job whose entry the expirer never
 * saw. Expiries that cannot be met are refused with 422 naming the field, and nothing is enqueued.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { Queue, type JobsOptions } from 'bullmq';
import { ledgerKeys } from '../../src/contracts/keys.js';
import { DELAYED_QUEUE, jobIdFor, parseJobId, queueNameFor } from '../../src/contracts/names.js';
import { EXPIRES_OPTION } from '../../src/contracts/stored-job.js';
import { createMoveLedger } from '../../src/ledger/moves.js';
import { createMover } from '../../src/ownership/mover.js';
import { createQueueRegistry } from '../../src/queue/queues.js';
import { createTransfer } from '../../src/queue/transfer.js';
import { createGate, FIXTURE_HANDLERS, GATE_JOB, holdSlots, openGate, type Gate } from '../support/gate.js';
import { testGroupLedger } from '../support/groups.js';
import { enqueueTask, readJob, waitForIdle, waitForJobs, type Enqueued, type JobView } from '../support/jobs.js';
import { logged } from '../support/log-lines.js';
import { parseMetrics, total } from '../support/prom-text.js';
import { serviceSuite } from '../support/service-suite.js';
import { openEvents } from '../support/sse.js';
import { startTestRedis } from '../support/test-redis.js';
import { waitFor } from '../support/wait.js';

/** Short enough for a quick test, long enough that the enqueue answers well before it. */
const EXPIRES_IN_MS = 1_500;

interface ExpiringView extends JobView {
  readonly expiresAt: string | null;
}

interface ErrorBody {
  readonly code: string;
  readonly details?: readonly { readonly path: string; readonly message: string }[];
}

describe('job expiry', () => {
  const suite = serviceSuite(startTestRedis, (redis) => ({
    ...redis.serviceOptions,
    workers: 2,
    // Jobs wait on a worker beyond its one slot (PREFETCH), as most expiries here need.
    env: { WORKER_CONCURRENCY: '1', PREFETCH: '3', HANDLERS_DIR: FIXTURE_HANDLERS },
  }));

  const expiries = () => ledgerKeys(suite.service.prefix).expiries;
  const read = async (jobId: string) => (await readJob(suite.service, jobId)) as ExpiringView;
  const expiredCount = async (): Promise<number> => {
    const samples = parseMetrics((await suite.service.request('GET', '/metrics')).text);
    return total(samples, 'bullpen_jobs_expired_total', { job_name: GATE_JOB });
  };
  const queued = async () => (await suite.service.workers()).totals.queued;
  /**
   * Waits for a job to read `expired`; checks what every expired job shows. One the expirer took out
   * of its queue was never fetched; one a consumer (or the router) fetched counts that fetch as a
   * start, though its body never ran (the gates' records say so).
   */
  const expiredView = async (jobId: string, fetched = false): Promise<ExpiringView> => {
    const view = await waitFor(
      async () => {
        const seen = await read(jobId);
        return seen.state === 'expired' ? seen : undefined;
      },
      { what: `${jobId} to expire` },
    );
    assert.equal(view.failedReason, 'expired');
    assert.equal(view.attemptsStarted, fetched ? 1 : 0);
    return view;
  };
  /** Both slots held by gate jobs; returns the gate and the two held jobs. */
  const fillSlots = async (): Promise<{ gate: Gate; held: Enqueued[] }> => {
    const gate = createGate(suite.redis.client, suite.redis.nodeUrl);
    return { gate, held: await holdSlots(suite.service, gate, 2) };
  };
  /** Both slots held by gate jobs, and a job on an open gate (which records its starts) enqueued with `options`. */
  const behindBusySlots = async (options: Record<string, unknown>) => {
    const { gate, held } = await fillSlots();
    const waiting = await openGate(suite.redis.client, suite.redis.nodeUrl);
    const counted = await expiredCount();
    const job = await enqueueTask(suite.service, { jobName: GATE_JOB, data: waiting.data(), options });
    return { gate, held, waiting, counted, job };
  };
  const finish = async (gate: Gate, held: readonly Enqueued[]) => {
    await gate.open();
    await waitForJobs(suite.service, held);
    await waitForIdle(suite.service);
  };

  test('a job waiting behind a busy slot expires at its time: slot given back, counted, never run', async () => {
    const { service, redis } = suite;
    const { gate, held, waiting, counted, job } = await behindBusySlots({ expiresInMs: EXPIRES_IN_MS });
    // And one of a batch, whose expiry entry goes in the batch's transaction.
    const batch = await service.request<{ tasks: Enqueued[] }>('POST', '/enqueue-tasks', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        tasks: [{ jobName: GATE_JOB, data: waiting.data(), options: { expiresInMs: EXPIRES_IN_MS } }],
      }),
    });
    assert.equal(batch.status, 202, batch.text);
    const stream = await openEvents(`${service.url}/jobs/${job.jobId}/events`);
    const before = await read(job.jobId);
    assert.equal(before.state, 'waiting');
    assert.ok(before.expiresAt !== null && Date.parse(before.expiresAt) > Date.now(), 'it shows when it expires');
    assert.equal(await queued(), 2);
    for (const { jobId } of [job, ...batch.body.tasks]) {
      assert.notEqual(await redis.client.zscore(expiries(), jobId), null, 'its expiry is watched');
    }

    for (const { jobId } of batch.body.tasks) await expiredView(jobId);
    const view = await expiredView(job.jobId);
    assert.equal(view.expiresAt, before.expiresAt);
    // At once, not when a slot frees: both gate jobs still run, and the slot it held is free again.
    for (const { jobId } of held) assert.equal((await read(jobId)).state, 'active');
    assert.equal(await queued(), 0, 'its reservation was released');
    assert.equal(await expiredCount(), counted + 2);
    assert.equal(await redis.client.zscore(expiries(), job.jobId), null, 'its entry is gone');
    assert.ok(logged(service.logs, 'job.expired', { jobId: job.jobId, by: 'expirer' }));
    const events = await stream.ended;
    assert.equal(events.at(-1)?.event, 'expired');
    assert.equal((events.at(-1)?.data as { state: string }).state, 'expired');

    // Listed as expired; ended for a cancel; retried as a new job without the expiry, which runs.
    const listed = await service.request<{ jobs: { jobId: string }[] }>('GET', '/jobs?state=expired');
    assert.ok(listed.body.jobs.some(({ jobId }) => jobId === job.jobId));
    const cancel = await service.request<ErrorBody & { details: { state: string } }>('DELETE', `/jobs/${job.jobId}`);
    assert.equal(cancel.status, 409, cancel.text);
    assert.equal(cancel.body.code, 'JOB_FINISHED');
    assert.equal(cancel.body.details.state, 'expired');
    const retried = await service.request<Enqueued & { retryOf: string }>('POST', `/jobs/${job.jobId}/retry`);
    assert.equal(retried.status, 202, retried.text);
    assert.equal((await read(retried.body.jobId)).expiresAt, null);

    await finish(gate, [...held, retried.body]);
    assert.deepEqual(await waiting.started(), [retried.body.jobId], 'the expired job never ran');
    assert.equal((await read(job.jobId)).state, 'expired');
    assert.equal(await expiredCount(), counted + 2, 'counted once each');
  });

  test('a job held for its group turn expires and leaves its group line', async () => {
    const { service, redis } = suite;
    const group = 'expiry-held';
    const groups = testGroupLedger(redis.client, service.prefix);
    // A paused group's jobs are held, whatever room the workers have.
    await groups.setSettings(group, { paused: true });
    const gate = await openGate(redis.client, redis.nodeUrl);
    const counted = await expiredCount();
    const expiresAt = new Date(Date.now() + EXPIRES_IN_MS).toISOString();
    const body = JSON.stringify({ jobName: GATE_JOB, group, data: gate.data(), options: { expiresAt } });
    const send = () =>
      service.request<Enqueued>('POST', '/enqueue-task', {
        headers: { 'content-type': 'application/json', 'idempotency-key': `expiry-held-${gate.key}` },
        body,
      });
    const sent = await send();
    assert.equal(sent.status, 202, sent.text);
    const job = sent.body;
    assert.equal((await groups.view(group)).waiting, 1);
    assert.equal((await read(job.jobId)).expiresAt, expiresAt);

    await expiredView(job.jobId);
    assert.equal((await groups.view(group)).waiting, 0, 'it left its line');
    assert.equal(await expiredCount(), counted + 1);
    // Its expiresAt has passed, but a repeat of the request is answered as it was.
    const repeated = await send();
    assert.equal(repeated.status, 200, repeated.text);
    assert.equal(repeated.body.jobId, job.jobId);
    await groups.setSettings(group, undefined);
    await waitForIdle(service);
    assert.deepEqual(await gate.started(), []);
  });

  test('a delayed job routed when due into a busy pool expires where it was routed', async () => {
    const { gate, held, waiting, counted, job } = await behindBusySlots({
      delayMs: 200,
      expiresInMs: EXPIRES_IN_MS + 500,
    });
    assert.equal(job.assignedWorker, null);
    const routed = await waitFor(
      async () => {
        const view = await read(job.jobId);
        return view.assignedWorker === null ? undefined : view;
      },
      { what: 'the delayed job to be routed' },
    );
    assert.equal(routed.state, 'waiting', 'routed behind a busy slot');
    assert.notEqual(routed.expiresAt, null, 'its routing kept its expiry');

    const view = await expiredView(job.jobId);
    assert.equal(view.assignedWorker, routed.assignedWorker);
    assert.equal(await queued(), 0);
    assert.equal(await expiredCount(), counted + 1);
    await finish(gate, held);
    assert.deepEqual(await waiting.started(), []);
  });

  test('a job moved to another worker expires in its new queue', async () => {
    const { service, redis } = suite;
    const { gate, held, waiting, counted, job } = await behindBusySlots({ expiresInMs: EXPIRES_IN_MS + 1_000 });
    const source = job.assignedWorker;
    const target = held.map(({ assignedWorker }) => assignedWorker).find((id) => id !== source) ?? '';
    // Moved as a thief moves it, while the thief's own slot is busy: it waits there.
    const connection = redis.connect({ maxRetriesPerRequest: null });
    const queues = createQueueRegistry({ connection, prefix: service.prefix });
    try {
      const mover = createMover({
        ledger: createMoveLedger({
          redis: connection,
          prefix: service.prefix,
          workerId: 'expiry-test',
          owner: 'expiry-test/1',
          workerTtlMs: 60_000,
          locationTtlMs: 3_600_000,
        }),
        transfer: createTransfer({ redis: connection, queues }),
        onMoved: () => {},
      });
      const token = parseJobId(job.jobId)?.token ?? '';
      assert.equal(await mover.move({ jobId: job.jobId, token, source, target, reason: 'stolen' }), 'moved');
    } finally {
      await queues.close();
      connection.disconnect();
    }
    const moved = await read(job.jobId);
    assert.deepEqual([moved.assignedWorker, moved.movedFrom, moved.state], [target, [source], 'waiting']);

    const view = await expiredView(job.jobId);
    assert.equal(view.assignedWorker, target);
    assert.equal(await queued(), 0, "the thief's reservation was released");
    assert.equal(await expiredCount(), counted + 1);
    await finish(gate, held);
    assert.deepEqual(await waiting.started(), []);
  });

  test('a job that started before its expiry runs to its end', async () => {
    const { service, redis } = suite;
    const gate = createGate(redis.client, redis.nodeUrl);
    const counted = await expiredCount();
    const job = await enqueueTask(service, { jobName: GATE_JOB, data: gate.data(), options: { expiresInMs: 500 } });
    await gate.waitStarted(1);
    // Its entry goes as it starts: nothing is left to expire.
    await waitFor(async () => (await redis.client.zscore(expiries(), job.jobId)) === null, {
      what: 'the entry of the started job to go',
    });
    const expiresAt = Date.parse((await read(job.jobId)).expiresAt ?? '');
    await sleep(Math.max(0, expiresAt - Date.now()) + 500);
    assert.equal((await read(job.jobId)).state, 'active', 'still running past its expiry');
    await gate.open();
    const [done] = await waitForJobs(service, [job]);
    assert.equal(done?.state, 'completed');
    assert.equal(await expiredCount(), counted);
    await waitForIdle(service);
  });

  test("the consumer's own check: an expired job the expirer never saw never runs", async () => {
    const { service, redis } = suite;
    const { gate, held, waiting, counted, job } = await behindBusySlots({ expiresInMs: 800 });
    // As if the expirer had not reached it (its entry lost): only the consumer's check is left.
    assert.equal(await redis.client.zrem(expiries(), job.jobId), 1);
    const expiresAt = Date.parse((await read(job.jobId)).expiresAt ?? '');
    await sleep(Math.max(0, expiresAt - Date.now()) + 300);
    assert.equal((await read(job.jobId)).state, 'waiting', 'nothing expired it in its queue');

    await finish(gate, held);
    await expiredView(job.jobId, true);
    assert.equal(await expiredCount(), counted + 1);
    assert.ok(logged(service.logs, 'job.expired', { jobId: job.jobId, by: 'consumer' }));
    assert.deepEqual(await waiting.started(), []);
    assert.equal(await queued(), 0);
  });

  test('a due delayed job past its expiry is not routed', async () => {
    const { service, redis } = suite;
    const waiting = await openGate(redis.client, redis.nodeUrl);
    const counted = await expiredCount();
    // As a delayed job whose routing was held up past its expiry leaves it (no live worker meanwhile).
    const jobId = jobIdFor(DELAYED_QUEUE, 'expiredwhiledue');
    const connection = redis.connect({ maxRetriesPerRequest: null });
    const queue = new Queue(queueNameFor(DELAYED_QUEUE), { connection, prefix: service.prefix });
    try {
      const opts: JobsOptions = { jobId, delay: 100, ...{ [EXPIRES_OPTION]: Date.now() - 1 } };
      await queue.add(GATE_JOB, waiting.data(), opts);
    } finally {
      await queue.close();
      connection.disconnect();
    }
    const view = await expiredView(jobId, true);
    assert.equal(view.assignedWorker, null, 'it was never routed');
    assert.equal(await expiredCount(), counted + 1);
    assert.ok(logged(service.logs, 'job.expired', { jobId, by: 'router' }));
    await waitForIdle(service);
    assert.deepEqual(await waiting.started(), []);
  });

  test('expiries that cannot be met are refused with 422 naming the field, and nothing is enqueued', async () => {
    const { service, redis } = suite;
    const entries = await redis.client.zcard(expiries());
    const index = await redis.client.zcard(ledgerKeys(service.prefix).index);
    const inAMinute = new Date(Date.now() + 60_000).toISOString();
    const task = (options: Record<string, unknown>) => ({ jobName: GATE_JOB, data: {}, options });
    const cases: [unknown, string, number, string, string][] = [
      [
        task({ expiresInMs: 60_000, expiresAt: inAMinute }),
        '/enqueue-task',
        422,
        'INVALID_EXPIRY',
        'options.expiresAt',
      ],
      [
        task({ expiresAt: new Date(Date.now() - 1_000).toISOString() }),
        '/enqueue-task',
        422,
        'INVALID_EXPIRY',
        'options.expiresAt',
      ],
      [
        task({ expiresAt: new Date(Date.now() + 31 * 86_400_000).toISOString() }),
        '/enqueue-task',
        422,
        'INVALID_EXPIRY',
        'options.expiresAt',
      ],
      [task({ expiresInMs: 60_000, delayMs: 60_000 }), '/enqueue-task', 422, 'INVALID_EXPIRY', 'options.delayMs'],
      [task({ expiresAt: inAMinute, delayMs: 120_000 }), '/enqueue-task', 422, 'INVALID_EXPIRY', 'options.delayMs'],
      [
        { tasks: [task({ expiresInMs: 60_000 }), task({ expiresInMs: 1_000, delayMs: 5_000 })] },
        '/enqueue-tasks',
        422,
        'INVALID_EXPIRY',
        'tasks.1.options.delayMs',
      ],
      // Each field alone must be well formed: that is the schema's 400, as for every option.
      [task({ expiresAt: '2030-01-01T00:00:00' }), '/enqueue-task', 400, 'VALIDATION_FAILED', 'options.expiresAt'],
      [task({ expiresInMs: 0 }), '/enqueue-task', 400, 'VALIDATION_FAILED', 'options.expiresInMs'],
    ];
    for (const [body, path, status, code, field] of cases) {
      const response = await service.request<ErrorBody>('POST', path, {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const what = `${JSON.stringify(body)}: ${response.text}`;
      assert.equal(response.status, status, what);
      assert.equal(response.body.code, code, what);
      assert.deepEqual(
        response.body.details?.map(({ path: named }) => named),
        [field],
        what,
      );
    }
    assert.equal(await redis.client.zcard(expiries()), entries, 'no expiry entry was written');
    assert.equal(await redis.client.zcard(ledgerKeys(service.prefix).index), index, 'no job was enqueued');
    assert.equal(await queued(), 0);
  });
});
