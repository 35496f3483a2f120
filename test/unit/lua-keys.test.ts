/**
 * Every Lua script touches only keys its caller passes in KEYS: the first argument of every key
 * command is KEYS[i] or a local alias assigned from KEYS, never a name built inside the script. That
 * is what Redis Cluster requires, and what keeps the scripts' key names in one place (the key
 * modules). The check reads the scripts as the loader sends them to Redis, includes pasted in, so a
 * helper in an include is checked inside every script that uses it. The loader's file names must
 * also say how many keys each script takes, and an include file must never become a command itself.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readScripts } from '../../src/redis/scripts.js';

const FOLDERS = [
  'src/ledger/lua',
  'src/queue/lua',
  'src/jobs/lua',
  'src/idempotency/lua',
  'src/schedules/lua',
  'src/expiry/lua',
];
/** Commands whose first argument is not a key. */
const KEYLESS = new Set(['TIME']);

interface LoadedScript {
  readonly file: string;
  readonly numberOfKeys: number | undefined;
  readonly lua: string;
}

/** The scripts as the loader reads them: one per command, includes resolved. */
function scripts(): LoadedScript[] {
  return FOLDERS.flatMap((folder) =>
    readScripts(folder).map(({ name, numberOfKeys, lua }) => ({
      file: join(folder, `${name}-${numberOfKeys ?? 'n'}.lua`),
      numberOfKeys,
      lua,
    })),
  );
}

function includeFiles(folder: string): string[] {
  const includes = join(folder, 'includes');
  if (!existsSync(includes)) return [];
  return readdirSync(includes)
    .filter((file) => file.endsWith('.lua'))
    .map((file) => join(includes, file));
}

test('the scripts are where the loader expects them, named <name>-<numberOfKeys>.lua or <name>-n.lua', () => {
  const files = FOLDERS.flatMap((folder) =>
    readdirSync(folder)
      .filter((file) => file.endsWith('.lua'))
      .map((file) => join(folder, file)),
  );
  assert.ok(files.length >= 15, `found ${files.length} scripts`);
  for (const file of files) assert.match(file, /\/[a-z][a-z-]*-(\d+|n)\.lua$/);
  // The loader registers exactly these files, each once: nothing from includes/, nothing left out.
  assert.deepEqual(
    scripts()
      .map((script) => script.file)
      .sort(),
    files.sort(),
  );
});

test('every include is pasted into a script that uses it, and no include line is left for Redis', () => {
  const loaded = scripts();
  const includes = FOLDERS.flatMap(includeFiles);
  assert.ok(includes.length >= 1, 'no include files found');
  for (const { file, lua } of loaded) assert.doesNotMatch(lua, /@include/, `${file} still has an include line`);
  for (const include of includes) {
    // An include's own include lines are pasted elsewhere (or earlier); the rest appears as written.
    const parts = readFileSync(include, 'utf8')
      .split(/^[ \t]*--- @include .*$/m)
      .map((part) => part.trim())
      .filter((part) => part !== '');
    assert.ok(
      loaded.some((script) => parts.every((part) => script.lua.includes(part))),
      `${include} is pasted into no script`,
    );
  }
});

test('every key a script touches comes from KEYS', () => {
  for (const { file, numberOfKeys, lua } of scripts()) {
    const code = lua.replace(/--\[\[[\s\S]*?\]\]/g, '').replace(/--.*$/gm, '');
    const aliases = new Set([...code.matchAll(/local (\w+) = KEYS\[/g)].map((match) => match[1]));
    const tables = new Set([...code.matchAll(/(\w+)\[.+\]\s*=\s*KEYS\[/g)].map((match) => match[1]));
    // A function that answers a table of KEYS entries only (groups.lua's groupKeysFrom): the tables
    // made by it, and the parameters of the same name that carry them into the include's functions.
    const makers = keyTableMakers(code);
    const keyTables = new Set(
      [...code.matchAll(/local (\w+) = (\w+)\(/g)].filter((match) => makers.has(match[2] ?? '')).map((m) => m[1]),
    );
    const calls = [...code.matchAll(/redis\.call\("(\w+)"(?:,\s*([^,)]+))?/g)];
    for (const [, command = '', key = ''] of calls) {
      if (KEYLESS.has(command)) continue;
      const fromKeys =
        /^KEYS\[[^\]]+\]$/.test(key) ||
        aliases.has(key) ||
        [...tables].some((table) => key.startsWith(`${table}[`)) ||
        keyTables.has(/^(\w+)(?:\.\w+$|\[)/.exec(key)?.[1] ?? '');
      assert.ok(fromKeys, `${file}: ${command} on ${key}, which is not a key from KEYS`);
      assert.doesNotMatch(key, /\.\./, `${file}: ${command} builds a key name`);
    }
    if (numberOfKeys !== undefined) {
      const made = [...code.matchAll(/= (\w+)\((\d+)\)/g)].flatMap(([, maker = '', first = '']) => {
        const size = makers.get(maker);
        return size === undefined ? [] : [Number(first) + size - 1];
      });
      const highest = Math.max(0, ...made, ...[...code.matchAll(/KEYS\[(\d+)\]/g)].map((match) => Number(match[1])));
      assert.equal(highest, numberOfKeys, `${file} declares ${numberOfKeys} keys and uses up to KEYS[${highest}]`);
    }
  }
});

/** Functions whose answer is a table of KEYS entries and nothing else, with the size of that table. */
function keyTableMakers(code: string): Map<string, number> {
  const makers = new Map<string, number>();
  for (const [, name = '', body = ''] of code.matchAll(/local function (\w+)\([^)]*\)\s*return \{([^}]*)\}\s*end/g)) {
    const values = body
      .split(',')
      .map((field) => field.split('=')[1]?.trim() ?? '')
      .filter((value) => value !== '');
    if (values.length > 0 && values.every((value) => /^KEYS\[[^\]]+\]$/.test(value))) makers.set(name, values.length);
  }
  return makers;
}
