/**
 * When a schedule's ticks fall and what a claimed tick makes (src/schedules/rules.ts), without Redis
 * or a clock: interval ticks from their anchor, cron ticks in a time zone and across a DST change,
 * `startAt` and `endAt`, the floor on intervals, and the plan of a tick: on time, late (a claimer
 * died: still its own job), or missed while no process ran (one job for all with `runOnce`, none
 * with `skip`, never a burst), with `limit` ending the schedule.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ScheduleDefinition } from '../../src/schedules/definition.js';
import { planTick, ruleProblem, tickAfter, ticksWithin } from '../../src/schedules/rules.js';
import { testDefinition } from '../support/schedules.js';

const T0 = Date.parse('2027-01-10T12:00:00Z');

function definition(overrides: Partial<ScheduleDefinition> = {}): ScheduleDefinition {
  return testDefinition(T0, overrides);
}

describe('tickAfter', () => {
  test('interval ticks fall every everyMs from the anchor, strictly after the time given', () => {
    const every = definition();
    assert.equal(tickAfter(every, T0 - 5_000), T0);
    assert.equal(tickAfter(every, T0 - 1), T0);
    assert.equal(tickAfter(every, T0), T0 + 1_000);
    assert.equal(tickAfter(every, T0 + 1), T0 + 1_000);
    assert.equal(tickAfter(every, T0 + 2_999), T0 + 3_000);
  });

  test("cron ticks fall in the schedule's zone, across a change of daylight saving time", () => {
    const berlin = definition({ rule: { cron: '0 3 * * *', tz: 'Europe/Berlin' } });
    // Winter: 03:00 in Berlin is 02:00 UTC; summer: 01:00 UTC.
    assert.equal(new Date(tickAfter(berlin, T0) ?? 0).toISOString(), '2027-01-11T02:00:00.000Z');
    const july = Date.parse('2027-07-10T12:00:00Z');
    assert.equal(new Date(tickAfter(berlin, july) ?? 0).toISOString(), '2027-07-11T01:00:00.000Z');
    const seconds = definition({ rule: { cron: '*/15 * * * * *', tz: 'UTC' } });
    assert.equal(tickAfter(seconds, T0), T0 + 15_000);
  });

  test('no tick before startAt, none after endAt', () => {
    const cron = definition({ rule: { cron: '* * * * *', tz: 'UTC' }, startAt: T0 + 3_600_000 });
    assert.equal(tickAfter(cron, T0), T0 + 3_600_000, 'the first minute at or after startAt');
    const ending = definition({ endAt: T0 + 2_500 });
    assert.equal(tickAfter(ending, T0 + 1_000), T0 + 2_000);
    assert.equal(tickAfter(ending, T0 + 2_000), null);
  });
});

describe('ruleProblem', () => {
  test('names the field at fault: a cron that does not parse, an unknown zone, ticks closer than the floor', () => {
    assert.equal(ruleProblem({ everyMs: 1_000 }, 1_000), undefined);
    assert.equal(ruleProblem({ everyMs: 999 }, 1_000)?.path, 'everyMs');
    assert.equal(ruleProblem({ cron: '0 3 * * *', tz: 'Asia/Tokyo' }, 1_000), undefined);
    assert.equal(ruleProblem({ cron: '0 3 * * *', tz: 'Nowhere/Atlantis' }, 1_000)?.path, 'tz');
    assert.equal(ruleProblem({ cron: '0 25 * * *', tz: 'UTC' }, 1_000)?.path, 'cron');
    assert.equal(ruleProblem({ cron: '* * * * * *', tz: 'UTC' }, 1_000), undefined);
    assert.equal(ruleProblem({ cron: '* * * * * *', tz: 'UTC' }, 2_000)?.path, 'cron');
  });
});

describe('ticksWithin', () => {
  test('counts the ticks of a span, both ends in, and names the last', () => {
    assert.deepEqual(ticksWithin(definition(), T0, T0 + 9_500), { count: 10, last: T0 + 9_000 });
    assert.deepEqual(ticksWithin(definition(), T0 + 500, T0 + 900), { count: 0, last: null });
    const cron = definition({ rule: { cron: '*/10 * * * * *', tz: 'UTC' } });
    assert.deepEqual(ticksWithin(cron, T0, T0 + 60_000), { count: 7, last: T0 + 60_000 });
    assert.deepEqual(ticksWithin(definition({ endAt: T0 + 4_000 }), T0, T0 + 9_000), { count: 5, last: T0 + 4_000 });
  });
});

describe('planTick', () => {
  const down = { from: T0 - 500, to: T0 + 60_200 };

  test('a tick on time makes its job, and the next tick follows it', () => {
    assert.deepEqual(planTick(definition(), { tick: T0, runs: 0, down: undefined }, T0 + 10), {
      jobTick: T0,
      missed: 0,
      next: T0 + 1_000,
    });
  });

  test('a late tick (its claimer died, the pool ran) still makes its own job; the ticks after come one by one', () => {
    const outsideDown = { from: T0 - 60_000, to: T0 - 50_000 };
    assert.deepEqual(planTick(definition(), { tick: T0, runs: 3, down: outsideDown }, T0 + 7_000), {
      jobTick: T0,
      missed: 0,
      next: T0 + 1_000,
    });
  });

  test('ticks missed while no process ran: runOnce makes one job, for the last, and counts the rest', () => {
    assert.deepEqual(planTick(definition(), { tick: T0, runs: 3, down }, T0 + 60_200), {
      jobTick: T0 + 60_000,
      missed: 60,
      next: T0 + 61_000,
    });
  });

  test('ticks missed while no process ran: skip makes none and counts them all', () => {
    assert.deepEqual(planTick(definition({ missedTicks: 'skip' }), { tick: T0, runs: 3, down }, T0 + 60_200), {
      jobTick: null,
      missed: 61,
      next: T0 + 61_000,
    });
  });

  test('limit counts jobs: the job that reaches it ends the schedule', () => {
    const limited = definition({ limit: 4 });
    assert.equal(planTick(limited, { tick: T0, runs: 2, down: undefined }, T0).next, T0 + 1_000);
    assert.deepEqual(planTick(limited, { tick: T0, runs: 3, down: undefined }, T0), {
      jobTick: T0,
      missed: 0,
      next: null,
    });
    // Skipping missed ticks makes no job, so it does not count toward the limit.
    const skipping = definition({ limit: 4, missedTicks: 'skip' });
    assert.equal(planTick(skipping, { tick: T0, runs: 3, down }, T0 + 60_200).next, T0 + 61_000);
  });
});
