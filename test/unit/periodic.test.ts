/**
 * `every` never runs its task twice at once: not when `runNow` is asked while a run is under way,
 * however often, and not when the schedule comes due during a run. The task awaits a gate the test
 * opens, so the overlap, if there were one, is not a matter of timing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { every } from '../../src/platform/periodic.js';
import { waitFor } from '../support/wait.js';

/** A task that counts its runs and the most of them under way at once, each held until released. */
function gatedTask() {
  const gates: (() => void)[] = [];
  const state = { runs: 0, running: 0, mostAtOnce: 0 };
  const task = async () => {
    state.runs += 1;
    state.running += 1;
    state.mostAtOnce = Math.max(state.mostAtOnce, state.running);
    await new Promise<void>((resolve) => gates.push(resolve));
    state.running -= 1;
  };
  /** Ends the oldest run still held. */
  const release = () => gates.shift()?.();
  return { task, state, gates, release };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));
const HOUR_MS = 3_600_000;

describe('every', () => {
  test('runNow during a run queues exactly one follow-up, shared by every caller, after that run', async () => {
    const { task, state, release } = gatedTask();
    const periodic = every(HOUR_MS, task, (error) => assert.fail(String(error)));
    try {
      const first = periodic.runNow();
      await settle();
      assert.equal(state.runs, 1);
      const asked = [periodic.runNow(), periodic.runNow(), periodic.runNow()];
      await settle();
      assert.equal(state.runs, 1, 'nothing starts while the first run is under way');
      let followUpDone = false;
      void Promise.all(asked).then(() => (followUpDone = true));
      release();
      await first;
      await settle();
      assert.equal(state.runs, 2, 'one follow-up for the three callers');
      assert.equal(followUpDone, false, 'the callers wait for the follow-up, not for the run they interrupted');
      release();
      await Promise.all(asked);
      assert.equal(state.runs, 2);
      assert.equal(state.mostAtOnce, 1);
    } finally {
      periodic.stop();
    }
  });

  test('a caller that asks again as soon as its run ends gets the queued follow-up, not a second run beside it', async () => {
    const { task, state, release } = gatedTask();
    const periodic = every(HOUR_MS, task, () => {});
    try {
      const again = periodic.runNow().then(() => periodic.runNow());
      await settle();
      const queued = periodic.runNow();
      release();
      await settle();
      assert.equal(state.running, 1);
      release();
      await Promise.all([again, queued]);
      assert.equal(state.runs, 2);
      assert.equal(state.mostAtOnce, 1);
    } finally {
      periodic.stop();
    }
  });

  test('the schedule coming due during a run asked for with runNow joins it', async () => {
    const { task, state, gates, release } = gatedTask();
    // Due every millisecond: the schedule comes due many times while each run is held open.
    const periodic = every(1, task, () => {});
    try {
      await waitFor(() => gates.length === 1, { what: 'the first scheduled run' });
      const asked = periodic.runNow();
      for (let i = 0; i < 5; i += 1) {
        await waitFor(() => gates.length === 1, { what: `run ${i + 2}` });
        release();
      }
      await asked;
      assert.ok(state.runs >= 5);
      assert.equal(state.mostAtOnce, 1);
    } finally {
      periodic.stop();
      while (gates.length > 0) release();
    }
  });

  test('a failing run is reported and the next one still comes', async () => {
    const errors: unknown[] = [];
    let runs = 0;
    const periodic = every(
      1,
      () => {
        runs += 1;
        return runs === 1 ? Promise.reject(new Error('redis away')) : Promise.resolve();
      },
      (error) => errors.push(error),
    );
    try {
      await waitFor(() => runs >= 2, { what: 'a second run' });
      assert.deepEqual(
        errors.map((error) => (error as Error).message),
        ['redis away'],
      );
    } finally {
      periodic.stop();
    }
  });

  test('no run starts after stop', async () => {
    const { task, state, release } = gatedTask();
    const periodic = every(HOUR_MS, task, () => {});
    const first = periodic.runNow();
    await settle();
    const queued = periodic.runNow();
    periodic.stop();
    release();
    await Promise.all([first, queued]);
    assert.equal(state.runs, 1);
  });
});
