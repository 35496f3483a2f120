/**
 * The Lua include step: `--- @include "<path>"` lines are replaced by the included file's text when a
 * script is read, each file once per script, includes may include others, and a cycle or a missing
 * file stops the load with an error that names the files involved. Each case builds its own small
 * folder of scripts.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { readLuaScript } from '../../src/redis/lua-includes.js';
import { readScripts } from '../../src/redis/scripts.js';

/** A fresh folder holding `files` (path -> text), removed when the test ends. */
function folderWith(t: { after: (fn: () => void) => void }, files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'bullpen-lua-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

test('an include line is replaced by the included file, in place', (t) => {
  const root = folderWith(t, {
    'main-1.lua': '-- head\n--- @include "includes/clock"\nreturn clock()\n',
    'includes/clock.lua': 'local function clock()\n  return 1\nend\n',
  });
  assert.equal(
    readLuaScript(join(root, 'main-1.lua')),
    '-- head\nlocal function clock()\n  return 1\nend\nreturn clock()\n',
  );
});

test('includes may include others, by a path relative to their own file', (t) => {
  const root = folderWith(t, {
    'main-1.lua': '--- @include "includes/outer"\nreturn outer()\n',
    'includes/outer.lua': '--- @include "inner"\nlocal function outer() return inner() end\n',
    'includes/inner.lua': 'local function inner() return 2 end\n',
  });
  assert.equal(
    readLuaScript(join(root, 'main-1.lua')),
    'local function inner() return 2 end\nlocal function outer() return inner() end\nreturn outer()\n',
  );
});

test('each file is pasted once per script, at its first include', (t) => {
  const root = folderWith(t, {
    'main-1.lua': '--- @include "includes/a"\n--- @include "includes/b"\n--- @include "includes/a"\nreturn 0\n',
    'includes/a.lua': '--- @include "shared"\nA = 1\n',
    'includes/b.lua': '--- @include "shared"\nB = 1\n',
    'includes/shared.lua': 'SHARED = 1\n',
  });
  const lua = readLuaScript(join(root, 'main-1.lua'));
  assert.equal(lua.split('SHARED = 1').length - 1, 1, lua);
  assert.equal(lua.split('A = 1').length - 1, 1, lua);
  assert.ok(lua.indexOf('SHARED = 1') < lua.indexOf('A = 1') && lua.indexOf('A = 1') < lua.indexOf('B = 1'), lua);
  assert.doesNotMatch(lua, /@include/);
});

test('a cycle is an error naming the chain of files', (t) => {
  const root = folderWith(t, {
    'main-1.lua': '--- @include "includes/a"\nreturn 0\n',
    'includes/a.lua': '--- @include "b"\n',
    'includes/b.lua': '--- @include "a"\n',
  });
  assert.throws(() => readLuaScript(join(root, 'main-1.lua')), {
    message: 'Lua include cycle: main-1.lua -> includes/a.lua -> includes/b.lua -> includes/a.lua',
  });
});

test('a missing include is an error naming the script and the include', (t) => {
  const root = folderWith(t, {
    'main-1.lua': '--- @include "includes/a"\nreturn 0\n',
    'includes/a.lua': '--- @include "gone"\n',
    'other-1.lua': '--- @include "includes/nothing"\nreturn 0\n',
  });
  assert.throws(
    () => readLuaScript(join(root, 'other-1.lua')),
    /^Error: Lua include "includes\/nothing" in other-1\.lua is missing/,
  );
  assert.throws(
    () => readLuaScript(join(root, 'main-1.lua')),
    /^Error: Lua include "gone" in main-1\.lua -> includes\/a\.lua is missing/,
  );
});

test('the loader registers the expanded scripts and never an include file', (t) => {
  const root = folderWith(t, {
    'pick-2.lua': '--- @include "includes/clock-1"\nreturn clock()\n',
    'includes/clock-1.lua': 'local function clock() return 1 end\n',
  });
  const scripts = readScripts(root);
  assert.deepEqual(scripts, [
    { name: 'pick', numberOfKeys: 2, lua: 'local function clock() return 1 end\nreturn clock()\n' },
  ]);
  // A script that cannot be expanded stops the load instead of reaching Redis half-built.
  writeFileSync(join(root, 'broken-1.lua'), '--- @include "includes/none"\n');
  assert.throws(() => readScripts(root), /Lua include "includes\/none" in broken-1\.lua is missing/);
});
