import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { createReserveBatcher } from '../../src/enqueue/reserve-batcher.js';
import type { ReserveOutcome, ReserveRequest } from '../../src/ledger/ledger.js';

/** A reserveMany that records its batches and answers each token with a worker named after it. */
function recording(fail = false) {
  const batches: string[][] = [];
  const reserveMany = (requests: readonly ReserveRequest[]): Promise<ReserveOutcome[]> => {
    const tokens = requests.map((request) => (typeof request === 'string' ? request : request.token));
    batches.push([...tokens]);
    if (fail) return Promise.reject(new Error('redis is away'));
    return Promise.resolve(
      tokens.map((token) => ({ kind: 'reserved', workerId: `w-${token}`, reservedAt: 1 }) as const),
    );
  };
  return { batches, reserveMany };
}

describe('createReserveBatcher', () => {
  test('calls made in the same turn go out as one batch, in order, and each gets its own outcome', async () => {
    const { batches, reserveMany } = recording();
    const reserve = createReserveBatcher(reserveMany);
    const outcomes = await Promise.all(['a', 'b', 'c'].map((token) => reserve(token)));
    assert.deepEqual(batches, [['a', 'b', 'c']]);
    assert.deepEqual(outcomes, [
      { kind: 'reserved', workerId: 'w-a', reservedAt: 1 },
      { kind: 'reserved', workerId: 'w-b', reservedAt: 1 },
      { kind: 'reserved', workerId: 'w-c', reservedAt: 1 },
    ]);
  });

  test('calls in later turns make later batches', async () => {
    const { batches, reserveMany } = recording();
    const reserve = createReserveBatcher(reserveMany);
    const first = reserve('a');
    await nextTurn();
    await nextTurn();
    const second = reserve('b');
    await Promise.all([first, second]);
    assert.deepEqual(batches, [['a'], ['b']]);
  });

  test('a big turn is split into batches of at most 64', async () => {
    const { batches, reserveMany } = recording();
    const reserve = createReserveBatcher(reserveMany);
    const tokens = Array.from({ length: 150 }, (_, i) => `t${i}`);
    const outcomes = await Promise.all(tokens.map((token) => reserve(token)));
    assert.deepEqual(
      batches.map((batch) => batch.length),
      [64, 64, 22],
    );
    assert.deepEqual(batches.flat(), tokens);
    assert.equal(outcomes.length, 150);
  });

  test('a failed batch rejects every call in it', async () => {
    const { reserveMany } = recording(true);
    const reserve = createReserveBatcher(reserveMany);
    const results = await Promise.allSettled([reserve('a'), reserve('b')]);
    assert.deepEqual(
      results.map((result) => result.status),
      ['rejected', 'rejected'],
    );
  });
});
