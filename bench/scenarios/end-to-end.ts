/**
 * Scenario 1: end-to-end short-job throughput. Thousands of jobs that do nothing (the `stamp` body with
 * durationMs 0), sent by 50 connections, timed from the first request to the last completion: what a
 * client sees when the work itself is free and only the path around it costs. The comparison is the
 * plain BullMQ service of the same shape (shared queue, same processes, slots and job body).
 */
import type { Redis } from 'ioredis';
import {
  baselineCompletedKeys,
  completedCount,
  fire,
  serviceCompletedKeys,
  waitForCompleted,
} from '../lib/completions.js';
import { table, type Section } from '../lib/report.js';
import { CONCURRENCY, WORKERS, startPair } from '../lib/services.js';
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
}

async function run(client: Redis, url: string, keys: readonly string[], jobs: number): Promise<Run> {
  const before = await completedCount(client, keys);
  const began = Date.now();
  const sent = await fire(url, TASK, jobs, CONNECTIONS);
  const last = await waitForCompleted(client, keys, before + sent.accepted, 60_000);
  const makespanMs = last - began;
  return { rate: (sent.accepted / makespanMs) * 1000, makespanMs, refused: sent.refused };
}

export async function endToEnd(): Promise<Section> {
  const pair = await startPair('shared');
  try {
    const { service, baseline, redis } = pair;
    const serviceKeys = await serviceCompletedKeys(service);
    const baselineKeys = baselineCompletedKeys(baseline, 'shared', WORKERS);
    const runService = (jobs: number) => run(redis.client, service.url, serviceKeys, jobs);
    const runBaseline = (jobs: number) => run(redis.client, baseline.url, baselineKeys, jobs);
    // Warm-up: threads, scripts, JIT and connections, on both sides.
    await runService(WARM_UP_JOBS);
    await runBaseline(WARM_UP_JOBS);
    const ours: Run[] = [];
    const theirs: Run[] = [];
    for (let i = 0; i < ROUNDS; i += 1) {
      // Alternate who goes first, so that drift in the machine's load hits both alike.
      if (i % 2 === 0) {
        ours.push(await runService(JOBS));
        theirs.push(await runBaseline(JOBS));
      } else {
        theirs.push(await runBaseline(JOBS));
        ours.push(await runService(JOBS));
      }
    }
    // Each round pairs two back-to-back runs; the median of their ratios shrugs off a noisy round.
    const ratio = median(ours.map((r, i) => r.rate / (theirs[i]?.rate ?? Number.NaN)));
    const row = (name: string, runs: Run[]) => [
      name,
      round(median(runs.map((r) => r.rate)), 0),
      round(median(runs.map((r) => r.makespanMs)), 0),
      runs.reduce((sum, r) => sum + r.refused, 0),
    ];
    return {
      title: '1. End-to-end short-job throughput',
      body: [
        `${JOBS.toLocaleString('en')} jobs of \`durationMs: 0\` (the \`stamp\` body, the same for both) sent by ${CONNECTIONS} connections,`,
        "timed from the first request to the last completion (the highest score in BullMQ's completed sets, read",
        `from Redis so that no polling loads the services). Both sides: ${WORKERS} processes x concurrency ${CONCURRENCY}, bodies in`,
        `each process's Piscina pool, Express + \`Queue.add\`; one Redis. ${WARM_UP_JOBS} warm-up jobs each, then ${ROUNDS} alternating rounds;`,
        'medians over the rounds, the ratio is the median of the per-round ratios.',
        '',
        table(
          ['', 'jobs/s', 'makespan ms', 'non-2xx + errors'],
          [
            row('service (least-loaded at enqueue, ledger, work stealing)', ours),
            row('plain BullMQ (one shared queue)', theirs),
            ['ratio service / plain', round(ratio), '', ''],
          ],
        ),
        '',
        `Per-round jobs/s, service / plain: ${ours.map((r, i) => `${round(r.rate, 0)} / ${round(theirs[i]?.rate ?? 0, 0)}`).join(', ')}.`,
      ].join('\n'),
      targets: [
        {
          name: 'End-to-end short-job throughput',
          goal: '>= 0.9x plain BullMQ jobs/s',
          measured: `${round(ratio)}x`,
          met: ratio >= 0.9,
        },
      ],
    };
  } finally {
    await pair.stop();
  }
}
