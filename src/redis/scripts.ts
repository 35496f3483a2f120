/**
 * Loads the Lua scripts that live beside their users as `<name>-<numberOfKeys>.lua` files, and
 * registers each on an ioredis client as a named command (EVALSHA with a fallback to EVAL), the way
 * BullMQ loads its own commands.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';

export interface ScriptDefinition {
  readonly name: string;
  readonly numberOfKeys: number;
  readonly lua: string;
}

const FILE_NAME = /^(?<name>[a-z][a-z-]*)-(?<keys>\d+)\.lua$/;

export function readScripts(directory: string): readonly ScriptDefinition[] {
  const scripts = readdirSync(directory)
    .sort()
    .flatMap((file) => {
      const match = FILE_NAME.exec(file);
      if (!match?.groups) return [];
      const { name, keys } = match.groups as { name: string; keys: string };
      return [{ name, numberOfKeys: Number(keys), lua: readFileSync(join(directory, file), 'utf8') }];
    });
  const names = scripts.map((script) => script.name);
  const twice = names.find((name, index) => names.indexOf(name) !== index);
  if (twice !== undefined) throw new Error(`two Lua scripts are named ${twice} in ${directory}`);
  return scripts;
}

/** A registered script: keys first, then arguments, as in EVALSHA. */
export type ScriptCall = (keys: readonly string[], args: readonly (string | number)[]) => Promise<unknown>;

export function defineScripts(redis: Redis, scripts: readonly ScriptDefinition[]): ReadonlyMap<string, ScriptCall> {
  const calls = new Map<string, ScriptCall>();
  for (const script of scripts) {
    const command = `bullpen_${script.name.replace(/-/g, '_')}`;
    redis.defineCommand(command, { numberOfKeys: script.numberOfKeys, lua: script.lua });
    calls.set(script.name, (keys, args) => {
      if (keys.length !== script.numberOfKeys) {
        return Promise.reject(new Error(`script ${script.name} takes ${script.numberOfKeys} keys, got ${keys.length}`));
      }
      // defineCommand adds the method at run time; ioredis types cannot know its name.
      const fn = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[command];
      if (!fn) return Promise.reject(new Error(`script ${script.name} is not defined`));
      return fn.call(redis, ...keys, ...args);
    });
  }
  return calls;
}
