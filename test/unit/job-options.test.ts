import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/config.js';
import { jobOptionsFrom, retentionFrom } from '../../src/queue/job-options.js';

describe('jobOptionsFrom', () => {
  test('maps attempts and backoff from the config, and nothing else: retention is the consumer’s', () => {
    const options = jobOptionsFrom({ jobAttempts: 5, jobBackoffMs: 750 });
    assert.deepEqual(options, { attempts: 5, backoff: { type: 'exponential', delay: 750 } });
  });

  test('defaults: 3 attempts, 1 s backoff', () => {
    assert.deepEqual(jobOptionsFrom(loadConfig({})), { attempts: 3, backoff: { type: 'exponential', delay: 1_000 } });
  });

  test('the result is frozen', () => {
    assert.ok(Object.isFrozen(jobOptionsFrom(loadConfig({}))));
  });
});

describe('retentionFrom', () => {
  test('completed and failed retention are not swapped', () => {
    const retention = retentionFrom({
      retention: { completed: { ageSeconds: 1, count: 2 }, failed: { ageSeconds: 3, count: 4 } },
    });
    assert.deepEqual(retention.removeOnComplete, { age: 1, count: 2 });
    assert.deepEqual(retention.removeOnFail, { age: 3, count: 4 });
  });

  test('with a loaded config, and its defaults: 1 h / 1000 completed, 7 d / 10000 failed', () => {
    const config = loadConfig({
      COMPLETED_RETENTION_SECONDS: '120',
      COMPLETED_RETENTION_COUNT: '50',
      FAILED_RETENTION_SECONDS: '86400',
      FAILED_RETENTION_COUNT: '500',
    });
    assert.deepEqual(retentionFrom(config), {
      removeOnComplete: { age: 120, count: 50 },
      removeOnFail: { age: 86_400, count: 500 },
    });
    assert.deepEqual(retentionFrom(loadConfig({})), {
      removeOnComplete: { age: 3_600, count: 1_000 },
      removeOnFail: { age: 604_800, count: 10_000 },
    });
  });
});
