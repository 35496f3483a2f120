import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/config.js';
import { jobOptionsFrom } from '../../src/queue/job-options.js';

describe('jobOptionsFrom', () => {
  test('maps attempts, backoff and retention from the config', () => {
    const options = jobOptionsFrom({
      jobAttempts: 5,
      jobBackoffMs: 750,
      retention: { completed: { ageSeconds: 60, count: 10 }, failed: { ageSeconds: 3_600, count: 200 } },
    });
    assert.deepEqual(options, {
      attempts: 5,
      backoff: { type: 'exponential', delay: 750 },
      removeOnComplete: { age: 60, count: 10 },
      removeOnFail: { age: 3_600, count: 200 },
    });
  });

  test('completed and failed retention are not swapped', () => {
    const options = jobOptionsFrom({
      jobAttempts: 1,
      jobBackoffMs: 0,
      retention: { completed: { ageSeconds: 1, count: 2 }, failed: { ageSeconds: 3, count: 4 } },
    });
    assert.deepEqual(options.removeOnComplete, { age: 1, count: 2 });
    assert.deepEqual(options.removeOnFail, { age: 3, count: 4 });
  });

  test('with a loaded config', () => {
    const config = loadConfig({
      JOB_ATTEMPTS: '7',
      JOB_BACKOFF_MS: '2000',
      COMPLETED_RETENTION_SECONDS: '120',
      COMPLETED_RETENTION_COUNT: '50',
      FAILED_RETENTION_SECONDS: '86400',
      FAILED_RETENTION_COUNT: '500',
    });
    assert.deepEqual(jobOptionsFrom(config), {
      attempts: 7,
      backoff: { type: 'exponential', delay: 2_000 },
      removeOnComplete: { age: 120, count: 50 },
      removeOnFail: { age: 86_400, count: 500 },
    });
  });

  test('defaults: 3 attempts, 1 s backoff, 1 h / 1000 completed, 7 d / 10000 failed', () => {
    assert.deepEqual(jobOptionsFrom(loadConfig({})), {
      attempts: 3,
      backoff: { type: 'exponential', delay: 1_000 },
      removeOnComplete: { age: 3_600, count: 1_000 },
      removeOnFail: { age: 604_800, count: 10_000 },
    });
  });

  test('the result is frozen', () => {
    assert.ok(Object.isFrozen(jobOptionsFrom(loadConfig({}))));
  });
});
