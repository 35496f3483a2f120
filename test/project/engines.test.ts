/**
 * `npm ci` on the Node the project supports prints no EBADENGINE warning: every package the lock file
 * installs accepts the oldest Node that package.json's `engines` admits, and the Node running the tests.
 * A tool whose new major wants a newer Node is pinned below it (package.json `overrides`).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import semver from 'semver';

interface Manifest {
  readonly engines?: { readonly node?: unknown };
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

const ours = readJson<Manifest>('package.json').engines?.node;
const locked = readJson<{ readonly packages: Readonly<Record<string, Manifest>> }>('package-lock.json').packages;

/** The locked packages whose `engines.node` refuses `version`, as `path range`. */
function refusing(version: string): string[] {
  return Object.entries(locked)
    .filter(([path]) => path !== '')
    .flatMap(([path, { engines }]) =>
      typeof engines?.node === 'string' && !semver.satisfies(version, engines.node)
        ? [`${path} wants node ${engines.node}`]
        : [],
    );
}

test('package.json names the Node versions it supports', () => {
  assert.equal(typeof ours, 'string');
  assert.ok(semver.validRange(String(ours)), `engines.node ${String(ours)} is a range`);
  assert.ok(semver.satisfies(process.version, String(ours)), `${process.version} is within ${String(ours)}`);
});

test('every locked package accepts the oldest supported Node and this one', () => {
  const oldest = semver.minVersion(String(ours));
  assert.ok(oldest);
  assert.deepEqual(refusing(oldest.version), [], `on Node ${oldest.version}`);
  assert.deepEqual(refusing(process.version), [], `on Node ${process.version}`);
});
