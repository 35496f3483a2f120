/**
 * The progress writer's one promise: once `flush()` settles, the last value the body reported has
 * been written, however slow the writes and whatever failed before it. The writes are held open by
 * the test, so the order of events is set by the test, not by timing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createProgressWriter } from '../../src/queue/progress.js';
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
  return { writes, write };
}

/** Lets every promise callback that is ready run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('progress writer', () => {
  test('flush settles only once the last reported value is written', async () => {
    const { writes, write } = heldWrites();
    const progress = createProgressWriter(write, (error) => assert.fail(String(error)));
    progress.report(10);
    let flushed = false;
    void progress.flush().then(() => (flushed = true));
    progress.report(20);
    await settle();
    assert.deepEqual(
      writes.map((w) => w.progress),
      [10],
      'one write at a time',
    );
    writes[0]?.end();
    await settle();
    assert.deepEqual(
      writes.map((w) => w.progress),
      [10, 20],
    );
    assert.equal(flushed, false, 'not flushed while the last value is in flight');
    writes[1]?.end();
    await settle();
    assert.equal(flushed, true);
  });

  test('values reported during a slow write collapse into the latest, which is always written', async () => {
    const { writes, write } = heldWrites();
    const progress = createProgressWriter(write, (error) => assert.fail(String(error)));
    for (const value of [0, 10, 20, 30, 90, 100]) progress.report(value);
    const flushed = progress.flush();
    await settle();
    writes[0]?.end();
    await settle();
    writes[1]?.end();
    await flushed;
    assert.deepEqual(
      writes.map((w) => w.progress),
      [0, 100],
    );
  });

  test('a failed write is reported, and the values after it are still written', async () => {
    const { writes, write } = heldWrites();
    const errors: unknown[] = [];
    const progress = createProgressWriter(write, (error) => errors.push(error));
    progress.report(50);
    progress.report({ step: 'last' });
    await settle();
    writes[0]?.end(new Error('redis went away'));
    await settle();
    writes[1]?.end();
    await progress.flush();
    assert.deepEqual(
      writes.map((w) => w.progress),
      [50, { step: 'last' }],
    );
    assert.deepEqual(
      errors.map((error) => (error as Error).message),
      ['redis went away'],
    );
  });

  test('flush without any report settles at once', async () => {
    const progress = createProgressWriter(
      () => assert.fail('nothing to write'),
      () => {},
    );
    await progress.flush();
  });
});
