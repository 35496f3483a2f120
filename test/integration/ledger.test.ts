/**
 * The load ledger's Lua scripts against a real Redis: a batch chooses as the same reserves one after
 * another would, reservations are atomic under concurrency, and every transition is idempotent so
 * counters cannot drift. That the choice itself follows its TypeScript specification, over random
 * states, is checked in ledger-rules.test.ts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createLedger, type Ledger } from '../../src/ledger/ledger.js';
import { joinAsWorker, placement } from '../support/ledger.js';
import { pickLeastLoaded } from '../../src/ledger/least-loaded.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';

const TTL_MS = 5_000;

let redis: TestRedis;
let connection: Redis;
let scheduler: Ledger;
let prefix: string;

/** Makes a worker live under the current prefix, as its process would. */
const join = (worker: ReturnType<typeof info>, under = prefix) => joinAsWorker(connection, under, worker, TTL_MS);

/** The reserved worker's id, or undefined when nothing was reserved. */
async function reserveId(token: string): Promise<string | undefined> {
  const outcome = await scheduler.reserve(token);
  return outcome.kind === 'reserved' ? outcome.workerId : undefined;
}

function info(id: string, concurrency = 8) {
  return { id, hostId: 'h', pid: 1, concurrency, startedAt: Date.now() };
}

/** Reservations over every worker's hash. */
async function reservationCount(): Promise<number> {
  const keys = await connection.keys(`${scheduler.keys.jobs('')}*`);
  const sizes = await Promise.all(keys.map((key) => connection.hlen(key)));
  return sizes.reduce((sum, size) => sum + size, 0);
}

async function counters(): Promise<{ queued: Record<string, string>; active: Record<string, string> }> {
  return {
    queued: await connection.hgetall(scheduler.keys.queued),
    active: await connection.hgetall(scheduler.keys.active),
  };
}

describe('ledger scripts', () => {
  before(async () => {
    redis = await startRedis();
    connection = new Redis(redis.url);
  });
  after(async () => {
    connection.disconnect();
    await redis.stop();
  });
  beforeEach(() => {
    prefix = `s${randomUUID().slice(0, 8)}`;
    scheduler = createLedger({ redis: connection, prefix, workerTtlMs: TTL_MS });
  });

  test('no live worker: nothing is reserved', async () => {
    assert.deepEqual(await scheduler.reserve('t1'), { kind: 'no-live-worker' });
    assert.equal(await reservationCount(), 0);
  });

  test("a reservation made for another worker's job id keeps that id (a delayed job routed when due)", async () => {
    await join(info('w-0'));
    assert.deepEqual(placement(await scheduler.reserve('t1', 'scheduled')), { kind: 'reserved', workerId: 'w-0' });
    assert.deepEqual(placement(await scheduler.reserve('t2')), { kind: 'reserved', workerId: 'w-0' });
    const ids = new Map<string, string>();
    for await (const reservation of scheduler.reservations('w-0')) ids.set(reservation.token, reservation.jobId);
    // The reconciler looks each job up by this id: the routed job is found, not freed as missing.
    assert.deepEqual(Object.fromEntries(ids), { t1: 'scheduled~t1', t2: 'w-0~t2' });
    assert.equal(await scheduler.markStarted('w-0', 't1'), true);
    assert.equal(await scheduler.release('w-0', 't1'), true);
    assert.deepEqual(await counters(), { queued: { 'w-0': '1' }, active: { 'w-0': '0' } });
  });

  test('a worker whose heartbeat is older than the ttl is never chosen', async () => {
    await join(info('w-live'));
    await join(info('w-dead'));
    await connection.zadd(scheduler.keys.heartbeats, Date.now() - TTL_MS - 1_000, 'w-dead');
    for (let i = 0; i < 20; i += 1) assert.equal(await reserveId(`t${i}`), 'w-live');
    const snapshot = await scheduler.snapshot();
    assert.deepEqual(
      snapshot.map((worker) => [worker.id, worker.alive, worker.queued]),
      [
        ['w-dead', false, 0],
        ['w-live', true, 20],
      ],
    );
  });

  test('deregister takes a worker out of selection at once', async () => {
    await join(info('a'));
    await join(info('b'));
    await scheduler.deregister('a');
    for (let i = 0; i < 5; i += 1) assert.equal(await reserveId(`t${i}`), 'b');
  });

  test('200 concurrent reservations over 4 idle workers spread 50 each', async () => {
    for (const id of ['a', 'b', 'c', 'd']) await join(info(id));
    const chosen = await Promise.all(Array.from({ length: 200 }, (_, i) => reserveId(`t${i}`)));
    const counts = new Map<string, number>();
    for (const id of chosen) counts.set(id ?? '', (counts.get(id ?? '') ?? 0) + 1);
    assert.deepEqual([...counts.values()], [50, 50, 50, 50]);
    assert.deepEqual((await counters()).queued, { a: '50', b: '50', c: '50', d: '50' });
  });

  test('one batch chooses exactly as the same reserves made one after another', async () => {
    for (const id of ['a', 'b', 'c', 'd']) await join(info(id, id === 'd' ? 16 : 8));
    await reserveId('warm');
    const tokens = Array.from({ length: 23 }, (_, i) => `b${i}`);
    const cursor = Number(await connection.get(scheduler.keys.cursor));
    const [capacity, queued, active] = await Promise.all([
      connection.hgetall(scheduler.keys.capacity),
      connection.hgetall(scheduler.keys.queued),
      connection.hgetall(scheduler.keys.active),
    ]);
    // What separate reserves would choose, by the TypeScript rule.
    const state = new Map(
      ['a', 'b', 'c', 'd'].map((id) => [
        id,
        { id, concurrency: Number(capacity[id]), queued: Number(queued[id] ?? 0), active: Number(active[id] ?? 0) },
      ]),
    );
    const expected = tokens.map((_, j) => {
      const pick = pickLeastLoaded([...state.values()], cursor + j + 1);
      assert.ok(pick);
      state.set(pick.id, { ...pick, queued: pick.queued + 1 });
      return pick.id;
    });
    const outcomes = await scheduler.reserveMany(tokens);
    assert.deepEqual(
      outcomes.map((outcome) => (outcome.kind === 'reserved' ? outcome.workerId : outcome.kind)),
      expected,
    );
    assert.equal(await reservationCount(), 24);
  });

  test('a batch that reaches the backlog limit reserves up to it and refuses the rest', async () => {
    const limitedPrefix = `m${randomUUID().slice(0, 8)}`;
    const limited = createLedger({ redis: connection, prefix: limitedPrefix, workerTtlMs: TTL_MS, maxBacklog: 3 });
    await join(info('a'), limitedPrefix);
    const outcomes = await limited.reserveMany(['t1', 't2', 't3', 't4', 't5']);
    assert.deepEqual(
      outcomes.map((outcome) => outcome.kind),
      ['reserved', 'reserved', 'reserved', 'backlog-full', 'backlog-full'],
    );
    assert.equal(await connection.hlen(limited.keys.jobs('a')), 3);
  });

  test('a full backlog refuses new reservations until a job starts or ends', async () => {
    const limitedPrefix = `b${randomUUID().slice(0, 8)}`;
    const limited = createLedger({ redis: connection, prefix: limitedPrefix, workerTtlMs: TTL_MS, maxBacklog: 3 });
    await join(info('a'), limitedPrefix);
    await join(info('b'), limitedPrefix);
    for (const token of ['t1', 't2', 't3']) assert.equal((await limited.reserve(token)).kind, 'reserved');
    assert.deepEqual(await limited.reserve('t4'), { kind: 'backlog-full' });
    assert.equal(
      (await connection.hlen(limited.keys.jobs('a'))) + (await connection.hlen(limited.keys.jobs('b'))),
      3,
      'the refused job reserved nothing',
    );
    await limited.markStarted((await connection.hexists(limited.keys.jobs('a'), 't1')) ? 'a' : 'b', 't1');
    assert.equal((await limited.reserve('t4')).kind, 'reserved', 'a started job leaves the backlog');
  });

  test('transitions move load between queued and active exactly once each', async () => {
    await join(info('a'));
    await reserveId('t');
    assert.deepEqual(await counters(), { queued: { a: '1' }, active: {} });
    assert.equal(await scheduler.markStarted('a', 't'), true);
    assert.equal(await scheduler.markStarted('a', 't'), false, 'a repeated start changes nothing');
    assert.deepEqual(await counters(), { queued: { a: '0' }, active: { a: '1' } });
    assert.equal(await scheduler.markRequeued('a', 't'), true);
    assert.equal(await scheduler.markRequeued('a', 't'), false);
    assert.deepEqual(await counters(), { queued: { a: '1' }, active: { a: '0' } });
    assert.equal(await scheduler.markStarted('a', 't'), true);
    assert.equal(await scheduler.release('a', 't'), true);
    assert.equal(await scheduler.release('a', 't'), false, 'a late or repeated release changes nothing');
    assert.deepEqual(await counters(), { queued: { a: '0' }, active: { a: '0' } });
    assert.equal(await reservationCount(), 0);
  });

  test('the running and unconfirmed lists follow each reservation through its transitions', async () => {
    await join(info('w'));
    const lists = async () => ({
      running: [...(await scheduler.runningTokens('w'))].sort(),
      unconfirmed: await connection.zrange(scheduler.keys.unconfirmed('w'), 0, -1),
    });
    assert.equal(await reserveId('t1'), 'w');
    assert.equal(await reserveId('t2'), 'w');
    assert.deepEqual(await lists(), { running: [], unconfirmed: ['t1', 't2'] }, 'reserved, the jobs not yet seen');
    await scheduler.markStarted('w', 't1');
    assert.deepEqual(await lists(), { running: ['t1'], unconfirmed: ['t2'] }, 'a job that starts was seen');
    await scheduler.markRequeued('w', 't1');
    assert.deepEqual(await lists(), { running: [], unconfirmed: ['t1', 't2'] }, 'requeued, it is checked again');
    const [since] = await connection.zmscore(scheduler.keys.unconfirmed('w'), 't1');
    assert.match((await connection.hget(scheduler.keys.jobs('w'), 't1')) ?? '', new RegExp(`^q\\|${since}$`));
    await scheduler.markStarted('w', 't1');
    await scheduler.release('w', 't1');
    await scheduler.release('w', 't2');
    assert.deepEqual(await lists(), { running: [], unconfirmed: [] });
    // A stale name in the running list (its entry went another way) leaves it on the next requeue.
    await connection.sadd(scheduler.keys.running('w'), 'gone');
    assert.equal(await scheduler.markRequeued('w', 'gone'), false);
    assert.deepEqual(await lists(), { running: [], unconfirmed: [] });
  });

  test('a job that starts without a reservation is counted, and released again', async () => {
    assert.equal(await scheduler.markStarted('a', 'orphan'), true);
    assert.deepEqual((await counters()).active, { a: '1' });
    assert.equal(await scheduler.release('a', 'orphan'), true);
    assert.deepEqual((await counters()).active, { a: '0' });
  });

  test("recount rebuilds a worker's counters from its reservations", async () => {
    await join(info('a'));
    for (let i = 0; i < 5; i += 1) await reserveId(`t${i}`);
    await scheduler.markStarted('a', 't0');
    assert.deepEqual(await counters(), { queued: { a: '4' }, active: { a: '1' } });
    // Simulate drift written by something else.
    await connection.hset(scheduler.keys.queued, 'a', 99);
    await connection.hset(scheduler.keys.active, 'a', 42);
    assert.equal(await scheduler.recount('a'), 5);
    assert.deepEqual(await counters(), { queued: { a: '4' }, active: { a: '1' } });
  });

  test('cancel finds and undoes a reservation on whichever worker holds it, once', async () => {
    for (const id of ['a', 'b', 'c']) await join(info(id));
    const chosen = await reserveId('lost-answer');
    assert.ok(chosen);
    assert.equal(await scheduler.cancel('lost-answer'), true);
    assert.equal(await scheduler.cancel('lost-answer'), false);
    assert.equal(await reservationCount(), 0);
    assert.equal((await counters()).queued[chosen], '0');
  });

  test("reservations(worker) lists that worker's reservations with their state", async () => {
    await join(info('a'));
    for (let i = 0; i < 1_200; i += 1) await reserveId(`t${i}`);
    await join(info('b'));
    await reserveId('on-b');
    await scheduler.markStarted('a', 't7');
    const seen = new Map<string, string>();
    for await (const reservation of scheduler.reservations('a')) seen.set(reservation.token, reservation.state);
    assert.equal(seen.size, 1_200, "only worker a's reservations");
    assert.equal(seen.get('t7'), 'active');
    assert.equal(seen.get('t8'), 'queued');
  });

  test('now() reads the clock that stamps reservations, in the same milliseconds', async () => {
    await join(info('a'));
    await reserveId('clocked');
    let reservedAt: number | undefined;
    for await (const reservation of scheduler.reservations('a')) reservedAt = reservation.reservedAt;
    const now = await scheduler.now();
    assert.ok(reservedAt !== undefined);
    assert.ok(now >= reservedAt, `now ${now} is not before the reservation's stamp ${reservedAt}`);
    assert.ok(now - reservedAt < 60_000, 'the same unit and clock (a generous bound)');
  });
});
