import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bodyHash, IDEMPOTENCY_KEY } from '../../src/idempotency/store.js';

describe('bodyHash', () => {
  test('equal JSON documents hash alike whatever their key order, at any depth', () => {
    assert.equal(
      bodyHash({ jobName: 'a', data: { x: 1, y: { p: [1, { q: 2, r: 3 }], s: null } } }),
      bodyHash({ data: { y: { s: null, p: [1, { r: 3, q: 2 }] }, x: 1 }, jobName: 'a' }),
    );
  });

  test('any other value, type or array order hashes differently', () => {
    const base = bodyHash({ jobName: 'a', data: { x: 1, list: [1, 2] } });
    for (const other of [
      { jobName: 'b', data: { x: 1, list: [1, 2] } },
      { jobName: 'a', data: { x: '1', list: [1, 2] } },
      { jobName: 'a', data: { x: 1, list: [2, 1] } },
      { jobName: 'a', data: { x: 1, list: [1, 2], extra: true } },
      { jobName: 'a', data: { x: 1 } },
    ]) {
      assert.notEqual(bodyHash(other), base, JSON.stringify(other));
    }
  });
});

describe('IDEMPOTENCY_KEY', () => {
  test('1 to 255 visible ASCII characters', () => {
    for (const key of ['a', '~', 'order-1001', 'ABC:def/123?x=1', 'x'.repeat(255)]) assert.match(key, IDEMPOTENCY_KEY);
    for (const key of ['', 'x'.repeat(256), 'a b', 'tab\t', 'é', '\u007f', 'line\n']) {
      assert.doesNotMatch(key, IDEMPOTENCY_KEY, JSON.stringify(key));
    }
  });
});
