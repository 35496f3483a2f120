/**
 * The pure rules of job expiry: how a task's expiry is read and refused, what the expirer does with a
 * due entry given the job as it finds it, when the consumer refuses to start a job, and how an expired
 * job reads.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EXPIRES_OPTION, expiresOption, pastExpiry } from '../../src/contracts/stored-job.js';
import { expiredAtStart } from '../../src/execution/processor.js';
import { expiryAction } from '../../src/expiry/expirer.js';
import { expiryOf } from '../../src/contracts/dispatch.js';
import { expiryProblems, MAX_EXPIRY_MS } from '../../src/http/schemas.js';
import { publicState } from '../../src/jobs/reader.js';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

test('a relative expiry counts from the request; an absolute one is taken as given, offset included', () => {
  assert.equal(expiryOf({ expiresInMs: 5_000 }, NOW), NOW + 5_000);
  assert.equal(expiryOf({ expiresAt: '2026-03-01T14:00:00+02:00' }, NOW), NOW);
  assert.equal(expiryOf({ delayMs: 10 }, NOW), undefined);
  assert.equal(expiryOf(undefined, NOW), undefined);
});

test('an expiry that cannot be met names the field at fault', () => {
  const paths = (options: Parameters<typeof expiryProblems>[0]) => expiryProblems(options, NOW).map((p) => p.path);
  assert.deepEqual(paths({ expiresInMs: 1_000, expiresAt: iso(NOW + 1_000) }), ['expiresAt']);
  assert.deepEqual(paths({ expiresAt: iso(NOW) }), ['expiresAt'], 'now is not in the future');
  assert.deepEqual(paths({ expiresAt: iso(NOW - 1) }), ['expiresAt']);
  assert.deepEqual(paths({ expiresAt: iso(NOW + MAX_EXPIRY_MS + 1) }), ['expiresAt']);
  assert.deepEqual(paths({ expiresAt: iso(NOW + MAX_EXPIRY_MS) }), []);
  assert.deepEqual(paths({ expiresInMs: 1_000, delayMs: 1_000 }), ['delayMs'], 'due as it expires');
  assert.deepEqual(paths({ expiresInMs: 1_000, delayMs: 999 }), []);
  assert.deepEqual(paths({ expiresAt: iso(NOW + 1_000), delayMs: 1_000 }), ['delayMs']);
  assert.deepEqual(paths({ expiresAt: iso(NOW + 1_000), delayMs: 0 }), [], 'no delay');
  assert.deepEqual(paths({ delayMs: 5_000 }), [], 'no expiry');
});

test('the expirer takes out only a job that has not started, and looks again at one being routed', () => {
  const worker = 'host-0';
  assert.equal(expiryAction({ state: 'waiting', assignedWorker: worker, attemptsStarted: 0 }), 'take-out');
  assert.equal(expiryAction({ state: 'prioritized', assignedWorker: worker, attemptsStarted: 0 }), 'take-out');
  // Held for its turn, or delayed and not yet routed (the delayed queue counts its routings as starts).
  assert.equal(expiryAction({ state: 'waiting', assignedWorker: null, attemptsStarted: 0 }), 'take-out');
  assert.equal(expiryAction({ state: 'delayed', assignedWorker: null, attemptsStarted: 2 }), 'take-out');
  assert.equal(expiryAction({ state: 'active', assignedWorker: null, attemptsStarted: 1 }), 'look-again');
  // Started: running, or waiting for a retry.
  assert.equal(expiryAction({ state: 'active', assignedWorker: worker, attemptsStarted: 1 }), 'drop-entry');
  assert.equal(expiryAction({ state: 'delayed', assignedWorker: worker, attemptsStarted: 1 }), 'drop-entry');
  assert.equal(expiryAction({ state: 'waiting', assignedWorker: worker, attemptsStarted: 1 }), 'drop-entry');
  for (const state of ['completed', 'failed', 'cancelled', 'expired']) {
    assert.equal(expiryAction({ state, assignedWorker: worker, attemptsStarted: 0 }), 'drop-entry', state);
  }
});

test('the consumer refuses a first start past the expiry, and never a later one', () => {
  const opts = { [EXPIRES_OPTION]: NOW } as Record<string, unknown>;
  assert.equal(expiredAtStart({ opts, attemptsStarted: 1 }, NOW - 1), false);
  assert.equal(expiredAtStart({ opts, attemptsStarted: 1 }, NOW), true);
  assert.equal(expiredAtStart({ opts, attemptsStarted: 2 }, NOW + 60_000), false, 'a retry, or a re-run');
  assert.equal(expiredAtStart({ opts: {}, attemptsStarted: 1 }, NOW), false, 'no expiry');
});

test('the stored expiry is read back only as a positive integer', () => {
  assert.equal(expiresOption({ [EXPIRES_OPTION]: NOW }), NOW);
  for (const bad of ['1', 0, -5, 1.5, null]) assert.equal(expiresOption({ [EXPIRES_OPTION]: bad }), undefined);
  assert.equal(pastExpiry({}, NOW), false);
  assert.equal(pastExpiry({ [EXPIRES_OPTION]: NOW }, NOW), true);
});

test('a job failed as expired reads as expired, a cancelled one as cancelled, any other failure as failed', () => {
  assert.equal(publicState({ failedReason: 'expired' }, 'failed'), 'expired');
  assert.equal(publicState({ failedReason: 'cancelled' }, 'failed'), 'cancelled');
  assert.equal(publicState({ failedReason: 'boom' }, 'failed'), 'failed');
  assert.equal(publicState({ failedReason: 'expired' }, 'completed'), 'completed');
});
