/**
 * The README is the front door: every setting the config module understands is documented there by
 * name, so that a new setting cannot land undocumented.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CONFIG_VARIABLES } from '../../src/config/config.js';

test('every configuration variable is named in the README', () => {
  const readme = readFileSync('README.md', 'utf8');
  // PATH is read only to find redis-server, as the README says where it describes `npm start`.
  const missing = CONFIG_VARIABLES.filter((name) => name !== 'PATH' && !readme.includes(`\`${name}\``));
  assert.deepEqual(missing, []);
  assert.match(readme, /redis-server` from PATH/);
});
