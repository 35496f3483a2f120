/**
 * Scenario 12: what progress costs. The same service runs batches of short jobs of two bodies in
 * turn: the built-in dummy with `durationMs: 0`, which reports progress 11 times, and the `stamp`
 * body, which reports nothing. Their CPU per job, every thread of every service process (from each
 * thread's `schedstat`) plus Redis (`INFO cpu`), should differ by little more than the one save of
 * the final value: reports are coalesced in the job's thread, so how often a body reports should
 * not show.
 */
import type { Redis } from 'ioredis';
import { startRedis } from '../../test/support/redis-server.js';
import { startService } from '../../test/support/service.js';
import { completedCount, fire, serviceCompletedKeys, waitForCompleted } from '../lib/completions.js';
import { liveThreadsCpu, redisCpuMicros } from '../lib/cpu.js';
import { table, type Section } from '../lib/report.js';
import { CONCURRENCY, SERVICE_ENV, WORKERS } from '../lib/services.js';
import { median, quantile, round } from '../lib/stats.js';

const JOBS = 2_000;
const WARM_UP_JOBS = 2_000;
const CONNECTIONS = 50;
/** Short batches in turn, many of them: the machine's load drifts, and each pair of batches shares it. */
const ROUNDS = 8;
/** No bench handler is named `short`, so the built-in dummy runs it; both names are five letters. */
const REPORTING = { jobName: 'short', data: { durationMs: 0 } };
const SILENT = { jobName: 'stamp', data: { durationMs: 0 } };
const GOAL = 1.1;

interface Cost {
  /** Every service process, all threads, µs per job. */
  readonly service: number;
  readonly redis: number;
}

const totalOf = (cost: Cost) => cost.service + cost.redis;

async function measure(
  client: Redis,
  url: string,
  keys: readonly string[],
  pids: readonly number[],
  task: unknown,
  jobs: number,
): Promise<Cost> {
  const serviceCpu = () => pids.reduce((sum, pid) => sum + liveThreadsCpu(pid), 0);
  const before = await completedCount(client, keys);
  const cpuBefore = { service: serviceCpu(), redis: await redisCpuMicros(client) };
  const sent = await fire(url, task, jobs, CONNECTIONS);
  await waitForCompleted(client, keys, before + sent.accepted, 60_000);
  const redisAfter = await redisCpuMicros(client);
  return {
    service: (serviceCpu() - cpuBefore.service) / sent.accepted,
    redis: (redisAfter - cpuBefore.redis) / sent.accepted,
  };
}

export async function progress(): Promise<Section> {
  const redis = await startRedis();
  const service = await startService({ redisUrl: redis.url, workers: WORKERS, env: SERVICE_ENV });
  try {
    const { workers } = await service.workers();
    const pids = [service.child.pid ?? 0, ...workers.map((worker) => worker.pid)];
    const keys = await serviceCompletedKeys(service);
    const sides = [
      { task: SILENT, costs: [] as Cost[] },
      { task: REPORTING, costs: [] as Cost[] },
    ];
    const [silent, reporting] = sides as [(typeof sides)[0], (typeof sides)[0]];
    const run = (task: unknown, jobs: number) => measure(redis.client, service.url, keys, pids, task, jobs);
    // Warm-up: threads, scripts, JIT, and both bodies' modules loaded in every thread.
    for (const side of sides) await run(side.task, WARM_UP_JOBS);
    for (let i = 0; i < ROUNDS; i += 1) {
      // Alternate who goes first, so that drift in the machine's load hits both alike.
      for (const side of i % 2 === 0 ? sides : [...sides].reverse()) side.costs.push(await run(side.task, JOBS));
    }
    const ratios = reporting.costs.map((cost, i) => totalOf(cost) / totalOf(silent.costs[i] as Cost));
    const ratio = median(ratios);
    const row = (name: string, costs: Cost[]) => [
      name,
      round(median(costs.map((cost) => cost.service)), 0),
      round(median(costs.map((cost) => cost.redis)), 0),
      round(median(costs.map(totalOf)), 0),
    ];
    return {
      title: '12. What progress costs',
      body: [
        `The service (${WORKERS} processes x concurrency ${CONCURRENCY}, default settings, \`PROGRESS_INTERVAL_MS\` 1 s) runs batches of`,
        `${JOBS.toLocaleString('en')} jobs of \`durationMs: 0\` from ${CONNECTIONS} connections: the built-in dummy (11 progress reports a job) and`,
        `the \`stamp\` body (none), in turn, ${ROUNDS} rounds after ${WARM_UP_JOBS.toLocaleString('en')} warm-up jobs of each. CPU per job of every thread`,
        'of every service process, primary included (`/proc/<pid>/task/*/schedstat`), and of Redis (`INFO cpu`), from',
        'the first request to the last completion; medians over the rounds, the ratio is the median of the',
        'per-round ratios.',
        '',
        table(
          ['body', 'service µs/job', 'Redis µs/job', 'total µs/job'],
          [
            row('`stamp`: no progress', silent.costs),
            row('built-in dummy: 11 progress reports', reporting.costs),
            ['ratio dummy / stamp', '', '', round(ratio)],
          ],
        ),
        '',
        `Per-round ratios range from ${round(quantile(ratios, 0))} to ${round(quantile(ratios, 1))}: the spread is the machine's.`,
      ].join('\n'),
      targets: [
        {
          name: 'Progress: CPU per job of the dummy (11 reports) against a silent body',
          goal: `<= ${GOAL}x`,
          measured: `${round(ratio)}x`,
          met: ratio <= GOAL,
        },
      ],
    };
  } finally {
    await service.stop('SIGTERM', 20_000);
    await redis.stop();
  }
}
