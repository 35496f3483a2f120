import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { jobIdFor, newToken, parseJobId, queueNameFor, workerIdFor } from '../../src/contracts/names.js';
import { redactUrl } from '../../src/redis/redact.js';

describe('workerIdFor / queueNameFor', () => {
  test('a worker id is the host id and the index joined by a dash', () => {
    assert.equal(workerIdFor('host-a', 0), 'host-a-0');
    assert.equal(workerIdFor('node_1.local', 12), 'node_1.local-12');
  });

  test('different indexes give different worker ids', () => {
    const ids = new Set(Array.from({ length: 16 }, (_, i) => workerIdFor('h', i)));
    assert.equal(ids.size, 16);
  });

  test('a queue name is tasks.{<workerId>}, its own hash tag, and holds no colon', () => {
    assert.equal(queueNameFor('host-a-3'), 'tasks.{host-a-3}');
    assert.ok(!queueNameFor(workerIdFor('h.x', 1)).includes(':'));
    // The first {…} of a key is its Redis Cluster hash tag: the worker id, whatever the suffix.
    const tag = /\{([^}]*)\}/.exec(`bullpen:${queueNameFor('host-a-3')}:wait`)?.[1];
    assert.equal(tag, 'host-a-3');
  });
});

describe('jobIdFor / parseJobId', () => {
  test('a job id is <workerId>~<token>', () => {
    assert.equal(jobIdFor('host-a-1', 'abc'), 'host-a-1~abc');
  });

  test('round trip with a UUID token', () => {
    for (const hostId of ['vm', 'node_1.example-com', 'H'.repeat(64)]) {
      for (const index of [0, 7, 255]) {
        const workerId = workerIdFor(hostId, index);
        const token = randomUUID();
        assert.deepEqual(parseJobId(jobIdFor(workerId, token)), { workerId, token });
      }
    }
  });

  test('new tokens are 22 URL-safe characters, distinct, and round trip in a job id', () => {
    const tokens = Array.from({ length: 2_000 }, () => newToken());
    assert.equal(new Set(tokens).size, tokens.length);
    for (const token of tokens) {
      assert.match(token, /^[A-Za-z0-9_-]{22}$/);
      assert.deepEqual(parseJobId(jobIdFor('host-a-1', token)), { workerId: 'host-a-1', token });
    }
    assert.ok(
      tokens.some((token) => token.includes('_') || token.includes('-')),
      'both extra characters of base64url occur over 2,000 tokens, and are accepted',
    );
  });

  test('accepts the longest allowed parts', () => {
    const workerId = 'w'.repeat(80);
    const token = 't'.repeat(64);
    assert.deepEqual(parseJobId(jobIdFor(workerId, token)), { workerId, token });
  });

  const rejected: [string, string][] = [
    ['no ~', 'host-a-1abc'],
    ['empty string', ''],
    ['only ~', '~'],
    ['empty worker id', '~abc'],
    ['empty token', 'host-a-1~'],
    ['two ~', 'host~a~abc'],
    ['a colon in the worker id', 'host:a-1~abc'],
    ['a colon in the token', 'host-a-1~ab:c'],
    ['a slash', 'host/a-1~abc'],
    ['a slash in the token', 'host-a-1~../etc'],
    ['a backslash', 'host\\a~abc'],
    ['a percent escape', 'host%2Fa~abc'],
    ['a space', 'host a~abc'],
    ['a newline at the end', 'host-a-1~abc\n'],
    ['a dot in the token', 'host-a-1~a.b'],
    ['a worker id over 80 characters', `${'w'.repeat(81)}~abc`],
    ['a token over 64 characters', `host-a-1~${'t'.repeat(65)}`],
  ];
  for (const [why, jobId] of rejected) {
    test(`rejects an id with ${why}`, () => {
      assert.equal(parseJobId(jobId), undefined);
    });
  }
});

describe('redactUrl', () => {
  test('hides a password and keeps the rest', () => {
    assert.equal(redactUrl('redis://user:s3cret@db.internal:6380/2'), 'redis://user:***@db.internal:6380/2');
    assert.equal(redactUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379');
    assert.doesNotMatch(redactUrl('rediss://:p%40ss@host:1'), /p%40ss|p@ss/);
  });

  test('never echoes an unparseable value', () => {
    assert.equal(redactUrl('not a url with secret'), 'redis://(unparseable)');
  });
});
