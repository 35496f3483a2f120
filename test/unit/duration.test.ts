import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { durationFor, timeoutFor } from '../../src/execution/job-limits.js';

const DEFAULT = 12_000;
const MAX = 60_000;

describe('durationFor', () => {
  test('uses the default when durationMs is absent', () => {
    assert.equal(durationFor({}, DEFAULT, MAX), DEFAULT);
    assert.equal(durationFor({ other: 5 }, DEFAULT, MAX), DEFAULT);
  });

  test('uses the default when durationMs is not a finite non-negative number', () => {
    for (const durationMs of [
      '500',
      null,
      undefined,
      true,
      {},
      [],
      -1,
      -0.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ]) {
      assert.equal(durationFor({ durationMs }, DEFAULT, MAX), DEFAULT, `durationMs ${inspect(durationMs)}`);
    }
  });

  test('uses a valid durationMs', () => {
    assert.equal(durationFor({ durationMs: 0 }, DEFAULT, MAX), 0);
    assert.equal(durationFor({ durationMs: 1_500 }, DEFAULT, MAX), 1_500);
    assert.equal(durationFor({ durationMs: MAX }, DEFAULT, MAX), MAX);
  });

  test('clamps to the maximum', () => {
    assert.equal(durationFor({ durationMs: MAX + 1 }, DEFAULT, MAX), MAX);
    assert.equal(durationFor({ durationMs: Number.MAX_SAFE_INTEGER }, DEFAULT, MAX), MAX);
  });

  test('floors fractions', () => {
    assert.equal(durationFor({ durationMs: 1_500.9 }, DEFAULT, MAX), 1_500);
    assert.equal(durationFor({ durationMs: 0.4 }, DEFAULT, MAX), 0);
  });

  test('the default is returned as given, even above the maximum', () => {
    // Config validation keeps TASK_DURATION_MS <= MAX_TASK_DURATION_MS; this function does not re-check it.
    assert.equal(durationFor({}, 5, 2), 5);
  });
});

describe('timeoutFor', () => {
  const LIMIT = 10_000;

  test('the limit when the job asks for nothing usable', () => {
    for (const timeoutMs of [undefined, 0, -1, 1.5, '500', Number.NaN, null]) {
      assert.equal(timeoutFor(timeoutMs, LIMIT), LIMIT, String(timeoutMs));
    }
  });

  test('a shorter asked limit wins; a longer one is capped', () => {
    assert.equal(timeoutFor(250, LIMIT), 250);
    assert.equal(timeoutFor(LIMIT * 2, LIMIT), LIMIT);
  });
});
