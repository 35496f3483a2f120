/**
 * The signal that stops an attempt: at its time-out as a time-out, at a cancel with the cancel's
 * reason, and never once the attempt has ended.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attemptSignal } from '../../src/execution/attempt-signal.js';

test('it aborts at the time-out, with a TimeoutError', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { signal } = attemptSignal(1_000, undefined);
  t.mock.timers.tick(999);
  assert.equal(signal.aborted, false);
  t.mock.timers.tick(1);
  assert.equal(signal.aborted, true);
  assert.equal((signal.reason as DOMException).name, 'TimeoutError');
});

test('it aborts when the job is cancelled, before or while it runs, with the cancel as the reason', () => {
  const cancel = new AbortController();
  const running = attemptSignal(60_000, cancel.signal);
  cancel.abort('cancelled');
  assert.equal(running.signal.aborted, true);
  assert.equal(running.signal.reason, 'cancelled');
  running.done();
  const late = attemptSignal(60_000, cancel.signal);
  assert.equal(late.signal.aborted, true, 'a job cancelled before it started stops at once');
  late.done();
});

test('once the attempt has ended, neither the time-out nor a cancel reaches it', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const cancel = new AbortController();
  const attempt = attemptSignal(1_000, cancel.signal);
  attempt.done();
  t.mock.timers.tick(5_000);
  cancel.abort('cancelled');
  assert.equal(attempt.signal.aborted, false);
});
