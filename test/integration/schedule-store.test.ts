/**
 * The schedule store's scripts (src/schedules/lua/) on a real Redis, one server or a cluster
 * (test/support/test-redis.ts), with the clock passed in: a due tick is claimed by one of several
 * claimers at once, is claimed again only after its lease, is recorded once, a replace during a claim
 * keeps the new rule's next tick, a delete drops the tick, and a look after a long silence records
 * the time no process looked.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createScheduleStore, type ClaimedTick, type ScheduleStore } from '../../src/schedules/store.js';
import { testDefinition } from '../support/schedules.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';

const T0 = Date.parse('2027-01-10T12:00:00Z');
const LEASE_MS = 5_000;
const DOWN_AFTER_MS = 5_000;

const DEFINITION = testDefinition(T0);

describe('schedule store scripts', () => {
  let redis: ModeRedis;
  before(async () => {
    redis = await startTestRedis();
  });
  after(async () => {
    await redis?.stop();
  });
  const fresh = (): ScheduleStore =>
    createScheduleStore({ redis: redis.client, prefix: `s${randomBytes(4).toString('hex')}` });
  const look = (store: ScheduleStore, clock: number) =>
    store.claim({ max: 10, leaseMs: LEASE_MS, downAfterMs: DOWN_AFTER_MS, clock });
  const made = (jobId: string, tick: number, next: number | null) =>
    ({ outcome: 'made', jobTick: tick, jobId, missed: 0, next }) as const;

  test('one of several claimers gets a due tick; after its lease, the tick is claimed again', async () => {
    const store = fresh();
    assert.equal(await store.put('s', DEFINITION, T0), true);
    assert.deepEqual((await look(store, T0 - 1)).claimed, [], 'not due yet');
    const passes = await Promise.all(Array.from({ length: 5 }, () => look(store, T0)));
    const claims = passes.flatMap((pass) => pass.claimed);
    assert.equal(claims.length, 1, 'one claimer got the tick');
    assert.equal(claims[0]?.tick, T0);
    assert.deepEqual((await look(store, T0 + LEASE_MS - 1)).claimed, [], 'held for its lease');
    const again = await look(store, T0 + LEASE_MS);
    assert.deepEqual(
      again.claimed.map(({ tick }) => tick),
      [T0],
      'a claim that was never recorded is claimed again',
    );
  });

  test('a tick is recorded once; its next tick becomes due', async () => {
    const store = fresh();
    await store.put('s', DEFINITION, T0);
    const [first] = (await look(store, T0)).claimed as [ClaimedTick];
    assert.equal(await store.advance(first, made('job-1', T0, T0 + 1_000)), true);
    assert.equal(await store.advance(first, made('job-1', T0, T0 + 1_000)), false, 'a second record is refused');
    const state = (await store.get('s'))?.state;
    assert.deepEqual(state, {
      next: T0 + 1_000,
      runs: 1,
      skipped: 0,
      missed: 0,
      lastTick: T0,
      lastJobId: 'job-1',
    });
    const pass = await look(store, T0 + 1_000);
    assert.deepEqual(
      pass.claimed.map(({ tick, runs, lastJobId }) => ({ tick, runs, lastJobId })),
      [{ tick: T0 + 1_000, runs: 1, lastJobId: 'job-1' }],
    );
  });

  test('a replace during a claim: the claim records its job, the new rule keeps its next tick', async () => {
    const store = fresh();
    await store.put('s', DEFINITION, T0);
    const [claimed] = (await look(store, T0)).claimed as [ClaimedTick];
    assert.equal(await store.put('s', { ...DEFINITION, rule: { everyMs: 60_000 } }, T0 + 60_000), false);
    assert.equal(await store.advance(claimed, made('job-1', T0, T0 + 1_000)), true);
    const state = (await store.get('s'))?.state;
    assert.equal(state?.next, T0 + 60_000, "the next tick is the new rule's");
    assert.equal(state?.runs, 1);
    assert.deepEqual((await look(store, T0 + 1_000)).nextDueAt, T0 + 60_000);
  });

  test('a delete: the claim records nothing, and nothing is due', async () => {
    const store = fresh();
    await store.put('s', DEFINITION, T0);
    const [claimed] = (await look(store, T0)).claimed as [ClaimedTick];
    assert.equal(await store.delete('s'), true);
    assert.equal(await store.delete('s'), false);
    assert.equal(await store.advance(claimed, made('job-1', T0, T0 + 1_000)), false);
    assert.equal(await store.get('s'), undefined);
    const pass = await look(store, T0 + 10_000);
    assert.deepEqual(pass.claimed, []);
    assert.equal(pass.nextDueAt, undefined);
  });

  test('an ended schedule (no next tick) is never claimed', async () => {
    const store = fresh();
    await store.put('s', DEFINITION, T0);
    const [claimed] = (await look(store, T0)).claimed as [ClaimedTick];
    assert.equal(await store.advance(claimed, made('job-1', T0, null)), true);
    assert.deepEqual((await look(store, T0 + 60_000)).claimed, []);
    assert.equal((await store.get('s'))?.state.next, null);
  });

  test('a look after longer than the down threshold without one records when no process looked', async () => {
    const store = fresh();
    assert.equal((await look(store, T0)).down, undefined, 'the first look ever is no outage');
    assert.equal((await look(store, T0 + DOWN_AFTER_MS)).down, undefined, 'at the threshold, not yet');
    const after = await look(store, T0 + 3 * DOWN_AFTER_MS);
    assert.deepEqual(after.down, { from: T0 + DOWN_AFTER_MS, to: T0 + 3 * DOWN_AFTER_MS });
  });

  test('the list pages by name', async () => {
    const store = fresh();
    for (const name of ['c', 'a', 'd', 'b']) await store.put(name, DEFINITION, T0);
    const first = await store.list(undefined, 3);
    assert.deepEqual(
      first.schedules.map(({ name }) => name),
      ['a', 'b', 'c'],
    );
    assert.equal(first.nextCursor, 'c');
    const second = await store.list('c', 3);
    assert.deepEqual(
      second.schedules.map(({ name }) => name),
      ['d'],
    );
    assert.equal(second.nextCursor, null);
  });
});
