/**
 * Scenario 7: memory. Resident memory of every process idle and with 100,000 jobs queued, and the
 * Redis bytes each waiting job costs (INFO memory before and after), beside the naive baseline's
 * jobs, which carry no ledger entry.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { fire } from '../lib/completions.js';
import { ledgerKeys } from '../../src/contracts/keys.js';
import { waitFor } from '../../test/support/wait.js';
import { table, type Section } from '../lib/report.js';
import { startPair } from '../lib/services.js';
import { round } from '../lib/stats.js';

const JOBS = 100_000;

function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) / 1024;
}

async function usedMemory(client: Redis): Promise<number> {
  const info = await client.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

export async function memory(): Promise<Section> {
  const pair = await startPair('shared');
  try {
    const { service, baseline, redis } = pair;
    const workers = (await service.workers()).workers;
    const pids = [service.child.pid ?? 0, ...workers.map((worker) => worker.pid)];
    const idle = pids.map(rssMb);
    const task = { jobName: 'queued', data: { durationMs: 600_000 } };

    const before = await usedMemory(redis.client);
    // autocannon rather than fetch: the client is the lighter, so the 2 cores queue the jobs sooner.
    const ours = await fire(service.url, task, JOBS, 50);
    const loaded = pids.map(rssMb);
    // Each new reservation is also listed as not yet confirmed by its job, for a few seconds, until a
    // reconcile pass has seen the job: what a waiting job holds for good is measured once they are.
    const unconfirmed = ledgerKeys(service.prefix);
    await waitFor(
      async () =>
        (await Promise.all(workers.map((worker) => redis.client.zcard(unconfirmed.unconfirmed(worker.id))))).every(
          (count) => count === 0,
        ),
      { timeoutMs: 120_000, intervalMs: 500, what: 'the reconcile passes to confirm the queued jobs' },
    );
    const afterService = await usedMemory(redis.client);
    const theirs = await fire(baseline.url, task, JOBS, 50);
    const afterBaseline = await usedMemory(redis.client);

    const perJob = (afterService - before) / ours.accepted;
    const perBaselineJob = (afterBaseline - afterService) / theirs.accepted;
    const ratio = perJob / perBaselineJob;
    return {
      title: '7. Memory',
      body: [
        `Resident memory (VmRSS) of the primary and each worker, idle and right after ${JOBS.toLocaleString('en')} jobs were queued`,
        '(10-minute jobs sent by autocannon over 50 connections, so 32 run and the rest wait). Redis bytes per',
        'waiting job from `INFO memory` before and after, per accepted job, once the reconcile passes have',
        'confirmed every reservation (a reservation is listed apart for the few seconds until its job is seen);',
        'the baseline (shared queue) then queues the same number on the same Redis.',
        '',
        table(
          ['process', 'idle MB', `after ${JOBS.toLocaleString('en')} queued MB`],
          pids.map((pid, i) => [
            i === 0 ? 'primary' : (workers[i - 1]?.id ?? String(pid)),
            round(idle[i] ?? 0, 1),
            round(loaded[i] ?? 0, 1),
          ]),
        ),
        '',
        table(
          ['', 'Redis bytes per waiting job'],
          [
            ['service (job + ledger entry)', round(perJob, 0)],
            ['naive baseline (job only)', round(perBaselineJob, 0)],
            ['ratio service / baseline', round(ratio, 2)],
          ],
        ),
        ...(ours.refused + theirs.refused > 0
          ? ['', `Refused or failed requests: service ${ours.refused}, baseline ${theirs.refused}.`]
          : []),
      ].join('\n'),
      targets: [
        {
          name: 'Redis bytes per waiting job',
          goal: '<= 1.1x naive baseline',
          measured: `${round(ratio, 2)}x (${round(perJob, 0)} / ${round(perBaselineJob, 0)} B)`,
          met: ratio <= 1.1,
        },
      ],
    };
  } finally {
    await pair.stop();
  }
}
