/**
 * What ships: `npm run build` (used by `npm start` and the Docker image) compiles the service and the
 * job bodies only, never the tests or benchmarks. (`npm run typecheck`, run by CI, covers those.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { relative, sep } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

const ROOT = process.cwd();

/**
 * The project's own files a tsconfig names (its `include`, less its `exclude`), relative to the repo
 * root, with `/` separators: read as tsc reads the config, without compiling anything. A file of src/
 * that imported one from elsewhere would pull that one into the build too; test/project/imports.test.ts
 * refuses any such import.
 */
function ownFiles(project: string): string[] {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    project,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) =>
        assert.fail(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')),
    },
  );
  assert.ok(parsed, `${project} could not be read`);
  assert.deepEqual(parsed.errors, [], `${project} has errors`);
  return parsed.fileNames
    .filter((file) => !file.includes('/node_modules/'))
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
