import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nextStreak, PARKED_AFTER_CHECKS, type FetchSample } from '../../src/queue/supervise.js';

/** Feeds samples in order and answers at which of them (by index) the loop was called parked. */
function verdicts(samples: readonly FetchSample[]): number[] {
  let streak = { count: 0, fetches: 0 };
  const parkedAt: number[] = [];
  samples.forEach((sample, index) => {
    const next = nextStreak(streak, sample);
    streak = { count: next.count, fetches: next.fetches };
    if (next.parked) parkedAt.push(index);
  });
  return parkedAt;
}

const stuck = (fetches: number): FetchSample => ({ fetches, freeSlot: true, dueWork: true });

describe('fetch watchdog verdict', () => {
  test(`parked after ${PARKED_AFTER_CHECKS} checks in a row with a free slot, due work and no fetch`, () => {
    assert.equal(PARKED_AFTER_CHECKS, 3);
    assert.deepEqual(verdicts([stuck(7), stuck(7), stuck(7)]), [2]);
  });

  test('a fetch between two checks starts the count again', () => {
    assert.deepEqual(verdicts([stuck(1), stuck(1), stuck(2), stuck(2), stuck(3)]), []);
    assert.deepEqual(verdicts([stuck(1), stuck(2), stuck(2), stuck(2)]), [3]);
  });

  test('no free slot, or nothing due, is never parked, and breaks a streak', () => {
    const full: FetchSample = { fetches: 4, freeSlot: false, dueWork: true };
    const idle: FetchSample = { fetches: 4, freeSlot: true, dueWork: false };
    assert.deepEqual(verdicts([full, full, full, full]), []);
    assert.deepEqual(verdicts([idle, idle, idle, idle]), []);
    assert.deepEqual(verdicts([stuck(4), stuck(4), full, stuck(4), stuck(4)]), []);
    assert.deepEqual(verdicts([stuck(4), stuck(4), idle, stuck(4), stuck(4), stuck(4)]), [5]);
  });

  test('after a verdict the count starts again, so a loop that stays parked is reported once per streak', () => {
    assert.deepEqual(verdicts([stuck(0), stuck(0), stuck(0), stuck(0), stuck(0), stuck(0)]), [2, 5]);
  });
});
