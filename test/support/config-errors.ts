/** The check the configuration tests share: an environment refused at start-up, naming its variables. */
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/errors.js';

/** Asserts that `env` is rejected with a ConfigError whose message names every variable in `names`. */
export function assertRejects(env: Record<string, string | undefined>, ...names: string[]): ConfigError {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError for ${JSON.stringify(env)}`);
  assert.equal(caught.name, 'ConfigError');
  assert.equal(caught.code, 'CONFIG_INVALID');
  for (const name of names) {
    assert.match(caught.message, new RegExp(`\\b${name}: `), `message should name ${name}: ${caught.message}`);
  }
  return caught;
}
