/**
 * Scenario 13: what a backlog costs when nothing happens. Jobs that wait cost Redis memory; they
 * should not cost Redis work. Two services side by side, each with its own Redis: one keeps an
 * (almost) empty queue, the other is loaded through `POST /enqueue-tasks` with 200,000 and then
 * 1,000,000 waiting jobs (10-minute jobs, so 32 run and the rest wait). Measured:
 *
 * - with nothing arriving, Redis commands/s (`INFO stats` total_commands_processed) and Redis CPU
 *   (`INFO cpu`, user + sys) over a fixed window, empty and with the backlog, on the loaded service's
 *   own Redis, once the reservations the load made have been checked by the reconcile passes;
 * - enqueue requests/s (autocannon, as scenario 2) on both services in alternating rounds: the empty
 *   one (empty when its first round starts; its rounds leave what they enqueue, tens of thousands
 *   of jobs by the last) and the one with 200,000 waiting;
 * - how long the loads took.
 *
 * Completed jobs are kept only 1 s on both sides, so that the job index's sweep, which looks only at
 * entries older than the shortest retention age, meets the whole backlog as old entries at once: the
 * worst case, as a backlog that waits for hours meets it with the default hour.
 */
import type { Redis } from 'ioredis';
import { ledgerKeys } from '../../src/contracts/keys.js';
import { startRedis, type TestRedis } from '../../test/support/redis-server.js';
import { startService, type Service } from '../../test/support/service.js';
import { table, type Section } from '../lib/report.js';
import { SERVICE_ENV, WORKERS } from '../lib/services.js';
import { median, round } from '../lib/stats.js';
import { enqueueLoad } from './throughput.js';

const BACKLOG = 200_000;
const BIG_BACKLOG = 1_000_000;
/** Tasks per `POST /enqueue-tasks`, and requests in flight while loading. */
const BATCH = 1_000;
const LOAD_CONNECTIONS = 4;
/** Two reconcile passes of every process, ten heartbeats. */
const IDLE_SECONDS = 10;
const ROUNDS = 5;
const ROUND_SECONDS = 2;
/** The load's last reservations are checked within the grace period and one pass; this is plenty. */
const SETTLE_TIMEOUT_MS = 120_000;
const TASK = { jobName: 'backlog', data: { durationMs: 600_000 } };

interface Side {
  readonly redis: TestRedis;
  readonly service: Service;
}

interface Idle {
  readonly commandsPerSecond: number;
  /** Percent of one core. */
  readonly cpuPercent: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function startSide(): Promise<Side> {
  const redis = await startRedis();
  try {
    // Completed jobs kept 1 s: the job index's sweep looks at entries older than the shortest
    // retention age, so the waiting jobs are old to it at once, as a backlog of hours is in service.
    const env = { ...SERVICE_ENV, COMPLETED_RETENTION_SECONDS: '1' };
    return { redis, service: await startService({ redisUrl: redis.url, workers: WORKERS, env }) };
  } catch (error) {
    await redis.stop();
    throw error;
  }
}

async function stopSide({ redis, service }: Side): Promise<void> {
  await service.stop('SIGTERM', 20_000).catch(() => undefined);
  await redis.stop();
}

async function redisCounters(client: Redis): Promise<{ commands: number; cpuSeconds: number }> {
  const text = (await client.info('stats')) + (await client.info('cpu'));
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(text)?.[1] ?? Number.NaN);
  return { commands: field('total_commands_processed'), cpuSeconds: field('used_cpu_user') + field('used_cpu_sys') };
}

/** Each Redis's commands and CPU over the same window, with nothing sent to the services. */
async function idleWindow(clients: readonly Redis[]): Promise<Idle[]> {
  const before = await Promise.all(clients.map(redisCounters));
  const began = performance.now();
  await sleep(IDLE_SECONDS * 1000);
  const after = await Promise.all(clients.map(redisCounters));
  const seconds = (performance.now() - began) / 1000;
  return clients.map((_, i) => {
    const [a, b] = [before[i], after[i]];
    if (!a || !b) throw new Error('a Redis was not read');
    // The two INFO calls of the reading before are counted in the window.
    return {
      commandsPerSecond: (b.commands - a.commands - 2) / seconds,
      cpuPercent: ((b.cpuSeconds - a.cpuSeconds) / seconds) * 100,
    };
  });
}

/**
 * Sends `batches` batches of BATCH tasks, LOAD_CONNECTIONS at a time; answers the seconds it took and
 * how many batches were refused and sent again. A batch is all or none on one Redis, and a refusal
 * here is the request connection's time-out meeting a busy Redis (503): the batch goes again.
 */
async function load(url: string, batches: number): Promise<{ seconds: number; resent: number }> {
  const body = JSON.stringify({ tasks: Array.from({ length: BATCH }, () => TASK) });
  const began = performance.now();
  let next = 0;
  let resent = 0;
  const lane = async () => {
    while (next < batches) {
      next += 1;
      for (let attempt = 1; ; attempt += 1) {
        const response = await fetch(`${url}/enqueue-tasks`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        await response.arrayBuffer();
        if (response.status === 202) break;
        if (response.status !== 503 || attempt === 5) throw new Error(`a batch was refused: ${response.status}`);
        resent += 1;
        await sleep(200);
      }
    }
  };
  await Promise.all(Array.from({ length: LOAD_CONNECTIONS }, lane));
  return { seconds: (performance.now() - began) / 1000, resent };
}

/** Waits until every reservation the load made has been checked once by the reconcile passes. */
async function settle({ redis, service }: Side): Promise<number> {
  const keys = ledgerKeys(service.prefix);
  const { workers } = await service.workers();
  const began = performance.now();
  for (;;) {
    const left = await Promise.all(workers.map((worker) => redis.client.zcard(keys.unconfirmed(worker.id))));
    if (left.every((count) => count === 0)) return (performance.now() - began) / 1000;
    if (performance.now() - began > SETTLE_TIMEOUT_MS)
      throw new Error('the reservations of the load were not checked in time');
    await sleep(250);
  }
}

async function waiting({ redis, service }: Side): Promise<number> {
  const queued = await redis.client.hvals(ledgerKeys(service.prefix).queued);
  return queued.reduce((sum, count) => sum + Number(count), 0);
}

export async function backlog(): Promise<Section> {
  const [empty, loaded] = await Promise.all([startSide(), startSide()]);
  let emptyStopped = false;
  try {
    const [emptyIdle, idleBefore] = await idleWindow([empty.redis.client, loaded.redis.client]);
    const first = await load(loaded.service.url, BACKLOG / BATCH);
    const settleSeconds = await settle(loaded);
    const [idle] = await idleWindow([loaded.redis.client]);
    const waitingAtIdle = await waiting(loaded);

    const sides = [empty, loaded].map((side) => ({ side, rps: [] as number[] }));
    for (const { side } of sides) await enqueueLoad(side.service.url, 1);
    for (let i = 0; i < ROUNDS; i += 1) {
      // Rotate who goes first, so that drift in the machine's load hits both alike.
      for (let k = 0; k < sides.length; k += 1) {
        const turn = sides[(i + k) % sides.length];
        turn?.rps.push((await enqueueLoad(turn.side.service.url, ROUND_SECONDS)).rps);
      }
    }
    const [emptyRps = [], loadedRps = []] = sides.map((turn) => turn.rps);
    const enqueueRatio = median(loadedRps.map((rps, i) => rps / (emptyRps[i] ?? Number.NaN)));
    const emptyAtEnd = await waiting(empty);
    await stopSide(empty);
    emptyStopped = true;

    const bigBatches = Math.round((BIG_BACKLOG - (await waiting(loaded))) / BATCH);
    const big = await load(loaded.service.url, bigBatches);
    const bigSettleSeconds = await settle(loaded);
    const [bigIdle] = await idleWindow([loaded.redis.client]);
    const bigWaiting = await waiting(loaded);
    if (!emptyIdle || !idleBefore || !idle || !bigIdle) throw new Error('an idle window was not measured');

    const commandsGoal = 1.5 * idleBefore.commandsPerSecond + 200;
    const idleRow = (name: string, figures: Idle, jobs: number) => [
      name,
      jobs.toLocaleString('en'),
      round(figures.commandsPerSecond, 0),
      round(figures.cpuPercent, 2),
    ];
    return {
      title: '13. Backlog cost',
      body: [
        `Two services of ${WORKERS} processes, each on its own Redis. With nothing arriving, Redis commands/s`,
        '(`INFO stats` total_commands_processed) and CPU (`INFO cpu`, user + sys, in % of one core) over',
        `${IDLE_SECONDS} s: both services empty, then the second one with ${BACKLOG.toLocaleString('en')} and ${BIG_BACKLOG.toLocaleString('en')} waiting jobs`,
        `(10-minute jobs, so 32 run; loaded through \`POST /enqueue-tasks\` in batches of ${BATCH.toLocaleString('en')} over ${LOAD_CONNECTIONS} connections),`,
        "each time once the reconcile passes had checked every reservation of the load (a job's reservation is checked once, past its grace period).",
        '',
        table(
          ['', 'jobs waiting', 'Redis commands/s', 'Redis CPU %'],
          [
            idleRow('first service, empty', emptyIdle, 0),
            idleRow('second service, empty', idleBefore, 0),
            idleRow(`second service, ${BACKLOG.toLocaleString('en')} loaded`, idle, waitingAtIdle),
            idleRow(`second service, ${BIG_BACKLOG.toLocaleString('en')} loaded`, bigIdle, bigWaiting),
          ],
        ),
        '',
        table(
          ['load', 'seconds', 'jobs/s', 'batches refused (503) and sent again', 'then all checked within s'],
          [
            [
              `0 to ${BACKLOG.toLocaleString('en')}`,
              round(first.seconds, 1),
              round(BACKLOG / first.seconds, 0),
              first.resent,
              round(settleSeconds, 1),
            ],
            [
              `on to ${BIG_BACKLOG.toLocaleString('en')}`,
              round(big.seconds, 1),
              round((bigBatches * BATCH) / big.seconds, 0),
              big.resent,
              round(bigSettleSeconds, 1),
            ],
            [`0 to ${BIG_BACKLOG.toLocaleString('en')}, in all`, round(first.seconds + big.seconds, 1), '', '', ''],
          ],
        ),
        '',
        `Enqueue (\`POST /enqueue-task\`, 50 connections, ${ROUNDS} alternating rounds of ${ROUND_SECONDS} s): ${round(median(emptyRps), 0)} requests/s on the`,
        `first service (0 waiting at the start, ${emptyAtEnd.toLocaleString('en')} at the end), ${round(median(loadedRps), 0)} with ${waitingAtIdle.toLocaleString('en')} or more waiting;`,
        `median of the per-round ratios ${round(enqueueRatio)}x. Per round, empty / loaded: ${emptyRps.map((rps, i) => `${round(rps, 0)} / ${round(loadedRps[i] ?? 0, 0)}`).join(', ')}.`,
      ].join('\n'),
      targets: [
        {
          name: `Backlog: Redis commands/s, ${BACKLOG.toLocaleString('en')} waiting, idle`,
          goal: '<= 1.5x empty + 200',
          measured: `${round(idle.commandsPerSecond, 0)} (empty ${round(idleBefore.commandsPerSecond, 0)}, goal ${round(commandsGoal, 0)})`,
          met: idle.commandsPerSecond <= commandsGoal,
        },
        {
          name: `Backlog: Redis CPU, ${BACKLOG.toLocaleString('en')} waiting, idle`,
          goal: '<= 5% of a core',
          measured: `${round(idle.cpuPercent, 2)}% (empty ${round(idleBefore.cpuPercent, 2)}%)`,
          met: idle.cpuPercent <= 5,
        },
        {
          name: `Backlog: enqueue requests/s, ${BACKLOG.toLocaleString('en')} waiting`,
          goal: '>= 0.9x empty queue',
          measured: `${round(enqueueRatio)}x`,
          met: enqueueRatio >= 0.9,
        },
        {
          name: `Backlog: Redis commands/s, ${BIG_BACKLOG.toLocaleString('en')} waiting, idle`,
          goal: '<= 1.5x empty + 200',
          measured: `${round(bigIdle.commandsPerSecond, 0)} (goal ${round(commandsGoal, 0)})`,
          met: bigIdle.commandsPerSecond <= commandsGoal,
        },
        {
          name: `Backlog: Redis CPU, ${BIG_BACKLOG.toLocaleString('en')} waiting, idle`,
          goal: '<= 5% of a core',
          measured: `${round(bigIdle.cpuPercent, 2)}%`,
          met: bigIdle.cpuPercent <= 5,
        },
      ],
    };
  } finally {
    await Promise.allSettled([emptyStopped ? undefined : stopSide(empty), stopSide(loaded)]);
  }
}
