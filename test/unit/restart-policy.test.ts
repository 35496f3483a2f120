import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_RESTART_POLICY, restartDelay, type RestartPolicy } from '../../src/primary/restart-policy.js';

const policy: RestartPolicy = { windowMs: 10_000, baseDelayMs: 100, maxDelayMs: 1_000 };
const NOW = 1_000_000;

/** `count` crashes in the last second before NOW, oldest first. */
function recentCrashes(count: number): number[] {
  return Array.from({ length: count }, (_, i) => NOW - 1_000 + i);
}

describe('restartDelay', () => {
  test('the first crash is answered at once', () => {
    assert.equal(restartDelay([], NOW, policy), 0);
    assert.equal(restartDelay([], NOW), 0);
  });

  test('grows exponentially with the number of recent crashes', () => {
    assert.equal(restartDelay(recentCrashes(1), NOW, policy), 100);
    assert.equal(restartDelay(recentCrashes(2), NOW, policy), 200);
    assert.equal(restartDelay(recentCrashes(3), NOW, policy), 400);
    assert.equal(restartDelay(recentCrashes(4), NOW, policy), 800);
  });

  test('is capped at maxDelayMs', () => {
    assert.equal(restartDelay(recentCrashes(5), NOW, policy), 1_000);
    assert.equal(restartDelay(recentCrashes(50), NOW, policy), 1_000);
    // Far beyond the point where 2 ** n overflows to Infinity.
    assert.equal(restartDelay(recentCrashes(2_000), NOW, policy), 1_000);
  });

  test('never decreases as crashes accumulate', () => {
    let previous = -1;
    for (let count = 0; count <= 20; count += 1) {
      const delay = restartDelay(recentCrashes(count), NOW, policy);
      assert.ok(delay >= previous, `${count} crashes: ${delay} < ${previous}`);
      previous = delay;
    }
  });

  test('crashes older than the window are ignored', () => {
    const old = [NOW - 50_000, NOW - 20_000, NOW - 10_001];
    assert.equal(restartDelay(old, NOW, policy), 0);
    assert.equal(restartDelay([...old, NOW - 500], NOW, policy), 100);
    assert.equal(restartDelay([...old, NOW - 600, NOW - 500], NOW, policy), 200);
  });

  test('a crash exactly one window ago is outside it', () => {
    assert.equal(restartDelay([NOW - 10_000], NOW, policy), 0);
    assert.equal(restartDelay([NOW - 9_999], NOW, policy), 100);
  });

  test('the default policy: 60 s window, 250 ms base, 30 s cap', () => {
    assert.deepEqual({ ...DEFAULT_RESTART_POLICY }, { windowMs: 60_000, baseDelayMs: 250, maxDelayMs: 30_000 });
    assert.ok(Object.isFrozen(DEFAULT_RESTART_POLICY));
    assert.equal(restartDelay([NOW - 59_000], NOW), 250);
    assert.equal(restartDelay([NOW - 60_000], NOW), 0);
    assert.equal(restartDelay([NOW - 3, NOW - 2, NOW - 1], NOW), 1_000);
    assert.equal(restartDelay(recentCrashes(20), NOW), 30_000);
  });

  test('does not modify the crash list', () => {
    const crashes = [NOW - 20_000, NOW - 5];
    restartDelay(crashes, NOW, policy);
    assert.deepEqual(crashes, [NOW - 20_000, NOW - 5]);
  });
});
