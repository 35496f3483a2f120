/**
 * Scenario 1: end-to-end short-job throughput. Thousands of jobs that do nothing (the `stamp` body with
 * durationMs 0), sent by 50 connections, timed from the first request to the last completion: what a
 * client sees when the work itself is free and only the path around it costs. The comparison is the
 * plain BullMQ service of the same shape (shared queue, same processes, slots and job body), with its
 * bodies inline as a plain service runs them, and again with our thread pool.
 */
import type { Redis } from 'ioredis';
import {
  baselineCompletedKeys,
  completedCount,
  fire,
  serviceCompletedKeys,
  waitForCompleted,
} from '../lib/completions.js';
import { familyCpu, familyOf, redisCpuMicros } from '../lib/cpu.js';
import { table, type Section } from '../lib/report.js';
import { startBaseline } from '../lib/baseline.js';
import { CONCURRENCY, HANDLERS_DIR, WORKERS, startPair } from '../lib/services.js';
import { median, round } from '../lib/stats.js';

const JOBS = 6_000;
const WARM_UP_JOBS = 500;
const CONNECTIONS = 50;
const ROUNDS = 3;
const TASK = { jobName: 'stamp', data: { durationMs: 0 } };

interface Run {
  /** Jobs per second, first request to last completion. */
  readonly rate: number;
  readonly makespanMs: number;
  readonly refused: number;
  /** CPU per job, µs: every thread of every process of the side, and Redis (which only this side used meanwhile). */
  readonly cpuPerJob: number;
  readonly redisPerJob: number;
}

interface Side {
  readonly url: string;
  readonly keys: readonly string[];
  /** The side's primary and the processes it forked. */
  readonly pids: readonly number[];
  readonly runs: Run[];
}

async function run(client: Redis, side: Side, jobs: number): Promise<Run> {
  const before = await completedCount(client, side.keys);
  const [cpuBefore, redisBefore] = [familyCpu(side.pids), await redisCpuMicros(client)];
  const began = Date.now();
  const sent = await fire(side.url, TASK, jobs, CONNECTIONS);
  const last = await waitForCompleted(client, side.keys, before + sent.accepted, 60_000);
  // The idle wait after the last completion is short; what the processes spend idle in it is noise.
  const [cpuAfter, redisAfter] = [familyCpu(side.pids), await redisCpuMicros(client)];
  const makespanMs = last - began;
  return {
    rate: (sent.accepted / makespanMs) * 1000,
    makespanMs,
    refused: sent.refused,
    cpuPerJob: (cpuAfter - cpuBefore) / sent.accepted,
    redisPerJob: (redisAfter - redisBefore) / sent.accepted,
  };
}

/** A side's processes: its primary and the processes it forked, found once they all run. */
function pidsOf(primary: number | undefined): number[] {
  if (primary === undefined) throw new Error('a side without a process');
  return familyOf(primary);
}

export async function endToEnd(): Promise<Section> {
  const pair = await startPair('shared');
  const inline = await startBaseline({
    redisUrl: pair.redis.url,
    mode: 'shared',
    runner: 'inline',
    workers: WORKERS,
    concurrency: CONCURRENCY,
    handlersDir: HANDLERS_DIR,
  });
  try {
    const { service, baseline, redis } = pair;
    const sides: Side[] = [
      { url: service.url, keys: await serviceCompletedKeys(service), pids: pidsOf(service.child.pid), runs: [] },
      {
        url: inline.url,
        keys: baselineCompletedKeys(inline, 'shared', WORKERS),
        pids: pidsOf(inline.child.pid),
        runs: [],
      },
      {
        url: baseline.url,
        keys: baselineCompletedKeys(baseline, 'shared', WORKERS),
        pids: pidsOf(baseline.child.pid),
        runs: [],
      },
    ];
    const [ours, plainInline, plainThreads] = sides as [Side, Side, Side];
    // Warm-up: threads, scripts, JIT and connections, on every side.
    for (const side of sides) await run(redis.client, side, WARM_UP_JOBS);
    for (let i = 0; i < ROUNDS; i += 1) {
      // Rotate who goes first, so that drift in the machine's load hits every side alike.
      for (let j = 0; j < sides.length; j += 1) {
        const side = sides[(i + j) % sides.length] as Side;
        side.runs.push(await run(redis.client, side, JOBS));
      }
    }
    // Each round compares runs made back to back; the median of the ratios shrugs off a noisy round.
    const ratioTo = (other: Run[]) => median(ours.runs.map((r, i) => r.rate / (other[i]?.rate ?? Number.NaN)));
    const ratio = ratioTo(plainInline.runs);
    const ratioThreads = ratioTo(plainThreads.runs);
    const cpuRatio = (pick: (run: Run) => number) =>
      median(ours.runs.map((r, i) => pick(r) / pick(plainThreads.runs[i] ?? r)));
    const cpu = cpuRatio((r) => r.cpuPerJob + r.redisPerJob);
    const redisCpu = cpuRatio((r) => r.redisPerJob);
    const cpuRow = (name: string, runs: Run[]) => [
      name,
      round(median(runs.map((r) => r.cpuPerJob)), 0),
      round(median(runs.map((r) => r.redisPerJob)), 0),
      round(median(runs.map((r) => r.cpuPerJob + r.redisPerJob)), 0),
    ];
    const row = (name: string, runs: Run[]) => [
      name,
      round(median(runs.map((r) => r.rate)), 0),
      round(median(runs.map((r) => r.makespanMs)), 0),
      runs.reduce((sum, r) => sum + r.refused, 0),
    ];
    const perRound = (runs: Run[]) => runs.map((r) => round(r.rate, 0)).join(', ');
    return {
      title: '1. End-to-end short-job throughput',
      body: [
        `${JOBS.toLocaleString('en')} jobs of \`durationMs: 0\` (the \`stamp\` body, the same for every side) sent by ${CONNECTIONS} connections,`,
        "timed from the first request to the last completion (the highest score in BullMQ's completed sets, read",
        `from Redis so that no polling loads the services). Every side: ${WORKERS} processes x concurrency ${CONCURRENCY}, Express +`,
        `\`Queue.add\`, one Redis. The plain BullMQ service runs bodies inline, as the issue measured it; it also runs`,
        'with our Piscina pool, which isolates the cost of the thread hand-off. ',
        `${WARM_UP_JOBS} warm-up jobs each, then ${ROUNDS} rounds rotating who goes first; medians over the rounds, ratios`,
        'are medians of the per-round ratios.',
        '',
        table(
          ['', 'jobs/s', 'makespan ms', 'non-2xx + errors'],
          [
            row('service (least-loaded at enqueue, ledger, work stealing, bodies in threads)', ours.runs),
            row('plain BullMQ, one shared queue, bodies inline', plainInline.runs),
            row('plain BullMQ, one shared queue, bodies in the same Piscina pool', plainThreads.runs),
            ['ratio service / plain inline', round(ratio), '', ''],
            ['ratio service / plain with threads', round(ratioThreads), '', ''],
          ],
        ),
        '',
        `Per-round jobs/s: service ${perRound(ours.runs)}; plain inline ${perRound(plainInline.runs)}; plain with threads ${perRound(plainThreads.runs)}.`,
        '',
        'CPU per job over the same runs, as the OS counts it (every thread of every process of a side, from',
        '`/proc/<pid>/stat`) and as Redis counts it (`INFO cpu`; only the side being measured used Redis meanwhile);',
        'medians over the rounds, ratios medians of the per-round ratios:',
        '',
        table(
          ['', 'processes µs/job', 'Redis µs/job', 'total µs/job'],
          [
            cpuRow('service', ours.runs),
            cpuRow('plain BullMQ, bodies inline', plainInline.runs),
            cpuRow('plain BullMQ, bodies in the same Piscina pool', plainThreads.runs),
            ['ratio service / plain with threads', '', round(redisCpu), round(cpu)],
          ],
        ),
      ].join('\n'),
      targets: [
        {
          name: 'End-to-end short jobs/s against plain BullMQ with the same pool',
          goal: '>= 0.95x',
          measured: `${round(ratioThreads)}x`,
          met: ratioThreads >= 0.95,
        },
        {
          name: 'End-to-end short jobs/s against plain BullMQ with bodies inline',
          goal: '>= 0.8x',
          measured: `${round(ratio)}x`,
          met: ratio >= 0.8,
        },
        {
          name: 'CPU per short job (processes + Redis) against plain BullMQ with the same pool',
          goal: '<= 1.2x',
          measured: `${round(cpu)}x`,
          met: cpu <= 1.2,
        },
        {
          name: 'Redis CPU per short job against plain BullMQ with the same pool',
          goal: '<= 1.3x',
          measured: `${round(redisCpu)}x`,
          met: redisCpu <= 1.3,
        },
      ],
    };
  } finally {
    await Promise.allSettled([inline.stop()]);
    await pair.stop();
  }
}
