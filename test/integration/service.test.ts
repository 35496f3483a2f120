/**
 * The whole service as users run it: a primary with 4 worker processes at concurrency 8, a real
 * redis-server or Redis Cluster (test/support/test-redis.ts), real HTTP. One cluster of processes
 * serves every test in this file; each test enqueues its own jobs and leaves it idle, so none
 * depends on another's leftovers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGate, FIXTURE_HANDLERS, GATE_JOB } from '../support/gate.js';
import { peakOverlap } from '../support/intervals.js';
import { jobKeys, reservationsLeft } from '../support/jobs.js';
import { lineOf, logged } from '../support/log-lines.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
import { startService, type Service } from '../support/service.js';
import { waitFor } from '../support/wait.js';
import { readEvents } from '../support/sse.js';

const WORKERS = 4;
const CONCURRENCY = 8;
const DURATION_MS = 1_500;
const RETENTION_SECONDS = 6;

interface EnqueueBody {
  readonly message: string;
  readonly jobId: string;
  readonly jobName: string;
  readonly jobData: Record<string, unknown>;
  readonly assignedWorker: string;
}

interface JobBody {
  readonly jobId: string;
  readonly state: string;
  readonly assignedWorker: string;
  readonly progress: unknown;
  readonly result: { threadId?: number; durationMs?: number; messages?: number; elapsedMs?: number } | null;
  readonly attemptsMade: number;
  readonly timestamps: { enqueuedAt: string | null; startedAt: string | null; finishedAt: string | null };
}

interface GroupBody {
  readonly waiting: number;
  readonly running: number;
}

interface ErrorBody {
  readonly error: string;
  readonly code: string;
  readonly details?: readonly { path: string; message: string }[];
}

let redis: ModeRedis;
let service: Service;

describe('the cluster', () => {
  before(async () => {
    redis = await startTestRedis();
    service = await startService({
      ...redis.serviceOptions,
      workers: WORKERS,
      env: {
        WORKER_CONCURRENCY: String(CONCURRENCY),
        TASK_DURATION_MS: String(DURATION_MS),
        // For `chatty` and `gate`; every other job name here runs the built-in dummy, as with the default folder.
        HANDLERS_DIR: FIXTURE_HANDLERS,
        COMPLETED_RETENTION_SECONDS: String(RETENTION_SECONDS),
        RECONCILE_INTERVAL_MS: '500',
        // Per-job lines (enqueued, started, completed) are debug since they left the hot path.
        LOG_LEVEL: 'debug',
      },
    });
  });

  after(async () => {
    const code = await service?.stop();
    await redis?.stop();
    assert.equal(code, 0, 'the primary exits 0 on SIGTERM');
  });

  test('starts 4 live workers with stable, distinct ids and the configured concurrency', async () => {
    const state = await service.workers();
    assert.deepEqual(
      state.workers.map((worker) => worker.id),
      ['test-0', 'test-1', 'test-2', 'test-3'],
    );
    assert.equal(new Set(state.workers.map((worker) => worker.pid)).size, WORKERS);
    assert.ok(state.workers.every((worker) => worker.alive && worker.concurrency === CONCURRENCY));
    assert.equal(state.totals.capacity, WORKERS * CONCURRENCY);
    for (const worker of state.workers) {
      assert.equal(worker.lease?.holderPid, worker.pid, `${worker.id} is owned by its own process`);
      assert.equal(worker.lease.retiring, false);
      assert.ok(
        worker.lease.expiresInMs > 0 && Date.parse(worker.lease.expiresAt) > Date.now() - 1_000,
        'the lease is live',
      );
    }
    const health = await service.request<{ status: string }>('GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'ok');
  });

  test('64 concurrent enqueues spread 16 per worker, run at most 8 per worker and 32 in all, all complete, and the counters return to 0', async () => {
    // Gate jobs hold their slots until every enqueue is in, so "all 32 slots busy" is a state the test
    // waits for, not a race between the spread of 64 requests on a loaded machine and a job's length.
    const gate = createGate(redis.client, redis.nodeUrl);
    const responses = await Promise.all(
      Array.from({ length: 64 }, (_, i) => service.enqueue<EnqueueBody>({ jobName: GATE_JOB, data: gate.data({ i }) })),
    );
    for (const [i, response] of responses.entries()) {
      assert.equal(response.status, 202, response.text);
      assert.equal(response.body.message, 'Task enqueued successfully');
      assert.equal(response.body.jobName, GATE_JOB);
      assert.deepEqual(response.body.jobData, gate.data({ i }));
      assert.match(response.body.assignedWorker, /^test-[0-3]$/);
      assert.equal(response.headers.get('location'), `/jobs/${encodeURIComponent(response.body.jobId)}`);
    }
    const perWorker = new Map<string, number>();
    for (const { body } of responses) perWorker.set(body.assignedWorker, (perWorker.get(body.assignedWorker) ?? 0) + 1);
    assert.deepEqual([...perWorker.entries()].sort(), [
      ['test-0', 16],
      ['test-1', 16],
      ['test-2', 16],
      ['test-3', 16],
    ]);

    try {
      // What the ledger says with every slot held: 8 running on each worker, and the other 32 held
      // for their turn in the pool's line (README, Fair share), not queued on a worker.
      await gate.waitStarted(32);
      const full = await waitFor(
        async () => {
          const current = await service.workers();
          return current.totals.active === 32 ? current : undefined;
        },
        { what: 'the ledger to count 32 running' },
      );
      assert.equal(full.totals.queued, 0);
      for (const worker of full.workers) assert.equal(worker.active, CONCURRENCY, worker.id);
      const line = await service.request<GroupBody>('GET', '/groups/default');
      assert.deepEqual([line.body.waiting, line.body.running], [32, 32]);
      // A while later still no 33rd start: the held slots are all there is.
      await sleep(500);
      assert.equal((await gate.started()).length, 32);
      assert.equal((await service.workers()).totals.active, 32);
    } finally {
      // Open whatever happened above, so a failure here leaves the pool free for the tests after it.
      await gate.open();
    }
    const jobs = await waitFor(
      async () => {
        const views = await Promise.all(
          responses.map(({ body }) => service.request<JobBody>('GET', `/jobs/${body.jobId}`)),
        );
        return views.every((view) => view.body.state === 'completed') ? views.map((view) => view.body) : undefined;
      },
      { timeoutMs: 60_000, what: 'all 64 jobs to complete' },
    );

    // What really ran, from BullMQ's own start and finish times: an independent check of the ledger.
    for (const job of jobs) assert.equal(job.attemptsMade, 1);
    const interval = (job: JobBody): [number, number] => [
      Date.parse(job.timestamps.startedAt ?? ''),
      Date.parse(job.timestamps.finishedAt ?? ''),
    ];
    assert.equal(peakOverlap(jobs.map(interval)), 32);
    for (const id of perWorker.keys()) {
      assert.equal(peakOverlap(jobs.filter((job) => job.assignedWorker === id).map(interval)), CONCURRENCY);
    }

    // And the load counters return to exactly 0.
    const state = await waitFor(
      async () => {
        const current = await service.workers();
        return current.totals.active === 0 && current.totals.queued === 0 ? current : undefined;
      },
      { what: 'counters to drain' },
    );
    assert.ok(state.workers.every((worker) => worker.active === 0 && worker.queued === 0));
    assert.equal(await reservationsLeft(redis.client, service.prefix), 0, 'no reservation is left behind');
  });

  test('completed jobs are removed after their retention', async () => {
    const response = await service.enqueue<EnqueueBody>({ jobName: 'kept-a-while', data: { durationMs: 0 } });
    assert.equal(response.status, 202);
    const path = `/jobs/${response.body.jobId}`;
    await waitFor(async () => (await service.request<JobBody>('GET', path)).body.state === 'completed');
    const key = (await jobKeys(redis.client, service.prefix)).find((candidate) =>
      candidate.endsWith(`:${response.body.jobId}`),
    );
    assert.ok(key, 'the completed job is kept for a while');
    await waitFor(async () => (await redis.client.exists(key)) === 0, {
      timeoutMs: (RETENTION_SECONDS + 20) * 1_000,
      what: 'the completed job to be cleaned',
    });
    assert.equal((await service.request('GET', path)).status, 404);
  });

  test('bad input gets a JSON error and the process keeps serving', async () => {
    // The whole table of bad bodies runs in-process (http-bad-input.test.ts); here, the real cluster.
    const refused = await service.request<ErrorBody>('POST', '/enqueue-task', {
      body: '{"jobName": "x",',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.code, 'MALFORMED_JSON');
    const response = await service.enqueue<EnqueueBody>({ jobName: 'after-bad-input', data: { durationMs: 0 } });
    assert.equal(response.status, 202);
    await waitFor(
      async () => (await service.request<JobBody>('GET', `/jobs/${response.body.jobId}`)).body.state === 'completed',
    );
  });

  test('unknown jobs and routes answer 404 JSON', async () => {
    for (const path of [
      '/jobs/test-0~00000000-0000-0000-0000-000000000000',
      '/jobs/nope~abc',
      '/jobs/garbage',
      '/no-such-route',
    ]) {
      const response = await service.request<ErrorBody>('GET', path);
      assert.equal(response.status, 404, path);
      assert.equal(response.body.code, 'NOT_FOUND');
    }
  });

  test('a long job shows increasing progress while it runs (coalesced), and 100 when done', async () => {
    // The dummy reports every 10%; with the default PROGRESS_INTERVAL_MS (1 s) a 4 s job is written
    // about every second, so a reader sees several values on the way, each newer than the last.
    const response = await service.enqueue<EnqueueBody>({ jobName: 'watched', data: { durationMs: 4_000 } });
    const seen: number[] = [];
    const done = await waitFor(
      async () => {
        const view = await service.request<JobBody>('GET', `/jobs/${response.body.jobId}`);
        if (view.body.state === 'active') {
          assert.equal(view.body.assignedWorker, response.body.assignedWorker);
          assert.equal(view.body.timestamps.finishedAt, null);
          const progress = view.body.progress;
          if (typeof progress === 'number' && progress > 0 && progress !== seen.at(-1)) seen.push(progress);
        }
        return view.body.state === 'completed' ? view.body : undefined;
      },
      { intervalMs: 50, what: 'the job to complete' },
    );
    assert.ok(seen.length >= 2, `progress seen while running: ${JSON.stringify(seen)}`);
    assert.ok(
      seen.every((value, i) => value < 100 && (i === 0 || value > (seen[i - 1] ?? 0))),
      `increasing, and short of 100 while running: ${JSON.stringify(seen)}`,
    );
    assert.equal(done.progress, 100);
    assert.equal(done.result?.durationMs, 4_000);
    assert.ok((done.result?.threadId ?? 0) >= 1, 'the body ran in a worker thread');
  });

  test('a job reporting 1,000 times sends at most one message per interval, and its last value is saved', async () => {
    // The default PROGRESS_INTERVAL_MS (1 s): spread over 1.5 s, the reports cross the interval at
    // least once. Sends are at least an interval apart, counted from the run's start (a little
    // before the body's), so a body that ran for e.g. 1.6 s sent at most 2 messages.
    const response = await service.enqueue<EnqueueBody>({ jobName: 'chatty', data: { reports: 1_000, spanMs: 1_500 } });
    const done = await waitFor(
      async () => {
        const view = await service.request<JobBody>('GET', `/jobs/${response.body.jobId}`);
        return view.body.state === 'completed' ? view.body : undefined;
      },
      { intervalMs: 100, what: 'the chatty job to complete' },
    );
    const { messages = Number.NaN, elapsedMs = 0 } = done.result ?? {};
    assert.ok(messages >= 1, `the reports after the first interval went out: ${messages} messages`);
    assert.ok(
      messages <= Math.floor(elapsedMs / 1_000) + 1,
      `${messages} messages in ${elapsedMs} ms: at most one per interval`,
    );
    assert.equal(done.progress, 100, 'the last value reported, held back by the thread, is saved');
  });

  test('concurrent requests with one Idempotency-Key, spread over the processes, create one job', async () => {
    const task = JSON.stringify({ jobName: 'idempotent', data: { durationMs: 10 } });
    const answers = await Promise.all(
      Array.from({ length: 16 }, () =>
        service.request<EnqueueBody>('POST', '/enqueue-task', {
          body: task,
          // A fresh connection each, so that the kernel hands them to different worker processes.
          headers: { 'content-type': 'application/json', 'idempotency-key': 'cluster-once', connection: 'close' },
        }),
      ),
    );
    const statuses = answers.map((answer) => answer.status);
    assert.equal(statuses.filter((status) => status === 202).length, 1, `statuses ${statuses.join(',')}`);
    assert.equal(statuses.filter((status) => status === 200).length, 15);
    assert.equal(new Set(answers.map((answer) => answer.body.jobId)).size, 1);
    const jobId = answers[0]?.body.jobId ?? '';
    await waitFor(async () => (await service.request<JobBody>('GET', `/jobs/${jobId}`)).body.state === 'completed');
  });

  test('GET /jobs/:id/events streams state, progress and a final completed event, then closes', async () => {
    const { body: job } = await service.enqueue<EnqueueBody>({ jobName: 'streamed', data: { durationMs: 2_500 } });
    const stream = await readEvents(`${service.url}/jobs/${job.jobId}/events`);
    assert.equal(stream.status, 200);
    assert.match(stream.contentType ?? '', /^text\/event-stream/);
    const names = stream.events.map((event) => event.event);
    assert.ok(names.includes('state'), names.join(','));
    assert.ok(names.includes('progress'), names.join(','));
    assert.equal(names.at(-1), 'completed', 'the final event comes last, and the stream closes after it');
    const final = stream.events.at(-1)?.data as JobBody;
    assert.equal(final.jobId, job.jobId);
    assert.equal(final.state, 'completed');
    assert.equal(final.progress, 100);
    const states = stream.events
      .filter((event) => event.event === 'state')
      .map((event) => (event.data as { state: string }).state);
    assert.equal(states.at(-1), 'completed');
    assert.ok(states.includes('active'), states.join(','));

    // A job that has already ended gets its final event at once.
    const again = await readEvents(`${service.url}/jobs/${job.jobId}/events`);
    assert.deepEqual(
      again.events.map((event) => event.event),
      ['state', 'progress', 'completed'],
    );
    const unknown = await service.request<{ code: string }>('GET', '/jobs/test-0~nope/events');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.code, 'NOT_FOUND');
  });

  test('logs enqueue, start and completion with worker and job ids', async () => {
    const response = await service.enqueue<EnqueueBody>({ jobName: 'logged', data: { durationMs: 10 } });
    const { jobId, assignedWorker } = response.body;
    await waitFor(() => logged(service.logs, 'job.completed', { jobId }), { what: 'the completion line' });
    const enqueued = lineOf(service.logs, 'task.enqueued', { jobId });
    assert.equal(typeof enqueued?.workerId, 'string', 'the enqueue names the process that took it');
    assert.equal(enqueued?.assignedWorker, assignedWorker);
    assert.ok(logged(service.logs, 'job.started', { jobId, workerId: assignedWorker }));
    assert.ok(logged(service.logs, 'job.completed', { jobId, workerId: assignedWorker }));
  });
});
