/**
 * Scenario 6: mixed durations. One burst mixing short and long jobs (the same seeded sequence for
 * both): the makespan of least-loaded routing, which places each job when it arrives and lets a
 * worker with a free slot steal waiting work, against one shared queue that every worker pulls from
 * when it has a free slot.
 */
import { sendAll, waitForResults, wallClock } from '../lib/load.js';
import { table, type Section } from '../lib/report.js';
import { startPair } from '../lib/services.js';
import { median, prng, round } from '../lib/stats.js';

const JOBS = 192;
const SHORT_MS = 250;
const LONG_MS = 2_000;
const LONG_SHARE = 0.25;
const ROUNDS = 3;

function workload(): { jobName: string; data: { durationMs: number } }[] {
  const random = prng(7);
  return Array.from({ length: JOBS }, () => ({
    jobName: 'stamp',
    data: { durationMs: random() < LONG_SHARE ? LONG_MS : SHORT_MS },
  }));
}

async function makespan(url: string): Promise<number> {
  const began = wallClock();
  const sent = await sendAll<{ jobId: string }>(url, workload(), 50);
  const stamps = await waitForResults<{ finishedAt: number }>(
    url,
    sent.map((s) => s.body.jobId),
    120_000,
  );
  return Math.max(...stamps.map((s) => s.finishedAt)) - began;
}

export async function mixed(): Promise<Section> {
  const pair = await startPair('shared');
  try {
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let i = 0; i < ROUNDS; i += 1) {
      ours.push(await makespan(pair.service.url));
      theirs.push(await makespan(pair.baseline.url));
    }
    const total = workload().reduce((sum, task) => sum + task.data.durationMs, 0);
    const ratio = median(ours) / median(theirs);
    return {
      title: '6. Mixed durations',
      body: [
        `${JOBS} jobs in one burst, ${LONG_SHARE * 100}% of ${LONG_MS} ms and the rest of ${SHORT_MS} ms (seeded, the same for both);`,
        `${round(total / 1000, 1)} s of work over 32 slots, so at best ${round(total / 32, 0)} ms. Median of ${ROUNDS} alternating rounds.`,
        '',
        table(
          ['', 'makespan ms (median)', 'rounds'],
          [
            [
              'service (least-loaded at enqueue, work stealing)',
              round(median(ours), 0),
              ours.map((m) => round(m, 0)).join(', '),
            ],
            ['one shared queue', round(median(theirs), 0), theirs.map((m) => round(m, 0)).join(', ')],
            ['ratio', round(ratio, 3), ''],
          ],
        ),
      ].join('\n'),
      targets: [
        {
          name: 'Mixed-duration makespan',
          goal: '<= 1.02x shared queue',
          measured: `${round(ratio, 3)}x`,
          met: ratio <= 1.02,
        },
      ],
    };
  } finally {
    await pair.stop();
  }
}
