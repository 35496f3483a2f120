/**
 * The move protocol against a real Redis and real BullMQ queues, in one process: a waiting job moves
 * with its reservation and attempts, a started job does not move, two movers of one job move it
 * once, a move abandoned after any step (as by a kill -9) is finished by another process's recovery,
 * and a steal racing the source's own consumer runs every job exactly once.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createLedger, type Ledger } from '../../src/ledger/ledger.js';
import { createMoveLedger, type MoveLedger } from '../../src/ledger/moves.js';
import { createMover, type Mover, type MoveStep } from '../../src/ownership/mover.js';
import { MOVE_STEPS } from '../../src/ownership/move-steps.js';
import { jobIdFor, parseJobId, queueNameFor } from '../../src/contracts/names.js';
import { createQueueRegistry, type QueueRegistry } from '../../src/queue/queues.js';
import { createTransfer, type Transfer } from '../../src/queue/transfer.js';
import { joinAsWorker, placement } from '../support/ledger.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { waitFor } from '../support/wait.js';

const TTL_MS = 60_000;
const STEPS = MOVE_STEPS.filter((step) => step !== 'committed');

class Crash extends Error {}

let redis: TestRedis;
let connection: Redis;
let prefix: string;
let ledger: Ledger;
let queues: QueueRegistry;
let transfer: Transfer;

function moveLedgerOf(executor: string): MoveLedger {
  return createMoveLedger({
    redis: connection,
    prefix,
    workerId: executor,
    owner: `${executor}-owner/1`,
    workerTtlMs: TTL_MS,
    locationTtlMs: 3_600_000,
  });
}

function moverOf(executor: string, options: { crashAfter?: MoveStep; moved?: string[] } = {}): Mover {
  return createMover({
    ledger: moveLedgerOf(executor),
    transfer,
    onMoved: (reason) => options.moved?.push(reason),
    afterStep: (step) => {
      if (step === options.crashAfter) throw new Crash(`crashed after ${step}`);
    },
  });
}

/** Reserves on `worker` (the only live one at that moment) and adds the job to its queue. */
async function enqueueOn(
  worker: string,
  data: Record<string, unknown> = {},
  delay = 0,
): Promise<{ jobId: string; token: string }> {
  const token = randomUUID();
  const outcome = await ledger.reserve(token);
  assert.deepEqual(placement(outcome), { kind: 'reserved', workerId: worker });
  const jobId = jobIdFor(worker, token);
  await queues.forWorker(worker).add('moved', data, { jobId, attempts: 3, delay });
  return { jobId, token };
}

async function entries(worker: string): Promise<Record<string, string>> {
  return connection.hgetall(ledger.keys.jobs(worker));
}

async function counts(): Promise<{ queued: Record<string, string>; active: Record<string, string> }> {
  return { queued: await connection.hgetall(ledger.keys.queued), active: await connection.hgetall(ledger.keys.active) };
}

describe('moving a job between worker queues', () => {
  before(async () => {
    redis = await startRedis();
    connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  });
  after(async () => {
    await queues?.close();
    connection.disconnect();
    await redis.stop();
  });
  beforeEach(async () => {
    await queues?.close();
    prefix = `m${randomUUID().slice(0, 8)}`;
    ledger = createLedger({ redis: connection, prefix, workerTtlMs: TTL_MS });
    queues = createQueueRegistry({ connection, prefix });
    transfer = createTransfer({ redis: connection, queues });
    await joinAsWorker(
      connection,
      prefix,
      { id: 'src', hostId: 'h', pid: 1, concurrency: 1, startedAt: Date.now() },
      TTL_MS,
    );
  });

  test('a waiting job moves with its reservation; its id still finds it, with where it came from', async () => {
    const { jobId, token } = await enqueueOn('src', { n: 1 });
    await joinAsWorker(
      connection,
      prefix,
      { id: 'dst', hostId: 'h', pid: 2, concurrency: 1, startedAt: Date.now() },
      TTL_MS,
    );
    const moved: string[] = [];
    const outcome = await moverOf('dst', { moved }).move({
      jobId,
      token,
      source: 'src',
      target: 'dst',
      reason: 'stolen',
    });
    assert.equal(outcome, 'moved');
    assert.deepEqual(moved, ['stolen']);
    assert.equal(await queues.forWorker('src').getJob(jobId), undefined, 'the source copy is gone');
    const there = await queues.forWorker('dst').getJob(jobId);
    assert.deepEqual(there?.data, { n: 1 });
    assert.equal(there?.opts.attempts, 3);
    assert.equal(await queues.forWorker('dst').getJobState(jobId), 'waiting');
    assert.deepEqual(await entries('src'), {});
    assert.match((await entries('dst'))[token] ?? '', /^q\|\d+\|src$/);
    assert.deepEqual(await counts(), { queued: { src: '0', dst: '1' }, active: {} });
    // Its job is not yet seen in the target queue when the reservation shifts: unconfirmed there.
    assert.deepEqual(await connection.zrange(ledger.keys.unconfirmed('src'), 0, -1), []);
    assert.deepEqual(await connection.zrange(ledger.keys.unconfirmed('dst'), 0, -1), [token]);
    assert.deepEqual(await moveLedgerOf('dst').location(token), { current: 'dst', movedFrom: ['src'] });
    assert.equal(await connection.hlen(ledger.keys.moves), 0, 'no intent is left');
    const found: string[] = [];
    for await (const reservation of ledger.reservations('dst')) found.push(reservation.jobId);
    assert.deepEqual(found, [jobId], 'the target finds the job under its original id');
  });

  test('without a target, the least-loaded live worker other than the source is chosen', async () => {
    const jobs = [await enqueueOn('src'), await enqueueOn('src'), await enqueueOn('src')];
    for (const id of ['a', 'b'])
      await joinAsWorker(
        connection,
        prefix,
        { id, hostId: 'h', pid: 3, concurrency: 1, startedAt: Date.now() },
        TTL_MS,
      );
    const mover = moverOf('a');
    for (const { jobId, token } of jobs)
      assert.equal(await mover.move({ jobId, token, source: 'src', target: undefined, reason: 'retired' }), 'moved');
    const { queued } = await counts();
    assert.deepEqual([Number(queued.a), Number(queued.b), Number(queued.src)].sort(), [0, 1, 2]);
    assert.equal(Number(queued.a) + Number(queued.b), 3);
  });

  test('a job its consumer already started does not move, and the ledger is left as it was', async () => {
    const { jobId, token } = await enqueueOn('src');
    await joinAsWorker(
      connection,
      prefix,
      { id: 'dst', hostId: 'h', pid: 2, concurrency: 1, startedAt: Date.now() },
      TTL_MS,
    );
    const consumer = new Worker(queueNameFor('src'), null, { connection, prefix, lockDuration: 60_000 });
    const taken = await consumer.getNextJob('consumer-token');
    assert.equal(taken?.id, jobId);
    const before = { entries: await entries('src'), counts: await counts() };
    assert.equal(
      await moverOf('dst').move({ jobId, token, source: 'src', target: 'dst', reason: 'stolen' }),
      'not-movable',
    );
    assert.deepEqual({ entries: await entries('src'), counts: await counts() }, before);
    assert.equal(await queues.forWorker('src').getJobState(jobId), 'active');
    assert.equal(await queues.forWorker('dst').getJob(jobId), undefined);
    assert.equal(await connection.hlen(ledger.keys.moves), 0);
    await consumer.close(true);
  });

  test('two movers of the same job: exactly one moves it', async () => {
    const { jobId, token } = await enqueueOn('src');
    for (const id of ['a', 'b'])
      await joinAsWorker(
        connection,
        prefix,
        { id, hostId: 'h', pid: 3, concurrency: 1, startedAt: Date.now() },
        TTL_MS,
      );
    const outcomes = await Promise.all([
      moverOf('a').move({ jobId, token, source: 'src', target: 'a', reason: 'stolen' }),
      moverOf('b').move({ jobId, token, source: 'src', target: 'b', reason: 'stolen' }),
    ]);
    assert.equal(outcomes.filter((outcome) => outcome === 'moved').length, 1, outcomes.join(', '));
    const holders = await Promise.all(
      ['src', 'a', 'b'].map(async (id) => ((await queues.forWorker(id).getJob(jobId)) ? id : undefined)),
    );
    assert.equal(holders.filter(Boolean).length, 1, 'the job is in exactly one queue');
  });

  for (const step of STEPS) {
    test(`a move abandoned after "${step}" is finished by another process, once`, async () => {
      const { jobId, token } = await enqueueOn('src', { step });
      await joinAsWorker(
        connection,
        prefix,
        { id: 'dst', hostId: 'h', pid: 2, concurrency: 1, startedAt: Date.now() },
        TTL_MS,
      );
      await assert.rejects(
        moverOf('dst', { crashAfter: step }).move({ jobId, token, source: 'src', target: 'dst', reason: 'stolen' }),
        Crash,
      );
      assert.equal(await connection.hlen(ledger.keys.moves), 1, 'the intent survives the crash');

      const moved: string[] = [];
      assert.equal(await moverOf('rescuer', { moved }).recover(), 1);
      assert.deepEqual(moved, ['stolen']);
      assert.equal(await queues.forWorker('src').getJob(jobId), undefined);
      assert.equal(await queues.forWorker('dst').getJobState(jobId), 'waiting');
      assert.deepEqual(await entries('src'), {});
      assert.deepEqual(Object.keys(await entries('dst')), [token]);
      assert.deepEqual(await counts(), { queued: { src: '0', dst: '1' }, active: {} });
      assert.equal(await connection.hlen(ledger.keys.moves), 0);
      assert.equal(await moverOf('rescuer').recover(), 0, 'a second recovery finds nothing to do');
    });
  }

  test('a move whose executor still holds its lease is not adopted', async () => {
    const { jobId, token } = await enqueueOn('src');
    await joinAsWorker(
      connection,
      prefix,
      { id: 'dst', hostId: 'h', pid: 7, concurrency: 1, startedAt: Date.now() },
      TTL_MS,
    );
    // The executor is dst itself, whose lease (taken by joinAsWorker) is live under this owner.
    const live = createMover({
      ledger: createMoveLedger({
        redis: connection,
        prefix,
        workerId: 'dst',
        owner: 'test-dst/7',
        workerTtlMs: TTL_MS,
        locationTtlMs: 3_600_000,
      }),
      transfer,
      onMoved: () => {},
      afterStep: (step) => {
        if (step === 'detached') throw new Crash('paused');
      },
    });
    await assert.rejects(live.move({ jobId, token, source: 'src', target: 'dst', reason: 'stolen' }), Crash);
    assert.equal(await moverOf('rescuer').recover(), 0);
    assert.equal(await connection.hlen(ledger.keys.moves), 1);
  });

  test('a job that ran before keeps its attempts; a delayed one stays delayed', async () => {
    const { jobId, token } = await enqueueOn('src');
    await connection.hset(queues.forWorker('src').toKey(jobId), { atm: 1, ats: 2 });
    const delayed = await enqueueOn('src', {}, 60_000);
    assert.equal(await queues.forWorker('src').getJobState(delayed.jobId), 'delayed');
    await joinAsWorker(
      connection,
      prefix,
      { id: 'dst', hostId: 'h', pid: 2, concurrency: 1, startedAt: Date.now() },
      TTL_MS,
    );
    const mover = moverOf('dst');
    assert.equal(await mover.move({ jobId, token, source: 'src', target: 'dst', reason: 'retired' }), 'moved');
    assert.equal(await mover.move({ ...delayed, source: 'src', target: 'dst', reason: 'retired' }), 'moved');
    const job = await queues.forWorker('dst').getJob(jobId);
    assert.equal(job?.attemptsMade, 1);
    assert.equal(job?.attemptsStarted, 2);
    assert.equal(await queues.forWorker('dst').getJobState(jobId), 'waiting');
    assert.equal(await queues.forWorker('dst').getJobState(delayed.jobId), 'delayed');
  });

  test('steals racing the source consumer: every job runs exactly once', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 60; i += 1) ids.push((await enqueueOn('src', { i })).jobId);
    await joinAsWorker(
      connection,
      prefix,
      { id: 'dst', hostId: 'h', pid: 2, concurrency: 8, startedAt: Date.now() },
      TTL_MS,
    );
    const runs = new Map<string, number>();
    const count = (id: string | undefined) => runs.set(id ?? '?', (runs.get(id ?? '?') ?? 0) + 1);
    const consumers = ['src', 'dst'].map(
      (id) =>
        new Worker(queueNameFor(id), (job) => Promise.resolve(count(job.id)), { connection, prefix, concurrency: 4 }),
    );
    const mover = moverOf('dst');
    const stealing = (async () => {
      for (const jobId of ids) {
        const token = parseJobId(jobId)?.token ?? '';
        await mover.move({ jobId, token, source: 'src', target: 'dst', reason: 'stolen' });
      }
    })();
    await stealing;
    await waitFor(() => runs.size === ids.length && [...runs.values()].every((n) => n === 1), {
      what: 'every job to run once',
    });
    await Promise.all(consumers.map((consumer) => consumer.close()));
    assert.deepEqual(
      [...runs.values()].filter((n) => n !== 1),
      [],
    );
    assert.equal(await connection.hlen(ledger.keys.moves), 0);
  });
});

describe('a move when Redis goes away in the middle', () => {
  let durable: TestRedis;
  before(async () => {
    durable = await startRedis({ appendOnly: true });
  });
  after(async () => {
    await durable?.stop();
  });

  test('the failed step leaves the intent, and the next recovery pass finishes the move once', async () => {
    const steady = new Redis(durable.url, { maxRetriesPerRequest: null });
    const failFast = new Redis(durable.url, {
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => 200,
    });
    failFast.on('error', () => {});
    const movePrefix = `o${randomUUID().slice(0, 8)}`;
    const moveQueues = createQueueRegistry({ connection: steady, prefix: movePrefix });
    const outageQueues = createQueueRegistry({ connection: failFast, prefix: movePrefix });
    try {
      const moveLedger = createLedger({ redis: steady, prefix: movePrefix, workerTtlMs: TTL_MS });
      await joinAsWorker(
        steady,
        movePrefix,
        { id: 'src', hostId: 'h', pid: 1, concurrency: 1, startedAt: Date.now() },
        TTL_MS,
      );
      const token = randomUUID();
      assert.deepEqual(placement(await moveLedger.reserve(token)), { kind: 'reserved', workerId: 'src' });
      const jobId = jobIdFor('src', token);
      await moveQueues.forWorker('src').add('outage', {}, { jobId });
      await joinAsWorker(
        steady,
        movePrefix,
        { id: 'dst', hostId: 'h', pid: 2, concurrency: 1, startedAt: Date.now() },
        TTL_MS,
      );

      const during = createMover({
        ledger: createMoveLedger({
          redis: failFast,
          prefix: movePrefix,
          workerId: 'gone',
          owner: 'gone/1',
          workerTtlMs: TTL_MS,
          locationTtlMs: 3_600_000,
        }),
        transfer: createTransfer({ redis: failFast, queues: outageQueues }),
        onMoved: () => {},
        afterStep: async (step) => {
          if (step === 'detached') await durable.stopServer();
        },
      });
      await assert.rejects(during.move({ jobId, token, source: 'src', target: 'dst', reason: 'stolen' }));
      await durable.startServer();
      await waitFor(async () => (await steady.ping()) === 'PONG', { what: 'Redis to be back' });

      const rescuer = createMover({
        ledger: createMoveLedger({
          redis: steady,
          prefix: movePrefix,
          workerId: 'rescuer',
          owner: 'rescuer/1',
          workerTtlMs: TTL_MS,
          locationTtlMs: 3_600_000,
        }),
        transfer: createTransfer({ redis: steady, queues: moveQueues }),
        onMoved: () => {},
      });
      assert.equal(await rescuer.recover(), 1);
      assert.equal(await moveQueues.forWorker('src').getJob(jobId), undefined);
      assert.equal(await moveQueues.forWorker('dst').getJobState(jobId), 'waiting');
      assert.deepEqual(await steady.hgetall(moveLedger.keys.queued), { src: '0', dst: '1' });
      assert.equal(await steady.hlen(moveLedger.keys.moves), 0);
    } finally {
      await Promise.allSettled([moveQueues.close(), outageQueues.close()]);
      steady.disconnect();
      failFast.disconnect();
    }
  });
});
