/**
 * The rules the ledger's Lua scripts share stay written once, in their includes: the job id format
 * (includes/job-id.lua) and the reading of the clock (includes/server-time.lua). Every script that
 * reads the time takes the clock argument, "" in production, and documents it in its header, so a
 * test can pass its own time to any of them. How the rules behave is checked against a real Redis in
 * test/integration/ledger-rules.test.ts.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const FOLDER = 'src/ledger/lua';

interface LuaFile {
  readonly file: string;
  /** The header comment: KEYS, ARGV and output. */
  readonly header: string;
  /** The code, without comments. */
  readonly code: string;
}

function read(file: string): LuaFile {
  const text = readFileSync(file, 'utf8');
  return {
    file,
    header: /^--\[\[([\s\S]*?)\]\]/.exec(text)?.[1] ?? '',
    code: text.replace(/--\[\[[\s\S]*?\]\]/g, '').replace(/--.*$/gm, ''),
  };
}

const scripts = readdirSync(FOLDER)
  .filter((file) => file.endsWith('.lua'))
  .map((file) => read(join(FOLDER, file)));
const includes = readdirSync(join(FOLDER, 'includes')).map((file) => read(join(FOLDER, 'includes', file)));

test('only includes/job-id.lua spells out the "~" of a job id', () => {
  assert.ok(scripts.length >= 10, `found ${scripts.length} scripts`);
  for (const { file, code } of [...scripts, ...includes]) {
    if (file.endsWith('includes/job-id.lua')) continue;
    const strings = code.match(/"(?:[^"\\\n]|\\.)*"/g) ?? [];
    assert.deepEqual(
      strings.filter((literal) => literal.includes('~')),
      [],
      `${file} builds or parses a job id itself`,
    );
  }
});

test('only includes/server-time.lua reads Redis TIME', () => {
  for (const { file, code } of [...scripts, ...includes]) {
    if (file.endsWith('includes/server-time.lua')) continue;
    assert.doesNotMatch(code, /redis\.call\("TIME"\)/, `${file} reads the clock itself`);
  }
});

test('every script that reads the time takes a documented clock argument', () => {
  const timed = scripts.filter(({ code }) => code.includes('serverMillis('));
  assert.ok(timed.length >= 10, `found ${timed.length} scripts that read the time`);
  for (const { file, header, code } of timed) {
    const given = new Set([...code.matchAll(/serverMillis\(([^)]*)\)/g)].map((match) => match[1]));
    assert.equal(given.size, 1, `${file} reads the time with ${[...given].join(', ')}`);
    const [argument = ''] = given;
    const position = /^ARGV\[(\d+)\]$/.exec(argument)?.[1];
    assert.ok(position !== undefined, `${file} passes ${argument || 'nothing'} as the clock, not an ARGV`);
    assert.match(header, new RegExp(`ARGV\\[${position}\\]\\s+clock: ""`), `${file} documents ARGV[${position}]`);
  }
});
