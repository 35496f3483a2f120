import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createEnqueueSchema,
  describeIssues,
  JOB_NAME_MAX_LENGTH,
  MAX_DATA_DEPTH,
  MAX_DELAY_MS,
  type ValidationIssue,
} from '../../src/http/schemas.js';

const MAX = 60_000;
const MAX_TIMEOUT = 120_000;
const schema = createEnqueueSchema({ maxDurationMs: MAX, maxTimeoutMs: MAX_TIMEOUT });

/** The issues for an input the schema must reject. */
function issuesFor(input: unknown): ValidationIssue[] {
  const result = schema.safeParse(input);
  assert.equal(result.success, false, `expected ${JSON.stringify(input)} to be rejected`);
  assert.ok(!result.success);
  return describeIssues(result.error);
}

function accepts(input: unknown): { jobName: string; data: Record<string, unknown>; options?: unknown } {
  const result = schema.safeParse(input);
  assert.ok(
    result.success,
    `expected ${JSON.stringify(input)} to be accepted: ${result.success ? '' : JSON.stringify(describeIssues(result.error))}`,
  );
  return result.data;
}

function paths(input: unknown): string[] {
  return issuesFor(input).map((issue) => issue.path);
}

describe('createEnqueueSchema: valid input', () => {
  test('accepts a job name with data', () => {
    const parsed = accepts({ jobName: 'resize-image', data: { width: 100, nested: { list: [1, 'two', null] } } });
    assert.deepEqual(parsed, { jobName: 'resize-image', data: { width: 100, nested: { list: [1, 'two', null] } } });
  });

  test('data defaults to an empty object', () => {
    assert.deepEqual(accepts({ jobName: 'a' }), { jobName: 'a', data: {} });
  });

  test('accepts job names with letters, digits and _ . : -', () => {
    for (const jobName of ['a', '0', 'A_b.c:d-e', 'report.v2', 'x'.repeat(JOB_NAME_MAX_LENGTH)]) {
      assert.equal(accepts({ jobName }).jobName, jobName);
    }
  });

  test('accepts durationMs 0, exactly the maximum, and values between', () => {
    assert.equal(accepts({ jobName: 'a', data: { durationMs: 0 } }).data.durationMs, 0);
    assert.equal(accepts({ jobName: 'a', data: { durationMs: MAX } }).data.durationMs, MAX);
    assert.equal(accepts({ jobName: 'a', data: { durationMs: 1500 } }).data.durationMs, 1500);
  });

  test('the maximum comes from the options', () => {
    const strict = createEnqueueSchema({ maxDurationMs: 10, maxTimeoutMs: 20 });
    assert.equal(strict.safeParse({ jobName: 'a', data: { durationMs: 10 } }).success, true);
    assert.equal(strict.safeParse({ jobName: 'a', data: { durationMs: 11 } }).success, false);
  });

  test('keys that merely contain forbidden words are allowed', () => {
    accepts({ jobName: 'a', data: { constructorName: 1, proto: 2, myPrototype: 3, __proto: 4 } });
  });
});

describe('createEnqueueSchema: jobName', () => {
  test('missing jobName is rejected at path jobName', () => {
    assert.deepEqual(paths({ data: {} }), ['jobName']);
  });

  test('empty jobName is rejected', () => {
    const found = paths({ jobName: '' });
    assert.ok(found.length >= 1);
    assert.ok(
      found.every((path) => path === 'jobName'),
      found.join(','),
    );
  });

  test(`jobName over ${JOB_NAME_MAX_LENGTH} characters is rejected`, () => {
    assert.ok(paths({ jobName: 'x'.repeat(JOB_NAME_MAX_LENGTH + 1) }).includes('jobName'));
  });

  test('jobName with disallowed characters is rejected', () => {
    for (const jobName of [
      'has space',
      'a/b',
      '../a',
      '-leading',
      '.leading',
      '_leading',
      ':leading',
      'a\\b',
      'a\nb',
      'é',
      'a~b',
    ]) {
      assert.deepEqual(paths({ jobName }), ['jobName'], `jobName ${JSON.stringify(jobName)}`);
    }
  });

  test('non-string jobName is rejected', () => {
    for (const jobName of [1, null, true, ['a'], { a: 1 }]) {
      assert.deepEqual(paths({ jobName }), ['jobName']);
    }
  });
});

describe('createEnqueueSchema: body and data shape', () => {
  test('non-object bodies are rejected', () => {
    for (const body of [null, undefined, 'a', 1, [], [{ jobName: 'a' }]]) {
      assert.equal(schema.safeParse(body).success, false, JSON.stringify(body));
    }
  });

  test('non-object data is rejected at path data', () => {
    for (const data of [[], [1, 2], 'text', 42, null, true]) {
      assert.deepEqual(paths({ jobName: 'a', data }), ['data'], `data ${JSON.stringify(data)}`);
    }
  });

  test('unknown top-level keys are rejected', () => {
    const issues = issuesFor({ jobName: 'a', data: {}, priority: 1 });
    assert.equal(issues.length, 1);
    assert.match(issues[0]?.message ?? '', /priority/);
  });

  test('errors in several fields are all reported', () => {
    const found = paths({ jobName: '', data: 'x' });
    assert.ok(found.includes('jobName'));
    assert.ok(found.includes('data'));
  });
});

describe('createEnqueueSchema: data.durationMs', () => {
  const badDurations: unknown[] = [-1, 1.5, '100', MAX + 1, Number.NaN, Number.POSITIVE_INFINITY, null, true, {}];
  for (const durationMs of badDurations) {
    test(`durationMs ${String(durationMs)} (${typeof durationMs}) is rejected at data.durationMs`, () => {
      const issues = issuesFor({ jobName: 'a', data: { durationMs } });
      assert.deepEqual(
        issues.map((issue) => issue.path),
        ['data.durationMs'],
      );
      assert.match(issues[0]?.message ?? '', new RegExp(`0 to ${MAX}`));
    });
  }

  test('an explicitly undefined durationMs is rejected (the key is present)', () => {
    assert.deepEqual(paths({ jobName: 'a', data: { durationMs: undefined } }), ['data.durationMs']);
  });
});

describe('createEnqueueSchema: prototype keys', () => {
  test('an own __proto__ key in data is rejected', () => {
    const input: unknown = JSON.parse('{"jobName":"a","data":{"__proto__":{"x":1}}}');
    const issues = issuesFor(input);
    assert.deepEqual(issues, [{ path: 'data.__proto__', message: 'this key is not allowed' }]);
  });

  test('an own __proto__ key at the top level is rejected', () => {
    assert.deepEqual(paths(JSON.parse('{"jobName":"a","__proto__":{"polluted":true}}')), ['__proto__']);
  });

  test('constructor and prototype keys are rejected', () => {
    assert.deepEqual(paths({ jobName: 'a', data: { constructor: 1 } }), ['data.constructor']);
    assert.deepEqual(paths({ jobName: 'a', data: { prototype: {} } }), ['data.prototype']);
    assert.deepEqual(paths({ jobName: 'a', constructor: 'x' }), ['constructor']);
  });

  test('forbidden keys are found at any depth', () => {
    assert.deepEqual(paths({ jobName: 'a', data: { a: { b: { c: { prototype: 1 } } } } }), ['data.a.b.c.prototype']);
    assert.deepEqual(paths(JSON.parse('{"jobName":"a","data":{"deep":{"__proto__":{"x":1}}}}')), [
      'data.deep.__proto__',
    ]);
  });

  test('forbidden keys inside arrays are found, with indexes in the path', () => {
    assert.deepEqual(paths({ jobName: 'a', data: { list: [{ ok: 1 }, { constructor: 1 }] } }), [
      'data.list.1.constructor',
    ]);
    assert.deepEqual(paths(JSON.parse('{"jobName":"a","data":{"list":[[{"__proto__":{}}]]}}')), [
      'data.list.0.0.__proto__',
    ]);
  });

  test('an inherited (non-own) __proto__ is not mistaken for a key', () => {
    // Written as an object literal, __proto__ sets the prototype instead of adding a key.
    const data = { __proto__: { inherited: 1 }, own: 2 };
    assert.deepEqual(accepts({ jobName: 'a', data }).data, { own: 2 });
  });

  test('the parsed data has no prototype pollution', () => {
    const input: unknown = JSON.parse('{"jobName":"a","data":{"__proto__":{"polluted":true}}}');
    schema.safeParse(input);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

describe('createEnqueueSchema: nesting depth', () => {
  /** A body whose data.x holds `levels` nested arrays: the innermost one sits at a path of levels + 1 segments. */
  const nested = (levels: number): unknown =>
    JSON.parse(`{"jobName":"a","data":{"x":${'['.repeat(levels)}${']'.repeat(levels)}}}`);

  test(`containers at paths of up to ${MAX_DATA_DEPTH} segments are accepted`, () => {
    accepts(nested(MAX_DATA_DEPTH - 1));
  });

  test(`a container at a path of more than ${MAX_DATA_DEPTH} segments is rejected`, () => {
    const issues = issuesFor(nested(MAX_DATA_DEPTH));
    assert.equal(issues.length, 1);
    assert.match(issues[0]?.message ?? '', new RegExp(`deeper than ${MAX_DATA_DEPTH}`));
    assert.equal(issues[0]?.path.split('.').length, MAX_DATA_DEPTH + 1);
    assert.ok(issues[0]?.path.startsWith('data.x.0.0'));
  });

  test('very deep nesting (20 000 levels, within the body limit) is rejected, not a thrown RangeError', () => {
    let result: { success: boolean } | undefined;
    assert.doesNotThrow(() => {
      result = schema.safeParse(nested(20_000));
    });
    assert.equal(result?.success, false);
  });

  test('deep objects are measured like deep arrays', () => {
    // `levels` nested objects as data: the outermost is at path "data", the innermost at `levels` segments.
    const objects = (levels: number): unknown => {
      let body = '1';
      for (let level = 0; level < levels; level += 1) body = `{"k":${body}}`;
      return JSON.parse(`{"jobName":"a","data":${body}}`);
    };
    accepts(objects(MAX_DATA_DEPTH));
    assert.equal(paths(objects(MAX_DATA_DEPTH + 1))[0]?.split('.').length, MAX_DATA_DEPTH + 1);
  });
});

describe('describeIssues', () => {
  test('gives dotted paths and messages', () => {
    const result = schema.safeParse({ jobName: 'bad name', data: { durationMs: -1 } });
    assert.ok(!result.success);
    const issues = describeIssues(result.error);
    assert.ok(issues.length >= 1);
    for (const issue of issues) {
      assert.deepEqual(Object.keys(issue).sort(), ['message', 'path']);
      assert.equal(typeof issue.path, 'string');
      assert.equal(typeof issue.message, 'string');
      assert.ok(issue.message.length > 0);
    }
    assert.ok(issues.some((issue) => issue.path === 'jobName' && /letter or digit/.test(issue.message)));
  });

  test('top-level issues have an empty path', () => {
    const issues = issuesFor({ jobName: 'a', extra: true });
    assert.equal(issues[0]?.path, '');
  });

  test('numeric path segments are joined as text', () => {
    const issues = issuesFor({ jobName: 'a', data: { items: [{}, {}, { nested: [{ prototype: 1 }] }] } });
    assert.deepEqual(issues, [{ path: 'data.items.2.nested.0.prototype', message: 'this key is not allowed' }]);
  });
});

describe('data.timeoutMs', () => {
  test('accepts 1 and exactly the maximum', () => {
    assert.equal(schema.safeParse({ jobName: 'a', data: { timeoutMs: 1 } }).success, true);
    assert.equal(schema.safeParse({ jobName: 'a', data: { timeoutMs: MAX_TIMEOUT } }).success, true);
  });

  test('rejects 0, negatives, fractions, strings and values over the maximum, naming the path', () => {
    for (const timeoutMs of [0, -5, 1.5, '100', MAX_TIMEOUT + 1]) {
      const result = schema.safeParse({ jobName: 'a', data: { timeoutMs } });
      assert.equal(result.success, false, `timeoutMs ${String(timeoutMs)}`);
      assert.deepEqual(result.error?.issues[0]?.path, ['data', 'timeoutMs']);
    }
  });
});

describe('options.timeoutMs and options.delayMs', () => {
  test('accept their bounds', () => {
    for (const options of [{ timeoutMs: 1 }, { timeoutMs: MAX_TIMEOUT }, { delayMs: 0 }, { delayMs: MAX_DELAY_MS }]) {
      assert.deepEqual(accepts({ jobName: 'a', options }).options, options);
    }
  });

  test('refuse what is out of range or not an integer, naming the option', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ timeoutMs: 0 }, 'options.timeoutMs'],
      [{ timeoutMs: MAX_TIMEOUT + 1 }, 'options.timeoutMs'],
      [{ timeoutMs: 2.5 }, 'options.timeoutMs'],
      [{ delayMs: -1 }, 'options.delayMs'],
      [{ delayMs: MAX_DELAY_MS + 1 }, 'options.delayMs'],
      [{ delayMs: '10' }, 'options.delayMs'],
    ];
    for (const [options, path] of cases) assert.deepEqual(paths({ jobName: 'a', options }), [path]);
  });
});

describe('data.fail', () => {
  test('accepts true, false and a message', () => {
    for (const fail of [true, false, 'disk on fire']) {
      assert.equal(schema.safeParse({ jobName: 'a', data: { fail } }).success, true, `fail ${String(fail)}`);
    }
  });

  test('refuses what would only be a guess: 0, 1, null, an empty message, objects', () => {
    for (const fail of [0, 1, null, '', {}, ['x']]) {
      const result = schema.safeParse({ jobName: 'a', data: { fail } });
      assert.equal(result.success, false, `fail ${JSON.stringify(fail)}`);
      assert.deepEqual(result.error?.issues[0]?.path, ['data', 'fail']);
      assert.equal(result.error?.issues[0]?.message, 'must be true, false or a non-empty message');
    }
  });
});
