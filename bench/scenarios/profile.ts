/**
 * Scenario 8: where a short job's CPU goes. The service runs with `--cpu-prof` in every process (cluster
 * workers inherit the primary's flags, and each Piscina thread writes a profile of its own); after a
 * warm-up, a few thousand jobs that do nothing go through it, and the samples taken while they ran are
 * sorted into categories (`lib/profile-categories.ts`) and divided by the number of jobs. No target:
 * it tells where to look, beside what the OS and Redis say the same jobs cost.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis } from '../../test/support/redis-server.js';
import { startService } from '../../test/support/service.js';
import { mainThreadCpu, processCpu, redisCpuMicros } from '../lib/cpu.js';
import { completedCount, fire, serviceCompletedKeys, waitForCompleted } from '../lib/completions.js';
import { CATEGORIES, addInto, summarize, type CpuProfile, type Window } from '../lib/profile-categories.js';
import { table, type Section } from '../lib/report.js';
import { CONCURRENCY, SERVICE_ENV, WORKERS } from '../lib/services.js';
import { round } from '../lib/stats.js';

const JOBS = 6_000;
const WARM_UP_JOBS = 500;
const CONNECTIONS = 50;
/** No bench handler has this name, so the built-in dummy runs it: 11 progress reports, as a new user's job. */
const TASK = { jobName: 'short', data: { durationMs: 0 } };
/**
 * Every isolate's sampler interrupts its thread at this interval, idle or not: at V8's default 1 ms,
 * the 36 isolates (4 processes, 8 job threads each) cost the 2 cores more than the service itself
 * (the jobs took 4x as long as unprofiled). At 4 ms they take about 1.4x as long, and 6,000 jobs
 * still give thousands of samples.
 */
const SAMPLING_MICROS = 4_000;

/** Now on the monotonic clock, in microseconds, as V8 stamps its profiles. */
const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n);

interface Cpu {
  /** The worker processes' main threads. */
  readonly mains: number;
  /** The worker processes, all their threads. */
  readonly workers: number;
  readonly primary: number;
  readonly redis: number;
}

interface ProfileFile {
  readonly pid: number;
  /** 0 for a process's main thread, above for its worker threads. */
  readonly threadId: number;
  readonly path: string;
}

/** Node names each profile `CPU.<date>.<time>.<pid>.<threadId>.<seq>.cpuprofile`. */
function profileFiles(directory: string): ProfileFile[] {
  return readdirSync(directory).flatMap((name) => {
    const match = /^CPU\.\d+\.\d+\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(name);
    return match ? [{ pid: Number(match[1]), threadId: Number(match[2]), path: join(directory, name) }] : [];
  });
}

function sumOf(files: readonly ProfileFile[], window: Window): Map<string, number> {
  const totals = new Map<string, number>();
  for (const file of files)
    addInto(totals, summarize(JSON.parse(readFileSync(file.path, 'utf8')) as CpuProfile, window));
  return totals;
}

const total = (categories: ReadonlyMap<string, number>) => [...categories.values()].reduce((sum, v) => sum + v, 0);

export async function profile(): Promise<Section> {
  const directory = mkdtempSync(join(tmpdir(), 'bullpen-profile-'));
  const redis = await startRedis();
  try {
    const service = await startService({
      redisUrl: redis.url,
      workers: WORKERS,
      env: SERVICE_ENV,
      nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${directory}`, `--cpu-prof-interval=${SAMPLING_MICROS}`],
    });
    let window: Window;
    let accepted: number;
    let refused: number;
    let pids: { primary: number; workers: number[] };
    let os: Cpu;
    try {
      const { workers } = await service.workers();
      pids = { primary: service.child.pid ?? 0, workers: workers.map((worker) => worker.pid) };
      const keys = await serviceCompletedKeys(service);
      const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
      const cpuNow = async (): Promise<Cpu> => ({
        mains: sum(pids.workers.map(mainThreadCpu)),
        workers: sum(pids.workers.map(processCpu)),
        primary: processCpu(pids.primary),
        redis: await redisCpuMicros(redis.client),
      });
      // Warm-up: threads started, scripts loaded, code compiled; none of it in the window.
      const warm = await fire(service.url, TASK, WARM_UP_JOBS, CONNECTIONS);
      await waitForCompleted(redis.client, keys, warm.accepted, 60_000);

      const before = await completedCount(redis.client, keys);
      const cpuBefore = await cpuNow();
      const from = monotonicMicros();
      const sent = await fire(service.url, TASK, JOBS, CONNECTIONS);
      await waitForCompleted(redis.client, keys, before + sent.accepted, 60_000);
      window = { from, to: monotonicMicros() };
      const cpuAfter = await cpuNow();
      accepted = sent.accepted;
      refused = sent.refused;
      os = {
        mains: cpuAfter.mains - cpuBefore.mains,
        workers: cpuAfter.workers - cpuBefore.workers,
        primary: cpuAfter.primary - cpuBefore.primary,
        redis: cpuAfter.redis - cpuBefore.redis,
      };
    } finally {
      // A process writes its profile as it exits: stop gracefully, so that every one does.
      await service.stop('SIGTERM', 20_000);
    }

    const files = profileFiles(directory);
    const workerMains = files.filter((f) => pids.workers.includes(f.pid) && f.threadId === 0);
    const threads = files.filter((f) => pids.workers.includes(f.pid) && f.threadId !== 0);
    if (workerMains.length !== pids.workers.length) {
      throw new Error(`found ${workerMains.length} worker profiles of ${pids.workers.length} in ${directory}`);
    }
    const mains = sumOf(workerMains, window);
    const inThreads = sumOf(threads, window);
    const perJob = (micros: number) => round(micros / accepted, 0);
    const busy = total(mains);
    const threadsBusy = total(inThreads);
    // A sample's length is wall time: on 2 shared cores a runnable thread waits for one, and the
    // sample it is caught in grows. So the profile gives the shares, and the OS the CPU they share.
    const cpuOf = (category: string) => ((mains.get(category) ?? 0) / busy) * os.mains;
    const rows = CATEGORIES.filter((c) => (mains.get(c.name) ?? 0) + (inThreads.get(c.name) ?? 0) > 0)
      .sort((a, b) => (mains.get(b.name) ?? 0) - (mains.get(a.name) ?? 0))
      .map((c) => [
        c.label,
        perJob(cpuOf(c.name)),
        `${round(((mains.get(c.name) ?? 0) / busy) * 100, 1)}%`,
        `${round(((inThreads.get(c.name) ?? 0) / threadsBusy) * 100, 1)}%`,
      ]);
    return {
      title: '8. Where the time goes: CPU per short job',
      body: [
        `The service (${WORKERS} processes x concurrency ${CONCURRENCY}, logging at \`info\`, its default) under \`node --cpu-prof\` (${SAMPLING_MICROS / 1000} ms sampling, every`,
        `process and job thread), ${JOBS.toLocaleString('en')} jobs of \`durationMs: 0\` (the built-in dummy body, which reports progress 11 times) from ${CONNECTIONS} connections after ${WARM_UP_JOBS} warm-up jobs.`,
        `Only samples taken from the first request to the last completion count (${round((window.to - window.from) / 1000, 0)} ms here). Each sample goes to`,
        'one category: of those on its stack, the first in the priority order of `bench/lib/profile-categories.ts`,',
        "so a Redis-client frame under a ledger call counts as ledger. A category's CPU is its share of the",
        "samples times the CPU the OS gave the worker processes' main threads over the window, divided by the jobs.",
        'The job threads, which only take a job and run its body, are shown apart, by share.',
        '',
        table(
          ['category', 'main threads CPU µs/job', 'share', 'job threads share'],
          [...rows, ['**total**', `**${perJob(os.mains)}**`, '100%', '100%']],
        ),
        '',
        `From the OS over the same window, per job: the worker processes' other threads (job threads, GC and`,
        `libuv helpers, the profiler) ${perJob(os.workers - os.mains)} µs, the primary ${perJob(os.primary)} µs, Redis ${perJob(os.redis)} µs (\`INFO cpu\`).`,
        `The profiles counted ${perJob(busy)} µs/job busy on the main threads and ${perJob(threadsBusy)} µs/job in the job threads, in`,
        'wall time, which counts a descheduled thread as busy.',
        ...(refused > 0 ? ['', `${refused} requests were refused or failed; figures are per accepted job.`] : []),
      ].join('\n'),
      targets: [],
    };
  } finally {
    await redis.stop();
    rmSync(directory, { recursive: true, force: true });
  }
}
