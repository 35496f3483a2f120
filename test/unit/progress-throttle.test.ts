/**
 * Progress coalesced in the job's thread: at most one send per interval, counted from the run's start,
 * each the latest value; a value that waits goes out when the interval is up; the last value not
 * sent comes back from finish() (the runner puts it in the run's outcome). Time is the test's mock
 * clock. Then the runner itself, run here outside a thread: what its outcome carries.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import type { JobProgress, RunnerTask } from '../../src/contracts/thread.js';
import { createProgressThrottle } from '../../workers/progress-throttle.js';
import run from '../../workers/runner.js';

const INTERVAL_MS = 1_000;

function throttle(intervalMs = INTERVAL_MS) {
  const sent: JobProgress[] = [];
  return { sent, progress: createProgressThrottle({ intervalMs, send: (value) => sent.push(value) }) };
}

describe('progress throttle', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  test('a body shorter than the interval sends nothing: its last value comes back from finish', () => {
    const { sent, progress } = throttle();
    for (let i = 1; i <= 1_000; i += 1) progress.report(i / 10);
    mock.timers.tick(INTERVAL_MS - 1);
    assert.deepEqual(sent, []);
    assert.deepEqual(progress.finish(), { progress: 100 });
    assert.equal(progress.sent, 0);
    progress.report(7);
    mock.timers.tick(10 * INTERVAL_MS);
    assert.deepEqual(sent, [], 'nothing after finish, reported or waiting');
  });

  test('1,000 reports over ten intervals: one send per interval, each the latest value', () => {
    const { sent, progress } = throttle();
    for (let i = 1; i <= 1_000; i += 1) {
      progress.report(i);
      mock.timers.tick(10);
    }
    assert.ok(sent.length <= 10, `${sent.length} sends`);
    assert.ok(sent.length >= 9, `${sent.length} sends`);
    assert.ok(
      sent.every((value, i) => i === 0 || (value as number) >= (sent[i - 1] as number) + 100),
      `an interval apart: ${JSON.stringify(sent)}`,
    );
    const last = progress.finish();
    assert.equal(progress.sent, sent.length);
    assert.deepEqual(
      last === undefined ? sent.at(-1) : last.progress,
      1_000,
      'the last value was sent, or comes back from finish',
    );
  });

  test('a value that waits is sent when the interval is up, without another report', () => {
    const { sent, progress } = throttle();
    progress.report(10);
    progress.report(20);
    mock.timers.tick(INTERVAL_MS - 1);
    assert.deepEqual(sent, []);
    mock.timers.tick(1);
    assert.deepEqual(sent, [20], 'the latest value, once');
    mock.timers.tick(5 * INTERVAL_MS);
    progress.report(30);
    assert.deepEqual(sent, [20, 30], 'an interval has passed since the last send: at once');
    assert.equal(progress.finish(), undefined, 'nothing left unsent');
  });

  test('a number equal to the last reported is no news; objects always are', () => {
    const { sent, progress } = throttle();
    mock.timers.tick(INTERVAL_MS);
    progress.report(40);
    progress.report(40);
    mock.timers.tick(INTERVAL_MS);
    progress.report(40);
    mock.timers.tick(INTERVAL_MS);
    assert.deepEqual(sent, [40]);
    assert.equal(progress.finish(), undefined);

    const objects = throttle();
    mock.timers.tick(INTERVAL_MS);
    objects.progress.report({ step: 1 });
    mock.timers.tick(INTERVAL_MS);
    objects.progress.report({ step: 1 });
    assert.deepEqual(objects.sent, [{ step: 1 }, { step: 1 }]);
  });

  test('an interval of 0 sends every value that is news, as it is reported', () => {
    const { sent, progress } = throttle(0);
    for (const value of [0, 50, 50, 100]) progress.report(value);
    assert.deepEqual(sent, [0, 50, 100]);
    assert.equal(progress.finish(), undefined);
  });
});

describe('runner outcome', () => {
  // Handlers of the code itself, run here outside a thread (where there is no channel to send on).
  const dummy = new URL('../../workers/dummy.js', import.meta.url).href;
  const flaky = new URL('../fixtures/handlers/flaky.js', import.meta.url).href;
  const task = (handlerUrl: string, fields: Partial<RunnerTask> = {}): RunnerTask => ({
    handlerUrl,
    runKey: 1,
    progressIntervalMs: 60_000,
    jobId: 'job',
    jobName: 'job',
    attempt: 1,
    data: {},
    durationMs: 0,
    ...fields,
  });

  test('a body shorter than the interval sends no message: its last value comes in the outcome', async () => {
    const outcome = await run(task(dummy));
    assert.ok('returned' in outcome, 'the dummy returned');
    assert.equal(outcome.progressMessages, 0);
    assert.equal(outcome.lastProgress, 100);
  });

  test('a body that throws still hands back its last value; a silent body none', async () => {
    const thrown = await run(task(dummy, { data: { fail: 'no' } }));
    assert.ok('threw' in thrown && thrown.threw instanceof Error && thrown.threw.message === 'no');
    // The dummy asked to fail throws where its last step would report 100: a failed job never reads done.
    assert.equal(thrown.lastProgress, 90);
    const silent = await run(task(flaky, { attempt: 2 }));
    // threadId: the thread that ran it, here the main thread (0).
    assert.deepEqual(silent, { returned: { ok: true, attempt: 2 }, progressMessages: 0, threadId: 0 });
  });

  test('with an interval of 0 every report is sent, and nothing is left for the outcome', async () => {
    const outcome = await run(task(dummy, { progressIntervalMs: 0 }));
    assert.equal(outcome.progressMessages, 11);
    assert.equal(outcome.lastProgress, undefined);
  });
});
