/**
 * POST /enqueue-tasks in-process against a real Redis (one server or a cluster,
 * test/support/test-redis.ts) with two live worker ids: the batch is placed least-loaded in one
 * reservation call and answered in request order; a batch with one bad item, an empty or oversized
 * batch, or one that would overflow MAX_BACKLOG is refused whole, with nothing enqueued or reserved;
 * and an Idempotency-Key covers the whole batch.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { startApp, type StartedApp } from '../support/in-process-app.js';
import { jobKeys, queuedTotal } from '../support/jobs.js';
import { joinWorkers } from '../support/ledger.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';

const logger = pino({ level: 'silent' });
const config = loadConfig({ QUEUE_PREFIX: 'bulk-test' });
const BULK_MAX = 12;
const MAX_BACKLOG = 20;

interface Answer {
  readonly message: string;
  readonly jobId: string;
  readonly jobName: string;
  readonly jobData: Record<string, unknown>;
  readonly assignedWorker: string;
}

interface Refusal {
  readonly code: string;
  readonly details?: { path: string; message: string }[];
}

let redis: ModeRedis;
let app: StartedApp;

async function post(body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${app.url}/enqueue-tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

const tasks = (count: number, from = 0) =>
  Array.from({ length: count }, (_, i) => ({ jobName: `bulk-${from + i}`, data: { i: from + i } }));

const jobCount = async () => (await jobKeys(redis.client, config.prefix)).length;
const queued = () => queuedTotal(redis.client, config.prefix);

describe('POST /enqueue-tasks', () => {
  before(async () => {
    redis = await startTestRedis();
    app = await startApp(redis.target, {
      prefix: config.prefix,
      logger,
      bulkMax: BULK_MAX,
      maxBacklog: MAX_BACKLOG,
      workerTtlMs: 60_000,
    });
    await joinWorkers(redis.client, config.prefix, ['bulk-0', 'bulk-1']);
  });

  after(async () => {
    await app?.close();
    await redis?.stop();
  });

  test('answers 202 with every task in request order, spread over the workers, each job in its queue', async () => {
    const sent = tasks(10);
    const response = await post({ tasks: sent });
    assert.equal(response.status, 202);
    const answers = (response.body as { tasks: Answer[] }).tasks;
    assert.equal(answers.length, 10);
    answers.forEach((answer, i) => {
      assert.equal(answer.jobName, sent[i]?.jobName);
      assert.deepEqual(answer.jobData, sent[i]?.data);
      assert.equal(answer.message, 'Task enqueued successfully');
      assert.ok(answer.jobId.startsWith(`${answer.assignedWorker}~`));
    });
    const perWorker = ['bulk-0', 'bulk-1'].map((id) => answers.filter((a) => a.assignedWorker === id).length);
    assert.ok(Math.abs((perWorker[0] ?? 0) - (perWorker[1] ?? 0)) <= 1, `spread ${perWorker.join('/')}`);
    for (const answer of answers) {
      const job = await app.queues.forWorker(answer.assignedWorker).getJob(answer.jobId);
      assert.equal(job?.name, answer.jobName);
      assert.deepEqual(job?.data, answer.jobData);
      assert.equal(job?.opts.attempts, config.jobAttempts);
    }
    assert.equal(await queued(), 10, 'one reservation per task');
  });

  test('one bad item refuses the batch with 400 naming the item, and enqueues or reserves nothing', async () => {
    const [jobsBefore, queuedBefore] = [await jobCount(), await queued()];
    const sent: unknown[] = tasks(8, 100);
    sent[5] = { jobName: 'bad name!', data: {} };
    const response = await post({ tasks: sent });
    assert.equal(response.status, 400);
    const refusal = response.body as Refusal;
    assert.equal(refusal.code, 'VALIDATION_FAILED');
    assert.ok(
      refusal.details?.some((detail) => detail.path === 'tasks.5.jobName'),
      JSON.stringify(refusal.details),
    );

    for (const body of [
      { tasks: [] },
      { tasks: tasks(BULK_MAX + 1, 200) },
      { tasks: tasks(1), extra: 1 },
      tasks(2),
      {},
    ]) {
      const refused = await post(body);
      assert.equal(refused.status, 400, JSON.stringify(body).slice(0, 80));
      assert.equal((refused.body as Refusal).code, 'VALIDATION_FAILED');
    }
    // Raw JSON: an object literal's __proto__ would set a prototype, not send a key.
    const deep = await post('{"tasks": [{"jobName": "deep", "data": {"a": {"b": {"__proto__": 1}}}}]}');
    assert.equal(deep.status, 400);
    assert.equal((deep.body as Refusal).details?.[0]?.path, 'tasks.0.data.a.b.__proto__');
    assert.equal((await post('{"tasks": [')).status, 400);
    const wrongType = await fetch(`${app.url}/enqueue-tasks`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: '{}',
    });
    assert.equal(wrongType.status, 415);
    assert.equal(await jobCount(), jobsBefore);
    assert.equal(await queued(), queuedBefore);
  });

  test('an Idempotency-Key covers the whole batch: a repeat replays it, another body is 422', async () => {
    const body = { tasks: tasks(3, 500) };
    const first = await post(body, { 'idempotency-key': 'batch-1' });
    assert.equal(first.status, 202);
    const jobsAfter = await jobCount();
    const again = await post(body, { 'idempotency-key': 'batch-1' });
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(again.body, first.body);
    assert.equal(await jobCount(), jobsAfter);
    const other = await post({ tasks: tasks(2, 600) }, { 'idempotency-key': 'batch-1' });
    assert.equal(other.status, 422);
    assert.equal(await jobCount(), jobsAfter);
  });
  test('a batch that would overflow MAX_BACKLOG is refused whole with 429, its reservations cancelled', async () => {
    const [jobsBefore, queuedBefore] = [await jobCount(), await queued()];
    const room = MAX_BACKLOG - queuedBefore;
    assert.ok(room > 0 && room < BULK_MAX, `room ${room}`);
    const response = await post({ tasks: tasks(room + 1, 300) });
    assert.equal(response.status, 429);
    assert.equal((response.body as Refusal).code, 'BACKLOG_FULL');
    assert.ok(Number(response.headers.get('retry-after')) >= 1);
    assert.equal(await jobCount(), jobsBefore);
    assert.equal(await queued(), queuedBefore, 'the part reserved before the limit was cancelled');
    const fits = await post({ tasks: tasks(room, 400) });
    assert.equal(fits.status, 202, 'a batch that fits exactly is accepted');
  });
});
