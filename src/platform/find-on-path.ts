/**
 * Finding an executable the way a shell does, by walking a PATH string. The PATH is passed in, not
 * read here: only the config reads the environment, and tests pass their own.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The absolute path of the first executable `command` on `searchPath`, or undefined. */
export function findOnPath(command: string, searchPath: string | undefined): string | undefined {
  for (const directory of (searchPath ?? '').split(delimiter)) {
    // An empty entry means the current directory to a shell; a service should not run what happens to lie there.
    if (directory === '') continue;
    const candidate = join(directory, command);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}
