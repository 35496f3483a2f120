/**
 * Resolves the `--- @include "<path>"` lines of a Lua script, as BullMQ builds its own commands, so
 * that a helper several scripts need (the server's clock, the format of a ledger entry) is written
 * once. Redis runs one self-contained text per script, so the includes are pasted in when the script
 * is read, before it is registered: what Redis sees is the expanded text.
 *
 * The path is relative to the file holding the line, without `.lua`. Each file is pasted once per
 * script, at its first include: its helpers are then defined for everything after it. Includes may
 * include others; a cycle, or a missing file, is an error that names the chain of files.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';

const INCLUDE = /^[ \t]*--- @include "([^"]+)"[ \t]*$/gm;

/** The text of the script at `file`, every include line replaced by the included file's text. */
export function readLuaScript(file: string): string {
  const script = resolve(file);
  const root = dirname(script);
  const pasted = new Set<string>();
  const chainOf = (files: readonly string[]): string => files.map((path) => relative(root, path)).join(' -> ');

  const expand = (path: string, chain: readonly string[]): string => {
    const here = [...chain, path];
    return readFileSync(path, 'utf8').replace(INCLUDE, (_line, target: string) => {
      const included = resolve(dirname(path), `${target}.lua`);
      if (here.includes(included)) throw new Error(`Lua include cycle: ${chainOf([...here, included])}`);
      if (pasted.has(included)) return '';
      if (!existsSync(included)) {
        throw new Error(`Lua include "${target}" in ${chainOf(here)} is missing: no file ${included}`);
      }
      pasted.add(included);
      // The line's own line break follows, so the pasted text drops its last one.
      return expand(included, here).replace(/\r?\n$/, '');
    });
  };
  return expand(script, []);
}
