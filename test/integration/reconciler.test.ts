/**
 * The reconciler against a real Redis and real BullMQ queues: jobs a dead process left active are
 * put back to waiting at once, and ledger entries that no longer match BullMQ are corrected. The
 * ledger judges reservations' ages by a clock the test moves on (test/support/clock.ts).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { jobIdFor, queueNameFor } from '../../src/contracts/names.js';
import { createReconciler, type Reconciler } from '../../src/ownership/reconciler.js';
import { createLedger, type Ledger } from '../../src/ledger/ledger.js';
import { joinAsWorker, placement } from '../support/ledger.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { testClock, type TestClock } from '../support/clock.js';

const WORKER = 'h-0';
const logger = pino({ level: 'silent' });
const GRACE_MS = 60_000;

let redis: TestRedis;
let connection: Redis;
let prefix: string;
let queue: Queue;
let scheduler: Ledger;
let running: Set<string>;
let reconciler: Reconciler;
let clock: TestClock;

async function reserve(): Promise<string> {
  const token = randomUUID();
  const outcome = await scheduler.reserve(token);
  assert.deepEqual(placement(outcome), { kind: 'reserved', workerId: WORKER });
  return token;
}

async function entry(token: string): Promise<string | null> {
  return connection.hget(scheduler.keys.jobs(WORKER), token);
}

describe('reconciler', () => {
  before(async () => {
    redis = await startRedis();
    connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  });
  after(async () => {
    connection.disconnect();
    await redis.stop();
  });
  beforeEach(async () => {
    prefix = `r${randomUUID().slice(0, 8)}`;
    await queue?.close();
    queue = new Queue(queueNameFor(WORKER), { connection, prefix });
    clock = testClock();
    scheduler = createLedger({ redis: connection, prefix, workerTtlMs: 60_000, clock: clock.now });
    await joinAsWorker(connection, prefix, { id: WORKER, hostId: 'h', pid: 1, concurrency: 4, startedAt: Date.now() });
    running = new Set();
    reconciler = createReconciler({
      workerId: WORKER,
      redis: connection,
      queue,
      ledger: scheduler,
      running,
      graceMs: GRACE_MS,
      retention: { completed: { ageSeconds: 3600 }, failed: { ageSeconds: 3600 } },
      logger,
    });
  });

  test('jobs left active by a dead process go back to waiting, with their locks removed', async () => {
    const token = await reserve();
    const jobId = jobIdFor(WORKER, token);
    await queue.add('orphan', {}, { jobId });
    // A consumer takes the job, then "dies" without finishing it.
    const dead = new Worker(queueNameFor(WORKER), null, { connection, prefix, lockDuration: 60_000 });
    const taken = await dead.getNextJob('dead-token');
    assert.equal(taken?.id, jobId);
    await scheduler.markStarted(WORKER, token);
    assert.equal(await queue.getJobState(jobId), 'active');

    assert.equal(await reconciler.recoverOrphans(), 1);
    assert.equal(await queue.getJobState(jobId), 'waiting');
    assert.equal(await connection.exists(`${queue.toKey(jobId)}:lock`), 0, 'the dead lock is gone');
    const report = await reconciler.reconcile();
    assert.equal(report.requeued, 1);
    assert.match((await entry(token)) ?? '', /^q\|/);
    await dead.close(true);
  });

  test('an entry marked running that this process is not running is requeued; a running one is left alone', async () => {
    const [orphaned, alive] = [await reserve(), await reserve()];
    await scheduler.markStarted(WORKER, orphaned);
    await scheduler.markStarted(WORKER, alive);
    running.add(alive);
    const report = await reconciler.reconcile();
    assert.equal(report.requeued, 1);
    assert.match((await entry(orphaned)) ?? '', /^q\|/);
    assert.match((await entry(alive)) ?? '', /^a\|/);
  });

  test('old reservations without a job, or whose job finished, are released; young and waiting ones stay', async () => {
    const never = await reserve();
    const finished = await reserve();
    const waiting = await reserve();
    await queue.add('done', {}, { jobId: jobIdFor(WORKER, finished) });
    await queue.add('waits', {}, { jobId: jobIdFor(WORKER, waiting) });
    await connection.hset(queue.toKey(jobIdFor(WORKER, finished)), 'finishedOn', Date.now());

    assert.equal((await reconciler.reconcile()).released, 0, 'nothing is released within the grace period');
    clock.advance(GRACE_MS);
    assert.equal((await reconciler.reconcile()).released, 0, 'nor at its very end');
    clock.advance(1);
    const report = await reconciler.reconcile();
    assert.equal(report.released, 2);
    assert.equal(await entry(never), null);
    assert.equal(await entry(finished), null);
    assert.match((await entry(waiting)) ?? '', /^q\|/);
    assert.deepEqual(await connection.hgetall(scheduler.keys.queued), { [WORKER]: '1' });
  });
});
