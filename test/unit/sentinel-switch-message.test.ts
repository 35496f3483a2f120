/** switchedTo: reading a sentinel's `+switch-master` announcement (src/redis/sentinel-connector.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { switchedTo } from '../../src/redis/sentinel-connector.js';

test("an announcement of the watched master names its new address; another master's names none", () => {
  assert.equal(switchedTo('bullpen-main 127.0.0.1 6379 127.0.0.1 6380', 'bullpen-main'), '127.0.0.1:6380');
  assert.equal(switchedTo('other 127.0.0.1 6379 127.0.0.1 6380', 'bullpen-main'), undefined);
  assert.equal(switchedTo('bullpen-main 127.0.0.1 6379', 'bullpen-main'), undefined, 'a message cut short');
  assert.equal(switchedTo('', 'bullpen-main'), undefined);
});
