/**
 * What `npm test` runs, after the build: every compiled test file, and a second time on a real 3-master
 * Redis Cluster every file written against test/support/test-redis.ts (found by its import of that
 * module), so that routing, recovery, faults and the job API stay proved in both modes the service
 * supports. The other files run once: some because one redis-server is their subject, the cluster's own
 * tests because they start their cluster themselves, and the rest to keep `npm test` short.
 *
 * Both modes share one pool of test processes, longest files first: most of a file's time is spent
 * waiting on processes, Redis and time-outs, so the long waits of the cluster fault tests overlap the
 * rest instead of ending the run alone. A file runs in cluster mode through a two-line file written
 * here under `dist/cluster-mode/` that sets the mode and imports it (see `describeOnCluster`).
 *
 * Any failing test fails the run. `--only=single` or `--only=cluster` runs one mode's files;
 * `--concurrency=N` sets how many files run at once. Run from the repository root after
 * `npm run build:test`.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { parseArgs } from 'node:util';
import { REDIS_MODES, type RedisMode } from './support/test-redis.js';

const DIST = 'dist';
const TESTS = join(DIST, 'test');
/** Where the cluster-mode files are written, outside `dist/test` so that no glob of it finds them. */
const CLUSTER_FILES = join(DIST, 'cluster-mode');
/** How the compiled files import the helper: tsc keeps the specifier as written. */
const USES_MODE_HELPER = /from ['"]\.\.\/support\/test-redis\.js['"]/;
/**
 * Files at once. Files mostly wait, so more files than cores keep both busy: on the 2-core reference
 * machine, at 6 no CPU was left idle and the run took less than at 4 (both with other runs beside it).
 */
const CONCURRENCY = 6;
/** A file still running after this has hung (the slowest take under a minute): it fails, and the run goes on. */
const FILE_TIMEOUT_MS = 10 * 60_000;
/** How many of the slowest files the run names at its end. */
const SLOWEST_SHOWN = 12;

/**
 * The files that take longest (paths under `dist/`; measured on the 2-core reference machine, longest
 * first), started first so that none of them starts last and runs on alone. Other files follow in
 * name order. The list is a schedule, not a selection: a file missing from it still runs. Each run
 * ends by naming its slowest files, to keep this list in step.
 */
const LONGEST_FIRST: readonly string[] = [
  'test/faults/schedule-faults.test.js',
  'test/faults/cluster-down.test.js',
  'cluster-mode/faults/ownership.test.js',
  'cluster-mode/faults/schedule-faults.test.js',
  'test/faults/sentinel-failover.test.js',
  'cluster-mode/integration/service.test.js',
  'test/faults/cluster-faults.test.js',
  'test/faults/cluster-crash.test.js',
  'test/integration/redis-tls.test.js',
  'test/faults/ownership.test.js',
  'cluster-mode/integration/multi-host.test.js',
  'test/faults/shutdown.test.js',
  'test/integration/multi-host.test.js',
  'cluster-mode/faults/move-crash.test.js',
  'test/faults/process-faults.test.js',
  'cluster-mode/faults/shutdown.test.js',
  'test/faults/cluster-reshard.test.js',
  'test/faults/cluster-failover.test.js',
  'test/integration/redis-cluster.test.js',
  'test/integration/service.test.js',
  'cluster-mode/integration/metrics.test.js',
  'test/stack/prometheus.test.js',
  'test/faults/move-crash.test.js',
  'test/integration/metrics.test.js',
  'test/integration/local-redis.test.js',
  'test/faults/redis-outage.test.js',
  'cluster-mode/faults/shutdown-streams.test.js',
  'test/faults/shutdown-streams.test.js',
  'cluster-mode/integration/start-before-redis.test.js',
  'cluster-mode/faults/process-faults.test.js',
  'cluster-mode/integration/admin-ui.test.js',
  'test/faults/failing-jobs.test.js',
  'cluster-mode/integration/stealing.test.js',
  'test/integration/openapi-conformance.test.js',
  'test/integration/cluster-mode.test.js',
];

interface TestFile {
  /** The path under `dist/`, as LONGEST_FIRST and the closing summary name it. */
  readonly name: string;
  readonly mode: RedisMode;
}

function testFiles(): string[] {
  return readdirSync(TESTS, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((dir) =>
      readdirSync(join(TESTS, dir.name))
        .filter((name) => name.endsWith('.test.js'))
        .map((name) => join(dir.name, name)),
    )
    .sort();
}

/** Writes, for each file written against test-redis.ts, the file that runs it on a Redis Cluster. */
function writeClusterFiles(files: readonly string[]): TestFile[] {
  rmSync(CLUSTER_FILES, { recursive: true, force: true });
  return files
    .filter((file) => USES_MODE_HELPER.test(readFileSync(join(TESTS, file), 'utf8')))
    .map((file) => {
      const path = join(CLUSTER_FILES, file);
      mkdirSync(join(path, '..'), { recursive: true });
      // dist/cluster-mode/<dir>/<file> and dist/test/<dir>/<file> are as deep: '../../test' joins them.
      writeFileSync(
        path,
        `// Written by test/run.ts: dist/test/${file} on a Redis Cluster.\n` +
          `import { describeOnCluster } from '../../test/support/test-redis.js';\n` +
          `describeOnCluster(${JSON.stringify(file)}, () => import(${JSON.stringify(`../../test/${file}`)}));\n`,
      );
      return { name: relative(DIST, path), mode: 'cluster' };
    });
}

/** LONGEST_FIRST's files in its order, then the rest in name order. */
function schedule(files: readonly TestFile[]): TestFile[] {
  const rank = (file: TestFile) => {
    const index = LONGEST_FIRST.indexOf(file.name);
    return index < 0 ? LONGEST_FIRST.length : index;
  };
  return [...files].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

function options(): { only: RedisMode | undefined; concurrency: number } {
  const { values } = parseArgs({
    options: { only: { type: 'string' }, concurrency: { type: 'string', default: String(CONCURRENCY) } },
  });
  const only = REDIS_MODES.find((mode) => mode === values.only);
  if (values.only !== undefined && only === undefined) {
    throw new Error(`--only must be one of ${REDIS_MODES.join(', ')}, not "${values.only}"`);
  }
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new Error(`--concurrency must be a whole number from 1, not "${values.concurrency}"`);
  }
  return { only, concurrency };
}

function main(): void {
  const { only, concurrency } = options();
  const single = testFiles();
  if (single.length === 0) throw new Error(`no test file in ${TESTS}; run \`npm run build:test\` first`);
  const files = schedule([
    ...(only === 'cluster' ? [] : single.map((file): TestFile => ({ name: join('test', file), mode: 'single' }))),
    ...(only === 'single' ? [] : writeClusterFiles(single)),
  ]);
  const inCluster = files.filter((file) => file.mode === 'cluster').length;
  process.stdout.write(
    `${files.length} test files, ${inCluster} of them on a Redis Cluster, ${concurrency} at a time\n`,
  );

  const durations = new Map<string, number>();
  const stream = run({ files: files.map((file) => resolve(DIST, file.name)), concurrency, timeout: FILE_TIMEOUT_MS });
  stream.on('test:fail', () => {
    process.exitCode = 1;
  });
  stream.on('test:complete', ({ name, file, nesting, details }) => {
    // A file's own entry: the whole file, from its process's start to its end.
    if (nesting === 0 && file !== undefined && name === file) durations.set(relative(DIST, file), details.duration_ms);
  });
  const reporter = stream.pipe(new spec());
  reporter.pipe(process.stdout);
  reporter.once('end', () => {
    const slowest = [...durations].sort(([, a], [, b]) => b - a).slice(0, SLOWEST_SHOWN);
    process.stdout.write(
      `\nslowest files:\n${slowest.map(([name, ms]) => `  ${(ms / 1000).toFixed(1).padStart(6)} s  ${name}`).join('\n')}\n`,
    );
  });
}

main();
