/**
 * The progress writer's promises: at most one write per interval, each with the latest value; one
 * write at a time; and the final value always written by finish(). Time is the test's mock clock and
 * writes are held open by the test, so the order of events is set by the test, not by timing.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { createProgressWriter } from '../../src/execution/progress.js';
import type { JobProgress } from '../../workers/handler.js';

const INTERVAL_MS = 1_000;

/** A write that stays in flight until the test ends it. */
interface HeldWrite {
  readonly progress: JobProgress;
  end(error?: Error): void;
}

function heldWrites() {
  const writes: HeldWrite[] = [];
  const write = (progress: JobProgress) =>
    new Promise<void>((resolve, reject) =>
      writes.push({ progress, end: (error) => (error ? reject(error) : resolve()) }),
    );
  /** Ends every write in flight, as a fast Redis would. */
  const endAll = () => {
    for (const held of writes) held.end();
  };
  return { writes, write, endAll, values: () => writes.map((held) => held.progress) };
}

/** Lets every promise callback that is ready run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

const failOnError = (error: unknown) => assert.fail(String(error));

describe('progress writer', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  test('a job shorter than the interval costs one write: its final value', async () => {
    const { write, values, endAll } = heldWrites();
    const progress = createProgressWriter({ write, onError: failOnError, intervalMs: INTERVAL_MS });
    for (const value of [0, 10, 20, 50, 90, 100]) progress.report(value);
    mock.timers.tick(INTERVAL_MS - 1);
    await settle();
    assert.deepEqual(values(), [], 'nothing before the interval');
    const finished = progress.finish();
    assert.deepEqual(values(), [100], 'the final value is sent at once, not after a tick');
    endAll();
    await finished;
    mock.timers.tick(10 * INTERVAL_MS);
    await settle();
    assert.deepEqual(values(), [100], 'and nothing after');
  });

  test('a long job writes the latest value once per interval, then its final value', async () => {
    const { write, values, endAll } = heldWrites();
    const progress = createProgressWriter({ write, onError: failOnError, intervalMs: INTERVAL_MS });
    progress.report(10);
    mock.timers.tick(INTERVAL_MS);
    await settle();
    assert.deepEqual(values(), [10]);
    endAll();
    await settle();
    mock.timers.tick(200);
    progress.report(20);
    progress.report(30);
    mock.timers.tick(700);
    await settle();
    assert.deepEqual(values(), [10], 'not before an interval has passed since the last write began');
    mock.timers.tick(100);
    await settle();
    assert.deepEqual(values(), [10, 30], 'the latest value, not every value');
    endAll();
    await settle();
    progress.report(100);
    const finished = progress.finish();
    endAll();
    await finished;
    assert.deepEqual(values(), [10, 30, 100]);
  });

  test('one write at a time: values reported during a slow write collapse into the latest', async () => {
    const { writes, write, values } = heldWrites();
    const progress = createProgressWriter({ write, onError: failOnError, intervalMs: INTERVAL_MS });
    progress.report(10);
    mock.timers.tick(INTERVAL_MS);
    await settle();
    for (const value of [20, 30, 40]) progress.report(value);
    mock.timers.tick(5 * INTERVAL_MS);
    await settle();
    assert.deepEqual(values(), [10], 'the slow write is still in flight');
    writes[0]?.end();
    await settle();
    mock.timers.tick(0);
    await settle();
    assert.deepEqual(values(), [10, 40], 'the interval has long passed: the latest value goes at once');
  });

  test('finish waits for the write in flight, then writes the final value, and settles after it', async () => {
    const { writes, write, values } = heldWrites();
    const progress = createProgressWriter({ write, onError: failOnError, intervalMs: INTERVAL_MS });
    progress.report(50);
    mock.timers.tick(INTERVAL_MS);
    await settle();
    progress.report(100);
    let finished = false;
    void progress.finish().then(() => (finished = true));
    await settle();
    assert.deepEqual(values(), [50], 'never two writes at once');
    writes[0]?.end();
    await settle();
    assert.deepEqual(values(), [50, 100]);
    assert.equal(finished, false, 'not finished while the final value is in flight');
    writes[1]?.end();
    await settle();
    assert.equal(finished, true);
  });

  test('a failed write is reported, and the values after it are still written', async () => {
    const { writes, write, values } = heldWrites();
    const errors: unknown[] = [];
    const progress = createProgressWriter({ write, onError: (error) => errors.push(error), intervalMs: 0 });
    progress.report(50);
    mock.timers.tick(0);
    await settle();
    progress.report({ step: 'last' });
    writes[0]?.end(new Error('redis went away'));
    await settle();
    mock.timers.tick(0);
    await settle();
    writes[1]?.end();
    await progress.finish();
    assert.deepEqual(values(), [50, { step: 'last' }]);
    assert.deepEqual(
      errors.map((error) => (error as Error).message),
      ['redis went away'],
    );
  });

  test('a number just written is not written again; objects always are', async () => {
    const { write, values, endAll } = heldWrites();
    const progress = createProgressWriter({ write, onError: failOnError, intervalMs: 0 });
    progress.report(40);
    mock.timers.tick(0);
    await settle();
    endAll();
    await settle();
    progress.report(40);
    mock.timers.tick(0);
    await settle();
    await progress.finish();
    assert.deepEqual(values(), [40]);

    const objects = heldWrites();
    const other = createProgressWriter({ write: objects.write, onError: failOnError, intervalMs: 0 });
    other.report({ step: 1 });
    mock.timers.tick(0);
    await settle();
    objects.endAll();
    await settle();
    other.report({ step: 1 });
    const finished = other.finish();
    objects.endAll();
    await finished;
    assert.equal(objects.values().length, 2);
  });

  test('finish without any report writes nothing and settles at once; later reports are ignored', async () => {
    const progress = createProgressWriter({
      write: () => assert.fail('nothing to write'),
      onError: failOnError,
      intervalMs: INTERVAL_MS,
    });
    await progress.finish();
    progress.report(10);
    mock.timers.tick(10 * INTERVAL_MS);
    await settle();
  });
});
