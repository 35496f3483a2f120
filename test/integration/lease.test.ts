/**
 * Leases on worker ids against a real Redis: one holder at a time, take-over by the same instance
 * (a re-forked process) but not by another while the holder lives, renewal that survives a lapse
 * nobody exploited but not a take-over, release at shutdown, and retirement: claimed by exactly one
 * process, and removing the id from the ledger once its reservations are gone. The scripts judge
 * time by a clock the test moves on (test/support/clock.ts), so a lease expires to the millisecond
 * the test says, without sleeping.
 */
import assert from 'node:assert/strict';
import { placement } from '../support/ledger.js';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createLeases, holderName, type Leases } from '../../src/ledger/lease.js';
import { createLedger, type Ledger } from '../../src/ledger/ledger.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { testClock, type TestClock } from '../support/clock.js';

const TTL_MS = 1_000;
const RETIRE_MS = 1_000;

let redis: TestRedis;
let connection: Redis;
let prefix: string;
let ledger: Ledger;
let clock: TestClock;

function leasesOf(instance: string, pid: number, ttlMs = TTL_MS): Leases {
  return createLeases({
    redis: connection,
    prefix,
    instance,
    owner: holderName(instance, pid),
    ttlMs,
    retireMs: RETIRE_MS,
    clock: clock.now,
  });
}

describe('worker id leases', () => {
  before(async () => {
    redis = await startRedis();
    connection = new Redis(redis.url);
  });
  after(async () => {
    connection.disconnect();
    await redis.stop();
  });
  beforeEach(() => {
    prefix = `l${randomUUID().slice(0, 8)}`;
    clock = testClock();
    ledger = createLedger({ redis: connection, prefix, workerTtlMs: TTL_MS, clock: clock.now });
  });

  test('a live holder from another instance keeps its id; an expired one loses it', async () => {
    const first = leasesOf('one', 1);
    const second = leasesOf('two', 2);
    assert.deepEqual(await first.acquire('h-0'), { taken: true, previousHolder: '' });
    assert.deepEqual(await second.acquire('h-0'), {
      taken: false,
      holder: 'one/1',
      expiresInMs: TTL_MS,
      retiring: false,
    });
    clock.advance(TTL_MS - 1);
    assert.deepEqual(await second.acquire('h-0'), { taken: false, holder: 'one/1', expiresInMs: 1, retiring: false });
    clock.advance(1);
    assert.deepEqual(await second.acquire('h-0'), { taken: true, previousHolder: 'one/1' });
    assert.deepEqual(await first.renew('h-0', 4, true), { held: false }, 'the old holder learns it lost the id');
  });

  test('a process of the same instance takes over at once (its predecessor was seen to exit)', async () => {
    await leasesOf('one', 1, 60_000).acquire('h-0');
    assert.deepEqual(await leasesOf('one', 2, 60_000).acquire('h-0'), { taken: true, previousHolder: 'one/1' });
    assert.deepEqual(await leasesOf('one', 1, 60_000).renew('h-0', 4, true), { held: false });
  });

  test('a lapsed lease that nobody took is re-acquired by its renewal, and marks the worker routable', async () => {
    const holder = leasesOf('one', 1);
    await holder.acquire('h-0');
    clock.advance(TTL_MS);
    const renewed = await holder.renew('h-0', 4, true);
    assert.equal(renewed.held, true);
    assert.ok(renewed.held && renewed.lapsed);
    const [worker] = await ledger.snapshot();
    assert.equal(worker?.alive, true);
    assert.equal(worker?.concurrency, 4);
    assert.equal(worker?.lease?.holderPid, 1);
  });

  test('release gives the id up at once, and only its holder can release it', async () => {
    const holder = leasesOf('one', 1, 60_000);
    await holder.acquire('h-0');
    await holder.renew('h-0', 4, true);
    assert.equal(await leasesOf('two', 2).release('h-0'), false);
    assert.equal(await holder.release('h-0'), true);
    assert.equal((await ledger.snapshot())[0]?.alive, false, 'out of selection');
    assert.equal((await leasesOf('two', 2).acquire('h-0')).taken, true);
  });

  test('an id expired for the retirement delay is due, and exactly one of two claimers retires it', async () => {
    const dead = leasesOf('dead', 1);
    await dead.acquire('d-0');
    await dead.renew('d-0', 4, true);
    const a = leasesOf('a', 10, 60_000);
    const b = leasesOf('b', 20, 60_000);
    await a.acquire('a-0');
    await b.acquire('b-0');
    assert.deepEqual(await a.renew('a-0', 4, true), { held: true, lapsed: false, dueForRetirement: [] });
    clock.advance(TTL_MS + RETIRE_MS - 1);
    assert.deepEqual(await a.renew('a-0', 4, true), { held: true, lapsed: false, dueForRetirement: [] });
    assert.equal(await b.claimRetirement('d-0'), false, 'not claimable before the delay is over');
    clock.advance(1);
    assert.deepEqual(await a.renew('a-0', 4, true), { held: true, lapsed: false, dueForRetirement: ['d-0'] });

    const claims = await Promise.all([a.claimRetirement('d-0'), b.claimRetirement('d-0')]);
    assert.deepEqual(claims.filter(Boolean), [true], 'one claim wins');
  });

  test('while an id is being retired nobody can take it; its old holder has lost it', async () => {
    const dead = leasesOf('dead', 1);
    await dead.acquire('d-0');
    clock.advance(TTL_MS + RETIRE_MS);
    const retirer = leasesOf('r', 5, 60_000);
    assert.equal(await retirer.claimRetirement('d-0'), true);
    assert.deepEqual(await dead.renew('d-0', 4, true), { held: false });
    const refused = await leasesOf('new', 9).acquire('d-0');
    assert.ok(!refused.taken && refused.retiring);
  });

  test('finishing a retirement removes the id from the ledger, but not while reservations remain', async () => {
    const dead = leasesOf('dead', 1);
    await dead.acquire('d-0');
    await dead.renew('d-0', 4, true);
    await ledger.register({ id: 'd-0', hostId: 'gone', pid: 1, concurrency: 4, startedAt: Date.now() });
    assert.deepEqual(placement(await ledger.reserve('t1')), { kind: 'reserved', workerId: 'd-0' });
    clock.advance(TTL_MS + RETIRE_MS);
    const retirer = leasesOf('r', 5, 60_000);
    assert.equal(await retirer.claimRetirement('d-0'), true);
    assert.equal(await retirer.finishRetirement('d-0'), 'reservations-left');
    await ledger.release('d-0', 't1');
    // Names a cancel left in the lists the reconcile pass reads: they go with the id.
    await connection.sadd(ledger.keys.running('d-0'), 'stale');
    await connection.zadd(ledger.keys.unconfirmed('d-0'), 1, 'stale');
    assert.equal(await leasesOf('other', 7, 60_000).finishRetirement('d-0'), 'claim-lost', 'only the claimer finishes');
    assert.equal(await retirer.finishRetirement('d-0'), 'retired');
    assert.equal(await connection.exists(ledger.keys.running('d-0'), ledger.keys.unconfirmed('d-0')), 0);
    assert.deepEqual(await ledger.snapshot(), [], 'gone from /workers and /metrics');
    assert.equal(await ledger.isKnownWorker('d-0'), true, 'its finished jobs stay readable');
    assert.deepEqual([...(await retirer.retired()).keys()], ['d-0']);
    assert.deepEqual(await ledger.reserve('t2'), { kind: 'no-live-worker' });

    // The same id started again later starts empty and is no longer retired.
    const reborn = leasesOf('reborn', 3);
    assert.equal((await reborn.acquire('d-0')).taken, true);
    assert.deepEqual([...(await reborn.retired()).keys()], []);
  });
});
