/**
 * The cursor of `GET /jobs`: a position in the job index round-trips exactly (score and member, so
 * ties stay apart), it is URL-safe, and anything it did not write decodes to nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCursor, encodeCursor, MAX_CURSOR_LENGTH } from '../../src/jobs/index-cursor.js';

test('a position round-trips exactly, ties told apart by member', () => {
  const positions = [
    { score: 1_733_000_000_123, member: 'myhost-0~AAAAAAAAAAAAAAAAAAAAAA' },
    { score: 1_733_000_000_123, member: 'myhost-0~AAAAAAAAAAAAAAAAAAAAAB' },
    { score: 0, member: 'x~y' },
    { score: 1_733_000_000_123, member: `${'w'.repeat(80)}~${'t'.repeat(64)}` },
  ];
  const cursors = positions.map(encodeCursor);
  assert.equal(new Set(cursors).size, positions.length);
  for (const [i, cursor] of cursors.entries()) {
    assert.match(cursor, /^[A-Za-z0-9_-]+$/, 'URL-safe, no padding');
    assert.ok(cursor.length <= MAX_CURSOR_LENGTH);
    assert.deepEqual(decodeCursor(cursor), positions[i]);
  }
});

test('anything else decodes to nothing', () => {
  const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
  const malformed = [
    '',
    'not a cursor',
    'abc=',
    'a+b/',
    '%%%',
    b64('not json'),
    b64('null'),
    b64('[]'),
    b64('42'),
    b64('"text"'),
    b64('{}'),
    b64('{"s":1}'),
    b64('{"m":"x~y"}'),
    b64('{"s":"1","m":"x~y"}'),
    b64('{"s":1,"m":""}'),
    b64('{"s":1,"m":3}'),
    b64('{"s":1e400,"m":"x~y"}'),
    b64('{"s":1,"m":"x~y","extra":true}'),
    b64(JSON.stringify({ s: 1, m: 'm'.repeat(257) })),
    'A'.repeat(MAX_CURSOR_LENGTH + 1),
  ];
  for (const cursor of malformed) assert.equal(decodeCursor(cursor), undefined, cursor);
});
