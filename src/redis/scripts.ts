/**
 * Loads the Lua scripts that live beside their users as `<name>-<numberOfKeys>.lua` files, and
 * registers each on an ioredis client as a named command (EVALSHA with a fallback to EVAL), the way
 * BullMQ loads its own commands. A script whose keys depend on the call (one per worker) is named
 * `<name>-n.lua`; its callers still pass every key it touches.
 *
 * Helpers shared by several scripts live in an `includes/` folder beside them and are pasted in by
 * `--- @include` lines (see lua-includes.ts); only the folder's own `<name>-<keys>.lua` files become
 * commands, so an include is never registered by itself.
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RedisClient } from './connections.js';
import { readLuaScript } from './lua-includes.js';

export interface ScriptDefinition {
  readonly name: string;
  /** Undefined for `-n` scripts, whose number of keys is given at each call. */
  readonly numberOfKeys: number | undefined;
  /** The text sent to Redis: the script with its includes pasted in. */
  readonly lua: string;
}

const FILE_NAME = /^(?<name>[a-z][a-z-]*)-(?<keys>\d+|n)\.lua$/;

export function readScripts(directory: string): readonly ScriptDefinition[] {
  const scripts = readdirSync(directory)
    .sort()
    .flatMap((file) => {
      const match = FILE_NAME.exec(file);
      if (!match?.groups) return [];
      const { name, keys } = match.groups as { name: string; keys: string };
      return [
        { name, numberOfKeys: keys === 'n' ? undefined : Number(keys), lua: readLuaScript(join(directory, file)) },
      ];
    });
  const names = scripts.map((script) => script.name);
  const twice = names.find((name, index) => names.indexOf(name) !== index);
  if (twice !== undefined) throw new Error(`two Lua scripts are named ${twice} in ${directory}`);
  return scripts;
}

/** A registered script: keys first, then arguments, as in EVALSHA. */
export type ScriptCall = ((keys: readonly string[], args: readonly (string | number)[]) => Promise<unknown>) & {
  /**
   * The same script queued on a transaction or pipeline of the connection it was registered on, so
   * that it runs with the commands around it (ioredis loads it there first if Redis lacks it).
   */
  readonly on: (pipeline: object) => (keys: readonly string[], args: readonly (string | number)[]) => void;
};

export function defineScripts(
  redis: RedisClient,
  scripts: readonly ScriptDefinition[],
): ReadonlyMap<string, ScriptCall> {
  const calls = new Map<string, ScriptCall>();
  for (const script of scripts) {
    // Named by its text too: two folders may each have a script of the same name (the ledger's and
    // the queue's `cancel`), registered on one connection, where one name would replace the other.
    const digest = createHash('sha1').update(script.lua).digest('hex').slice(0, 12);
    const command = `bullpen_${script.name.replace(/-/g, '_')}_${digest}`;
    redis.defineCommand(command, {
      ...(script.numberOfKeys === undefined ? {} : { numberOfKeys: script.numberOfKeys }),
      lua: script.lua,
    });
    const send = (target: object, keys: readonly string[], args: readonly (string | number)[]): unknown => {
      if (script.numberOfKeys !== undefined && keys.length !== script.numberOfKeys) {
        throw new Error(`script ${script.name} takes ${script.numberOfKeys} keys, got ${keys.length}`);
      }
      // defineCommand adds the method at run time; ioredis types cannot know its name.
      const fn = (target as Record<string, (...a: (string | number)[]) => unknown>)[command];
      if (!fn) throw new Error(`script ${script.name} is not defined`);
      return script.numberOfKeys === undefined
        ? fn.call(target, keys.length, ...keys, ...args)
        : fn.call(target, ...keys, ...args);
    };
    const call = (keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> => {
      try {
        return send(redis, keys, args) as Promise<unknown>;
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    };
    calls.set(
      script.name,
      Object.assign(call, {
        on: (pipeline: object) => (keys: readonly string[], args: readonly (string | number)[]) => {
          send(pipeline, keys, args);
        },
      }),
    );
  }
  return calls;
}

/** The scripts of one folder, registered on a connection, looked up by name. */
export function scriptsIn(redis: RedisClient, directory: string): (name: string) => ScriptCall {
  const calls = defineScripts(redis, readScripts(directory));
  return (name) => {
    const call = calls.get(name);
    if (!call) throw new Error(`Lua script ${name} is missing from ${directory}`);
    return call;
  };
}
