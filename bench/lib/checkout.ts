/**
 * An older build of the service, beside this one, for the benchmarks that compare with the code
 * before a change: a detached git worktree of the commit, sharing this checkout's node_modules, built
 * the way `npm run build` builds. Removed again by `remove`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface Checkout {
  /** The worktree's root: pass it as the service's `root`. */
  readonly root: string;
  remove(): void;
}

export function buildCheckout(commit: string): Checkout {
  const root = join(mkdtempSync(join(tmpdir(), 'bullpen-before-')), 'tree');
  const run = (command: string, args: readonly string[], cwd = process.cwd()) =>
    execFileSync(command, [...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  run('git', ['worktree', 'add', '--detach', root, commit]);
  try {
    symlinkSync(resolve('node_modules'), join(root, 'node_modules'));
    run(process.execPath, [resolve('node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], root);
    run('npm', ['run', 'build:lua', '--silent'], root);
    if (!existsSync(join(root, 'dist/src/main.js'))) throw new Error(`the build of ${commit} has no dist/src/main.js`);
  } catch (error) {
    run('git', ['worktree', 'remove', '--force', root]);
    throw error;
  }
  return {
    root,
    remove: () => {
      run('git', ['worktree', 'remove', '--force', root]);
      rmSync(join(root, '..'), { recursive: true, force: true });
    },
  };
}
