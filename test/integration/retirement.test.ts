/**
 * Retirement against a real Redis (one server or a cluster, test/support/test-redis.ts) and real
 * BullMQ queues, in one process: two live processes that both try to retire a dead worker id retire
 * it once, its running and waiting jobs each end up in exactly one live queue, and a retirement cut
 * short by a Redis outage (every node of a cluster stopped) is finished by the next pass. The ledger's
 * objects judge time by a clock the test moves on (test/support/clock.ts): leases expire when the
 * test says, without sleeping.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Worker, type Queue } from 'bullmq';
import { pino } from 'pino';
import { createLeases, holderName } from '../../src/ledger/lease.js';
import { createLedger, type Ledger } from '../../src/ledger/ledger.js';
import { createMoveLedger } from '../../src/ledger/moves.js';
import { createMover } from '../../src/ownership/mover.js';
import { createRetirer, type Retirer } from '../../src/ownership/retirer.js';
import { ledgerKeys } from '../../src/contracts/keys.js';
import { jobIdFor, queueNameFor } from '../../src/contracts/names.js';
import { createQueueRegistry, type QueueRegistry } from '../../src/queue/queues.js';
import { createTransfer } from '../../src/queue/transfer.js';
import { waitUntilReady, type RedisClient } from '../../src/redis/connections.js';
import { joinAsWorker, placement } from '../support/ledger.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
import { testClock, type TestClock } from '../support/clock.js';
import { captureLogger, type CapturedLine } from '../support/capture-logger.js';

const TTL_MS = 300;
const RETIRE_MS = 400;
/** How long the retirer cut short by the outage holds its claim. */
const CUT_CLAIM_MS = 1_000;
const logger = pino({ level: 'silent' });
const RETENTION = { completed: { ageSeconds: 3600 }, failed: { ageSeconds: 3600 } };

interface Setup {
  readonly prefix: string;
  readonly ledger: Ledger;
  readonly queues: QueueRegistry;
  readonly jobIds: readonly string[];
  /** The time of every ledger object of the setup. */
  readonly clock: TestClock;
}

/** A dead worker `dead-0` with one job running (locked, as its process left it) and `waiting` more. */
async function deadWorkerWithJobs(connection: RedisClient, waiting: number): Promise<Setup> {
  const prefix = `r${randomUUID().slice(0, 8)}`;
  const clock = testClock();
  const ledger = createLedger({ redis: connection, prefix, workerTtlMs: TTL_MS, clock: clock.now });
  const queues = createQueueRegistry({ connection, prefix });
  const dead = createLeases({
    redis: connection,
    prefix,
    instance: 'dead',
    owner: holderName('dead', 1),
    ttlMs: TTL_MS,
    retireMs: RETIRE_MS,
    clock: clock.now,
  });
  await dead.acquire('dead-0');
  await dead.renew('dead-0', 1, true);
  await ledger.register({ id: 'dead-0', hostId: 'gone', pid: 1, concurrency: 1, startedAt: Date.now() });
  const tokens = Array.from({ length: waiting + 1 }, () => randomUUID());
  const outcomes = await ledger.reserveMany(tokens);
  assert.deepEqual(
    outcomes.map(placement),
    tokens.map(() => ({ kind: 'reserved', workerId: 'dead-0' })),
  );
  const jobIds: string[] = [];
  for (const [i, token] of tokens.entries()) {
    const jobId = jobIdFor('dead-0', token);
    await queues.forWorker('dead-0').add('orphaned', { i }, { jobId });
    jobIds.push(jobId);
  }
  const consumer = new Worker(queueNameFor('dead-0'), null, { connection, prefix, lockDuration: 60_000 });
  const running = await consumer.getNextJob('dead-lock');
  assert.ok(running?.id);
  await ledger.markStarted('dead-0', running.id.split('~')[1] ?? '');
  await consumer.close(true);
  for (const id of ['live-0', 'live-1']) {
    await joinAsWorker(
      connection,
      prefix,
      { id, hostId: 'here', pid: 5, concurrency: 8, startedAt: Date.now() },
      60_000,
    );
  }
  // The live workers' heartbeats are stamped by Redis's clock, which the test clock started from:
  // they stay well within their own ttl (60 s) of it.
  clock.advance(TTL_MS + RETIRE_MS);
  return { prefix, ledger, queues, jobIds, clock };
}

function retirerOf(
  connection: RedisClient,
  { prefix, ledger, queues, clock }: Pick<Setup, 'prefix' | 'ledger' | 'queues' | 'clock'>,
  name: string,
  retired: string[],
  log = logger,
): Retirer {
  const owner = holderName(name, 9);
  const leases = createLeases({
    redis: connection,
    prefix,
    instance: name,
    owner,
    ttlMs: 60_000,
    retireMs: RETIRE_MS,
    clock: clock.now,
  });
  const moves = createMoveLedger({
    redis: connection,
    prefix,
    workerId: name,
    owner,
    workerTtlMs: 60_000,
    locationTtlMs: 3_600_000,
    clock: clock.now,
  });
  const transfer = createTransfer({ redis: connection, queues });
  return createRetirer({
    redis: connection,
    leases,
    ledger,
    moves,
    queues,
    transfer,
    mover: createMover({ ledger: moves, transfer, onMoved: () => {} }),
    retention: RETENTION,
    onRetired: () => retired.push(name),
    logger: log,
  });
}

/**
 * A retired id `gone-0` with an empty queue, and a retirer whose look at the queue's counts is
 * followed at once by `meanwhile`: what may happen between a purge's look and its deletion.
 */
async function retiredWithAfterCount(
  connection: RedisClient,
  meanwhile: (prefix: string, queue: Queue) => Promise<void>,
): Promise<{ prefix: string; queue: Queue; retirer: Retirer; lines: CapturedLine[]; dropped: string[] }> {
  const prefix = `p${randomUUID().slice(0, 8)}`;
  const clock = testClock();
  await connection.hset(ledgerKeys(prefix).retired, 'gone-0', clock.now());
  const registry = createQueueRegistry({ connection, prefix });
  const queue = registry.forWorker('gone-0');
  const counted = new Proxy(queue, {
    get(target, property) {
      if (property === 'getJobCounts') {
        return async () => {
          const counts = await target.getJobCounts();
          await meanwhile(prefix, target);
          return counts;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  const dropped: string[] = [];
  const queues: QueueRegistry = {
    ...registry,
    forWorker: (id) => (id === 'gone-0' ? counted : registry.forWorker(id)),
    drop: async (ids) => {
      dropped.push(...ids);
      await registry.drop(ids);
    },
  };
  const { logger: log, lines } = captureLogger();
  const ledger = createLedger({ redis: connection, prefix, workerTtlMs: TTL_MS, clock: clock.now });
  const retirer = retirerOf(connection, { prefix, ledger, queues, clock }, 'purger', [], log);
  return { prefix, queue, retirer, lines, dropped };
}

/** Where each job is now: the live queues holding it, and its state there. */
async function whereabouts({ queues, jobIds }: Setup): Promise<string[][]> {
  return Promise.all(
    jobIds.map(async (jobId) => {
      const places: string[] = [];
      for (const id of ['dead-0', 'live-0', 'live-1']) {
        const state = await queues.forWorker(id).getJobState(jobId);
        if (state !== 'unknown') places.push(`${id}:${state}`);
      }
      return places;
    }),
  );
}

describe('retiring a dead worker id', () => {
  let redis: ModeRedis;
  let connection: RedisClient;
  before(async () => {
    redis = await startTestRedis({ appendOnly: true });
    connection = redis.connect({ maxRetriesPerRequest: null });
  });
  after(async () => {
    connection.disconnect();
    await redis.stop();
  });

  test('two processes retire it at once: exactly one does, and every job is in one live queue', async () => {
    const setup = await deadWorkerWithJobs(connection, 6);
    const retired: string[] = [];
    const outcomes = await Promise.all([
      retirerOf(connection, setup, 'one', retired).retire('dead-0'),
      retirerOf(connection, setup, 'two', retired).retire('dead-0'),
    ]);
    assert.equal(outcomes.filter(Boolean).length, 1, `outcomes ${outcomes.join(', ')}`);
    assert.equal(retired.length, 1);
    for (const places of await whereabouts(setup)) {
      assert.equal(places.length, 1, places.join(' '));
      assert.match(places[0] ?? '', /^live-[01]:waiting$/);
    }
    const workers = await setup.ledger.snapshot();
    assert.deepEqual(
      workers.map((worker) => worker.id),
      ['live-0', 'live-1'],
    );
    assert.equal(
      workers.reduce((sum, worker) => sum + worker.queued, 0),
      7,
      'the ledger moved with the jobs',
    );
    await setup.queues.close();
  });

  test('a retirement cut short by a Redis outage is finished by the next pass', async () => {
    const setup = await deadWorkerWithJobs(connection, 4);
    const retired: string[] = [];
    const failFast = redis.connect({
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => 200,
    });
    failFast.on('error', () => {});
    await waitUntilReady(failFast, 5_000);
    const failFastQueues = createQueueRegistry({ connection: failFast, prefix: setup.prefix });
    const owner = holderName('cut', 9);
    const moves = createMoveLedger({
      redis: failFast,
      prefix: setup.prefix,
      workerId: 'cut',
      owner,
      workerTtlMs: 60_000,
      locationTtlMs: 3_600_000,
      clock: setup.clock.now,
    });
    const transfer = createTransfer({ redis: failFast, queues: failFastQueues });
    let moved = 0;
    const cut = createRetirer({
      redis: failFast,
      leases: createLeases({
        redis: failFast,
        prefix: setup.prefix,
        instance: 'cut',
        owner,
        ttlMs: CUT_CLAIM_MS,
        retireMs: RETIRE_MS,
        clock: setup.clock.now,
      }),
      ledger: createLedger({ redis: failFast, prefix: setup.prefix, workerTtlMs: TTL_MS, clock: setup.clock.now }),
      moves,
      queues: failFastQueues,
      transfer,
      mover: createMover({
        ledger: moves,
        transfer,
        onMoved: () => {},
        afterStep: async (step) => {
          if (step === 'shifted' && (moved += 1) === 2) await redis.stopServer();
        },
      }),
      retention: RETENTION,
      onRetired: () => retired.push('cut'),
      logger,
    });
    await assert.rejects(cut.retire('dead-0'));
    assert.equal(moved, 2, 'the outage came in the middle of the second move');
    await redis.startServer();
    failFast.disconnect();
    await failFastQueues.close();

    // The cut retirer's claim runs out; the next pass (another process here) claims the id, finishes
    // the move that was under way, and the rest.
    setup.clock.advance(CUT_CLAIM_MS);
    const next = retirerOf(connection, setup, 'next', retired);
    const rescuer = createMover({
      ledger: createMoveLedger({
        redis: connection,
        prefix: setup.prefix,
        workerId: 'next',
        owner: holderName('next', 9),
        workerTtlMs: 60_000,
        locationTtlMs: 3_600_000,
        clock: setup.clock.now,
      }),
      transfer: createTransfer({ redis: connection, queues: setup.queues }),
      onMoved: () => {},
    });
    assert.equal(await rescuer.recover(), 1, 'the move under way is finished');
    assert.equal(await next.retire('dead-0'), true);
    assert.deepEqual(retired, ['next']);
    for (const places of await whereabouts(setup)) {
      assert.equal(places.length, 1, places.join(' '));
      assert.match(places[0] ?? '', /^live-[01]:waiting$/);
    }
    await setup.queues.close();
  });

  test('a purge keeps the queue of a retired id that got a job after it looked', async () => {
    // A request that reserved the id just before it was retired adds its job late.
    const late = jobIdFor('gone-0', 'late');
    const { prefix, queue, retirer, lines } = await retiredWithAfterCount(connection, async (_, target) => {
      await target.add('late', {}, { jobId: late });
    });
    await retirer.purge();
    assert.equal(await queue.getJobState(late), 'waiting', 'the late job is still there');
    assert.ok((await connection.hexists(ledgerKeys(prefix).retired, 'gone-0')) === 1, 'the id is still retired');
    assert.deepEqual(
      lines.filter((line) => line.event === 'retirement.forgotten'),
      [],
    );
    await queue.close();
  });

  test('a purge leaves alone a retired id that started again after it looked', async () => {
    const { queue, retirer, lines, dropped } = await retiredWithAfterCount(connection, async (prefix) => {
      const leases = createLeases({
        redis: connection,
        prefix,
        instance: 'back',
        owner: holderName('back', 3),
        ttlMs: 60_000,
        retireMs: RETIRE_MS,
      });
      assert.deepEqual(await leases.acquire('gone-0'), { taken: true, previousHolder: '' });
    });
    await retirer.purge();
    assert.deepEqual(
      lines.filter((line) => line.event === 'retirement.forgotten'),
      [],
      'a live id is not forgotten',
    );
    assert.deepEqual(dropped, [], 'nor its queue handle dropped');
    await queue.close();
  });
});
