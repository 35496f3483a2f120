/**
 * The reconciler against a real Redis (one server or a cluster, test/support/test-redis.ts) and real
 * BullMQ queues: jobs a dead process left active are put back to waiting at once, ledger entries that
 * no longer match BullMQ are corrected, and a pass reads what can be wrong rather than every waiting
 * job, so that its cost does not grow with the backlog. The ledger judges reservations' ages by a
 * clock the test moves on (test/support/clock.ts).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Queue, Worker } from 'bullmq';
import { Cluster } from 'ioredis';
import { pino } from 'pino';
import { jobIdFor, queueNameFor } from '../../src/contracts/names.js';
import { createReconciler, type ReconcileReport, type ReconcilerOptions } from '../../src/ownership/reconciler.js';
import { createLedger, type Ledger } from '../../src/ledger/ledger.js';
import type { RedisClient } from '../../src/redis/connections.js';
import { joinAsWorker, placement } from '../support/ledger.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
import { testClock, type TestClock } from '../support/clock.js';

const WORKER = 'h-0';
const logger = pino({ level: 'silent' });
const GRACE_MS = 60_000;
/** More waiting jobs than a sweep page and a check batch, and enough for a hash Redis stores as a table. */
const BACKLOG = 3_000;
const SWEEP_PAGE = 200;

let redis: ModeRedis;
let connection: RedisClient;
let prefix: string;
let queue: Queue;
let scheduler: Ledger;
let running: Set<string>;
let clock: TestClock;

function reconcilerWith(options: Partial<ReconcilerOptions> = {}) {
  return createReconciler({
    workerId: WORKER,
    redis: connection,
    queue,
    ledger: scheduler,
    running,
    releasing: () => Promise.resolve(new Set()),
    graceMs: GRACE_MS,
    retention: { completed: { ageSeconds: 3600 }, failed: { ageSeconds: 3600 } },
    logger,
    ...options,
  });
}

async function reserve(): Promise<string> {
  const token = randomUUID();
  const outcome = await scheduler.reserve(token);
  assert.deepEqual(placement(outcome), { kind: 'reserved', workerId: WORKER });
  return token;
}

/** Reserves `count` slots and adds their jobs, as the dispatcher does: a backlog of waiting jobs. */
async function waitingJobs(count: number): Promise<string[]> {
  const tokens = Array.from({ length: count }, () => randomUUID());
  for (let i = 0; i < count; i += 500) {
    const chunk = tokens.slice(i, i + 500);
    const outcomes = await scheduler.reserveMany(chunk);
    assert.ok(outcomes.every((outcome) => outcome.kind === 'reserved'));
    await queue.addBulk(chunk.map((token) => ({ name: 'waits', data: {}, opts: { jobId: jobIdFor(WORKER, token) } })));
  }
  return tokens;
}

async function entry(token: string): Promise<string | null> {
  return connection.hget(scheduler.keys.jobs(WORKER), token);
}

async function queuedCount(): Promise<number> {
  return Number((await connection.hget(scheduler.keys.queued, WORKER)) ?? 0);
}

/** A consumer takes the next job and completes it, as a process would whose ledger update was lost. */
async function completeNext(expected: string, lockToken: string): Promise<void> {
  const consumer = new Worker(queueNameFor(WORKER), null, { connection, prefix, lockDuration: 60_000 });
  try {
    const job = await consumer.getNextJob(lockToken);
    assert.equal(job?.id, expected);
    await job.moveToCompleted('done', lockToken, false);
  } finally {
    await consumer.close(true);
  }
}

/** Commands every Redis node has run so far (on a cluster, the masters hold the keys). */
async function commandsProcessed(): Promise<number> {
  const nodes = connection instanceof Cluster ? connection.nodes('master') : [connection];
  const stats = await Promise.all(nodes.map((node) => node.info('stats')));
  return stats.reduce((sum, text) => sum + Number(/total_commands_processed:(\d+)/.exec(text)?.[1] ?? 0), 0);
}

/** A pass, with the commands Redis ran for it (less the INFO of the count itself, one per node). */
async function countedPass(
  reconciler: ReturnType<typeof createReconciler>,
): Promise<{ report: ReconcileReport; commands: number }> {
  const nodes = connection instanceof Cluster ? connection.nodes('master').length : 1;
  const before = await commandsProcessed();
  const report = await reconciler.reconcile();
  return { report, commands: (await commandsProcessed()) - before - nodes };
}

describe('reconciler', () => {
  before(async () => {
    redis = await startTestRedis();
    connection = redis.connect({ maxRetriesPerRequest: null });
  });
  after(async () => {
    await queue?.close();
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
  });

  test('jobs left active by a dead process go back to waiting, with their locks removed', async () => {
    const reconciler = reconcilerWith();
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
    const reconciler = reconcilerWith();
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
    const reconciler = reconcilerWith();
    const never = await reserve();
    const finished = await reserve();
    const waiting = await reserve();
    await queue.add('done', {}, { jobId: jobIdFor(WORKER, finished) });
    await queue.add('waits', {}, { jobId: jobIdFor(WORKER, waiting) });
    await completeNext(jobIdFor(WORKER, finished), 'finisher');

    assert.equal((await reconciler.reconcile()).released, 0, 'nothing is released within the grace period');
    clock.advance(GRACE_MS);
    assert.equal((await reconciler.reconcile()).released, 0, 'nor at its very end');
    clock.advance(1);
    const report = await reconciler.reconcile();
    assert.equal(report.released, 2);
    assert.equal(report.checked, 3, 'each unconfirmed reservation is checked once');
    assert.equal(await entry(never), null);
    assert.equal(await entry(finished), null);
    assert.match((await entry(waiting)) ?? '', /^q\|/);
    assert.deepEqual(await connection.hgetall(scheduler.keys.queued), { [WORKER]: '1' });
    assert.equal((await reconciler.reconcile()).checked, 0, 'a confirmed reservation is not checked again');
  });

  test('an entry left running after its job finished (the end was lost) is requeued, then released', async () => {
    const reconciler = reconcilerWith();
    const token = await reserve();
    const jobId = jobIdFor(WORKER, token);
    await queue.add('ran', {}, { jobId });
    await scheduler.markStarted(WORKER, token);
    await completeNext(jobId, 'lost-end');
    clock.advance(GRACE_MS + 1);

    const report = await reconciler.reconcile();
    assert.equal(report.requeued, 1);
    assert.equal(report.released, 1, 'checked in the same pass, once requeued');
    assert.equal(await entry(token), null);
    assert.deepEqual(await connection.hgetall(scheduler.keys.active), { [WORKER]: '0' });
    assert.equal(await queuedCount(), 0);
  });

  test('an entry marked running by an older version, listed nowhere, is found after the start-up recount', async () => {
    const reconciler = reconcilerWith();
    const token = await reserve();
    await queue.add('old', {}, { jobId: jobIdFor(WORKER, token) });
    await scheduler.markStarted(WORKER, token);
    await connection.del(scheduler.keys.running(WORKER));
    assert.equal(await scheduler.recount(WORKER), 1);
    const report = await reconciler.reconcile();
    assert.equal(report.requeued, 1);
    assert.match((await entry(token)) ?? '', /^q\|/);
  });

  test('with thousands of waiting jobs, a pass reads a bounded page of them, at a cost that does not grow', async () => {
    const reconciler = reconcilerWith({ sweepPerPass: SWEEP_PAGE, unconfirmedPerPass: 1_000 });
    await waitingJobs(BACKLOG);
    clock.advance(GRACE_MS + 1);
    // Each reservation is checked once, a budget per pass: three passes confirm them all.
    const checks: number[] = [];
    for (let pass = 0; pass < 4; pass += 1) checks.push((await reconciler.reconcile()).checked);
    assert.deepEqual(checks, [1_000, 1_000, 1_000, 0]);

    const idle = await countedPass(reconciler);
    assert.equal(idle.report.checked, 0);
    assert.equal(idle.report.released + idle.report.requeued, 0, 'waiting jobs keep their reservations');
    assert.ok(idle.report.swept > 0 && idle.report.swept <= 2 * SWEEP_PAGE, `swept ${idle.report.swept}`);
    // The time, the running list, the unconfirmed ones, one page, one check of it, two cleans.
    assert.ok(idle.commands <= 40, `a pass ran ${idle.commands} commands`);

    // Ten times the backlog, and the pass costs the same.
    await waitingJobs(9 * BACKLOG);
    clock.advance(GRACE_MS + 1);
    for (let pass = 0; pass <= 27; pass += 1) if ((await reconciler.reconcile()).checked === 0) break;
    const larger = await countedPass(reconciler);
    assert.equal(larger.report.checked, 0);
    assert.ok(larger.report.swept <= 2 * SWEEP_PAGE, `swept ${larger.report.swept}`);
    assert.ok(larger.commands <= idle.commands + 3, `${larger.commands} commands against ${idle.commands}`);
    assert.equal(await queuedCount(), 10 * BACKLOG);
  });

  test('the sweep finds, within one full pass, a waiting reservation whose job went without its release', async () => {
    const reconciler = reconcilerWith({ sweepPerPass: SWEEP_PAGE });
    const tokens = await waitingJobs(1_200);
    clock.advance(GRACE_MS + 1);
    assert.equal((await reconciler.reconcile()).checked, 1_200);
    // Removed from BullMQ after it was confirmed, its release lost (a cancel cut off from Redis).
    const gone = tokens[700] ?? '';
    await queue.remove(jobIdFor(WORKER, gone));

    let released = 0;
    let ends = 0;
    for (let pass = 0; pass < 100 && ends < 2; pass += 1) {
      const report = await reconciler.reconcile();
      released += report.released;
      if (report.sweepEnded) ends += 1;
    }
    assert.equal(ends, 2, 'the sweep went round');
    assert.equal(released, 1);
    assert.equal(await entry(gone), null);
    assert.equal(await queuedCount(), 1_199);
    assert.equal(await connection.hlen(scheduler.keys.jobs(WORKER)), 1_199);
  });
});
