/**
 * What the primary and its processes say to each other and to a person: a taken port is named with
 * the PORT setting to change, and only a lease-refused message is taken for one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLeaseRefusedMessage, LEASE_REFUSED_MESSAGE, portInUse } from '../../src/contracts/process-messages.js';

test('a taken port is named with its host and the PORT setting to change', () => {
  const said = portInUse(3456, '127.0.0.1');
  assert.match(said, /\b3456\b/);
  assert.match(said, /127\.0\.0\.1/);
  assert.match(said, /PORT=3456/);
});

test('only a message of the lease-refused type is one', () => {
  assert.equal(isLeaseRefusedMessage({ type: LEASE_REFUSED_MESSAGE, workerId: 'a-0', reason: 'held' }), true);
  for (const other of [null, 'bullpen:lease-refused', { type: 'bullpen:force-stop' }, {}])
    assert.equal(isLeaseRefusedMessage(other), false, JSON.stringify(other));
});
