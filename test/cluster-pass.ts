/**
 * The second pass of `npm test`: every test file written against test/support/test-redis.ts runs
 * again, this time on a real 3-master Redis Cluster (`TEST_REDIS_MODE=cluster`), so that routing,
 * recovery, faults and the job API stay proved in both modes the service supports.
 *
 * A file takes part by importing that helper. The others run in the single pass only: some because
 * one redis-server is their subject (the private server of `npm start`, a SIGSTOP or an outage of the
 * one server), the cluster's own tests because they start their cluster themselves, and the rest to
 * keep `npm test` short. Run from the repository root after `npm run build:test`. Without
 * `redis-server` or `redis-cli` the pass is skipped and says why, except in CI (`CI` set), where it
 * runs and fails instead.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { skipUnlessClusterTools } from './support/redis-cluster.js';
import { REDIS_MODE_VARIABLE } from './support/test-redis.js';

const TESTS = 'dist/test';
/** How the compiled files import the helper: tsc keeps the specifier as written. */
const USES_MODE_HELPER = /from ['"]\.\.\/support\/test-redis\.js['"]/;
/** As the single pass: files wait on processes and Redis far more than they compute. */
const CONCURRENCY = 3;

function dualModeFiles(): string[] {
  return readdirSync(TESTS, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((dir) =>
      readdirSync(join(TESTS, dir.name))
        .filter((name) => name.endsWith('.test.js'))
        .map((name) => join(TESTS, dir.name, name)),
    )
    .filter((file) => USES_MODE_HELPER.test(readFileSync(file, 'utf8')))
    .sort();
}

function main(): void {
  const skip = skipUnlessClusterTools();
  if (skip !== false) {
    process.stdout.write(`cluster pass skipped: ${skip}\n`);
    return;
  }
  const files = dualModeFiles();
  if (files.length === 0) {
    process.stderr.write(`cluster pass: no test file in ${TESTS} uses test/support/test-redis.ts; build first\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`cluster pass (${REDIS_MODE_VARIABLE}=cluster): ${files.join(' ')}\n`);
  const child = spawn(
    process.execPath,
    ['--test', `--test-concurrency=${CONCURRENCY}`, '--test-reporter=spec', ...files],
    { stdio: 'inherit', env: { ...process.env, [REDIS_MODE_VARIABLE]: 'cluster' } },
  );
  // A runner killed by a signal has no exit code: that is a failure too.
  child.once('exit', (code) => {
    process.exitCode = code ?? 1;
  });
}

main();
