/**
 * Every Lua script touches only keys its caller passes in KEYS: the first argument of every key
 * command is KEYS[i] or a local alias assigned from KEYS, never a name built inside the script. That
 * is what Redis Cluster requires, and what keeps the scripts' key names in one place (the key
 * modules). The loader's file names must also say how many keys each script takes.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const FOLDERS = ['src/ledger/lua', 'src/queue/lua'];
/** Commands whose first argument is not a key. */
const KEYLESS = new Set(['TIME']);

function scripts(): { file: string; lua: string }[] {
  return FOLDERS.flatMap((folder) =>
    readdirSync(folder)
      .filter((file) => file.endsWith('.lua'))
      .map((file) => ({ file: join(folder, file), lua: readFileSync(join(folder, file), 'utf8') })),
  );
}

test('the scripts are where the loader expects them, named <name>-<numberOfKeys>.lua or <name>-n.lua', () => {
  const all = scripts();
  assert.ok(all.length >= 15, `found ${all.length} scripts`);
  for (const { file } of all) assert.match(file, /\/[a-z][a-z-]*-(\d+|n)\.lua$/);
});

test('every key a script touches comes from KEYS', () => {
  for (const { file, lua } of scripts()) {
    const code = lua.replace(/--\[\[[\s\S]*?\]\]/g, '').replace(/--.*$/gm, '');
    const aliases = new Set([...code.matchAll(/local (\w+) = KEYS\[/g)].map((match) => match[1]));
    const tables = new Set([...code.matchAll(/(\w+)\[.+\]\s*=\s*KEYS\[/g)].map((match) => match[1]));
    const calls = [...code.matchAll(/redis\.call\("(\w+)"(?:,\s*([^,)]+))?/g)];
    for (const [, command = '', key = ''] of calls) {
      if (KEYLESS.has(command)) continue;
      const fromKeys =
        /^KEYS\[[^\]]+\]$/.test(key) || aliases.has(key) || [...tables].some((table) => key.startsWith(`${table}[`));
      assert.ok(fromKeys, `${file}: ${command} on ${key}, which is not a key from KEYS`);
      assert.doesNotMatch(key, /\.\./, `${file}: ${command} builds a key name`);
    }
    const declared = /-(\d+)\.lua$/.exec(file)?.[1];
    if (declared !== undefined) {
      const highest = Math.max(0, ...[...code.matchAll(/KEYS\[(\d+)\]/g)].map((match) => Number(match[1])));
      assert.equal(highest, Number(declared), `${file} declares ${declared} keys and uses up to KEYS[${highest}]`);
    }
  }
});
