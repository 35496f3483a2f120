/**
 * The progress writer's promises: one write at a time, values reported meanwhile collapsing into the
 * latest, and the final value always written by finish(), sent at once. Writes are held open by the
 * test, so the order of events is set by the test, not by timing. (The thread coalesces over time
 * before values reach the writer: see progress-throttle.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createProgressWriter } from '../../src/execution/progress.js';
import type { JobProgress } from '../../workers/handler.js';

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
  return { writes, write, values: () => writes.map((held) => held.progress) };
}

/** Lets every promise callback that is ready run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

const failOnError = (error: unknown) => assert.fail(String(error));

describe('progress writer', () => {
  test('a value is written at once; those reported during the write collapse into the latest', async () => {
    const { writes, write, values } = heldWrites();
    const progress = createProgressWriter({ write, onError: failOnError });
    progress.report(10);
    assert.deepEqual(values(), [10], 'nothing in flight: written at once');
    for (const value of [20, 30, 40]) progress.report(value);
    await settle();
    assert.deepEqual(values(), [10], 'never two writes at once');
    writes[0]?.end();
    await settle();
    assert.deepEqual(values(), [10, 40], 'the latest value, not every value');
    writes[1]?.end();
    await settle();
    await progress.finish();
    assert.deepEqual(values(), [10, 40], 'finish has nothing left to write');
  });

  test('finish sends the final value at once, behind the write in flight, and settles after both', async () => {
    const { writes, write, values } = heldWrites();
    const progress = createProgressWriter({ write, onError: failOnError });
    progress.report(50);
    progress.report(100);
    let finished = false;
    void progress.finish().then(() => (finished = true));
    // Before any await: the caller's next command (the job's completion) goes out behind it.
    assert.deepEqual(values(), [50, 100], 'sent in the order reported, the last without waiting');
    writes[1]?.end();
    await settle();
    assert.equal(finished, false, 'not finished while an earlier write is in flight');
    writes[0]?.end();
    await settle();
    assert.equal(finished, true);
    assert.deepEqual(values(), [50, 100], 'nothing written twice');
  });

  test('a failed write is reported, and the values after it are still written', async () => {
    const { writes, write, values } = heldWrites();
    const errors: unknown[] = [];
    const progress = createProgressWriter({ write, onError: (error) => errors.push(error) });
    progress.report(50);
    progress.report({ step: 'last' });
    writes[0]?.end(new Error('redis went away'));
    await settle();
    writes[1]?.end();
    await progress.finish();
    assert.deepEqual(values(), [50, { step: 'last' }]);
    assert.deepEqual(
      errors.map((error) => (error as Error).message),
      ['redis went away'],
    );
  });

  test('finish without any report writes nothing and settles at once; later reports are ignored', async () => {
    const progress = createProgressWriter({ write: () => assert.fail('nothing to write'), onError: failOnError });
    await progress.finish();
    progress.report(10);
    await settle();
  });
});
