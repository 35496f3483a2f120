/** findOnPath: the first executable file of that name along the given PATH, as a shell finds it. */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, test } from 'node:test';
import { findOnPath } from '../../src/platform/find-on-path.js';

const root = mkdtempSync(join(tmpdir(), 'bullpen-find-on-path-'));
after(() => rmSync(root, { recursive: true, force: true }));

function dir(name: string): string {
  const path = join(root, name);
  mkdirSync(path, { recursive: true });
  return path;
}

test('finds the first executable file along PATH, skipping non-executables, directories and empty entries', () => {
  const plain = dir('plain');
  writeFileSync(join(plain, 'tool'), 'not executable');
  chmodSync(join(plain, 'tool'), 0o644);
  const folder = dir('folder');
  mkdirSync(join(folder, 'tool'));
  const first = dir('first');
  const second = dir('second');
  for (const where of [first, second]) {
    writeFileSync(join(where, 'tool'), '#!/bin/sh\n');
    chmodSync(join(where, 'tool'), 0o755);
  }
  assert.equal(findOnPath('tool', ['', plain, folder, first, second].join(delimiter)), join(first, 'tool'));
  assert.equal(findOnPath('tool', [plain, folder].join(delimiter)), undefined);
  assert.equal(findOnPath('tool', undefined), undefined);
  assert.equal(findOnPath('tool', ''), undefined);
});
