/**
 * Scenario 16 (issue 24): what tracing costs a short job. The same end-to-end load as section 1
 * (jobs of `durationMs: 0`, 50 connections) on three builds side by side, one Redis: the code before
 * tracing (a build of BEFORE_COMMIT), this code with tracing off (the default: no OpenTelemetry
 * module is loaded), and this code with tracing on, every trace sampled, exporting OTLP/HTTP to a
 * receiver in this process that decodes every span. CPU per job as the OS counts it for every
 * process of a side, and as Redis counts it.
 */
import type { Redis } from 'ioredis';
import { completedCount, fire, serviceCompletedKeys, waitForCompleted } from '../lib/completions.js';
import { buildCheckout } from '../lib/checkout.js';
import { familyCpu, familyOf, redisCpuMicros } from '../lib/cpu.js';
import { table, type Section } from '../lib/report.js';
import { SERVICE_ENV, WORKERS } from '../lib/services.js';
import { median, round } from '../lib/stats.js';
import { startOtlpReceiver } from '../../test/support/otlp-receiver.js';
import { startRedis } from '../../test/support/redis-server.js';
import { startService, type Service } from '../../test/support/service.js';

/** The last commit before tracing (issue 24): what "the code before" runs. */
export const BEFORE_COMMIT = 'd9c2009';
const JOBS = 5_000;
const WARM_UP_JOBS = 500;
const CONNECTIONS = 50;
const ROUNDS = 4;
const TASK = { jobName: 'stamp', data: { durationMs: 0 } };

interface Side {
  readonly name: string;
  readonly service: Service;
  readonly keys: readonly string[];
  readonly pids: readonly number[];
  readonly cpu: number[];
  readonly redis: number[];
}

async function run(client: Redis, side: Side, jobs: number): Promise<{ cpu: number; redis: number }> {
  const before = await completedCount(client, side.keys);
  const [cpuBefore, redisBefore] = [familyCpu(side.pids), await redisCpuMicros(client)];
  const sent = await fire(side.service.url, TASK, jobs, CONNECTIONS);
  await waitForCompleted(client, side.keys, before + sent.accepted, 60_000);
  const [cpuAfter, redisAfter] = [familyCpu(side.pids), await redisCpuMicros(client)];
  return { cpu: (cpuAfter - cpuBefore) / sent.accepted, redis: (redisAfter - redisBefore) / sent.accepted };
}

export async function tracing(): Promise<Section> {
  const checkout = buildCheckout(BEFORE_COMMIT);
  const redis = await startRedis();
  const receiver = await startOtlpReceiver();
  const start = async (name: string, env: Record<string, string>, root?: string): Promise<Side> => {
    const service = await startService({
      redisUrl: redis.url,
      workers: WORKERS,
      env: { ...SERVICE_ENV, HANDLERS_DIR: `${process.cwd()}/${SERVICE_ENV.HANDLERS_DIR}`, ...env },
      ...(root === undefined ? {} : { root }),
    });
    const pid = service.child.pid;
    if (pid === undefined) throw new Error(`${name}: no process`);
    return { name, service, keys: await serviceCompletedKeys(service), pids: familyOf(pid), cpu: [], redis: [] };
  };
  const sides: Side[] = [];
  try {
    sides.push(await start('the code before tracing', {}, checkout.root));
    sides.push(await start('tracing off (this code)', {}));
    sides.push(
      await start('tracing on, every trace sampled', {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_TRACES_SAMPLER: 'always_on',
      }),
    );
    const [before, off, on] = sides as [Side, Side, Side];
    for (const side of sides) await run(redis.client, side, WARM_UP_JOBS);
    for (let i = 0; i < ROUNDS; i += 1) {
      // Who goes first rotates, so that drift in the machine's load hits every side alike.
      for (let j = 0; j < sides.length; j += 1) {
        const side = sides[(i + j) % sides.length] as Side;
        const measured = await run(redis.client, side, JOBS);
        side.cpu.push(measured.cpu);
        side.redis.push(measured.redis);
      }
    }
    const total = (side: Side) => side.cpu.map((cpu, i) => cpu + (side.redis[i] ?? 0));
    // Each round's sides ran back to back: the median of the per-round ratios.
    const ratio = (a: Side, b: Side) => median(total(a).map((value, i) => value / (total(b)[i] ?? Number.NaN)));
    const offRatio = ratio(off, before);
    const onRatio = ratio(on, before);
    const row = (side: Side) => [
      side.name,
      round(median(side.cpu), 0),
      round(median(side.redis), 0),
      round(median(total(side)), 0),
      side === before ? '1.00' : round(ratio(side, before)),
    ];
    return {
      title: '16. What tracing costs a short job',
      body: [
        `${JOBS.toLocaleString('en')} jobs of \`durationMs: 0\` per round sent by ${CONNECTIONS} connections to each of three`,
        `services on one Redis (${WORKERS} processes each): a build of the code before tracing (commit ${BEFORE_COMMIT}), this`,
        'code with tracing off (no module of the OpenTelemetry SDK loaded), and this code with tracing on, every trace',
        `sampled (\`OTEL_TRACES_SAMPLER=always_on\`), exporting OTLP/HTTP JSON to a receiver in the benchmark's own`,
        `process that decodes every span (${receiver.spans.length.toLocaleString('en')} spans arrived). ${WARM_UP_JOBS} warm-up jobs each, then`,
        `${ROUNDS} rounds rotating who goes first; medians, ratios medians of the per-round ratios.`,
        '',
        table(['', 'processes µs/job', 'Redis µs/job', 'total µs/job', 'x before'], sides.map(row)),
      ].join('\n'),
      targets: [
        {
          name: 'CPU per short job with tracing off against the code before tracing',
          goal: '<= 1.02x',
          measured: `${round(offRatio)}x`,
          met: offRatio <= 1.02,
        },
        {
          name: 'CPU per short job with tracing on (100% sampled), against the code before',
          goal: 'measured',
          measured: `${round(onRatio)}x`,
          met: Number.isFinite(onRatio),
        },
      ],
    };
  } finally {
    await Promise.allSettled(sides.map(({ service }) => service.stop('SIGTERM', 20_000)));
    await redis.stop();
    await receiver.stop();
    checkout.remove();
  }
}
