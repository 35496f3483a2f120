/**
 * What ships: `npm run build` (used by `npm start` and the Docker image) compiles the service and the
 * job bodies only, never the tests or benchmarks. (`npm run typecheck`, run by CI, covers those.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { relative, sep } from 'node:path';
import { test } from 'node:test';

const ROOT = process.cwd();
const tsc = createRequire(`${ROOT}/package.json`).resolve('typescript/bin/tsc');

/** The project's own files a tsconfig compiles, relative to the repo root, with `/` separators. */
function ownFiles(project: string): string[] {
  const result = spawnSync(process.execPath, [tsc, '-p', project, '--listFilesOnly'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(result.status, 0, `tsc -p ${project} --listFilesOnly: ${result.stdout}${result.stderr}`);
  return result.stdout
    .split('\n')
    .filter((file) => file.startsWith(ROOT) && !file.includes(`${sep}node_modules${sep}`))
    .map((file) => relative(ROOT, file).split(sep).join('/'));
}

test('the build compiles src/ and workers/ only', () => {
  const files = ownFiles('tsconfig.build.json');
  assert.ok(files.includes('src/main.ts') && files.includes('workers/runner.ts'), files.join(', '));
  assert.deepEqual(
    files.filter((file) => !file.startsWith('src/') && !file.startsWith('workers/')),
    [],
  );
});

test('npm run build, which the Docker image runs, uses the build config', () => {
  const scripts = (JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { scripts: Record<string, string> })
    .scripts;
  assert.match(scripts.build ?? '', /tsc -p tsconfig\.build\.json/);
  assert.match(readFileSync(`${ROOT}/Dockerfile`, 'utf8'), /^RUN npm run build$/m);
});
