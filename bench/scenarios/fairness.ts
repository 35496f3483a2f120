/**
 * Scenario 5: fairness under a burst. 10,000 enqueues from 50 connections, with jobs long enough
 * that none finishes during the burst: how evenly they land, beside a selection that counts only
 * running jobs (the baseline in `running` mode, which reads every process's running count with one
 * MGET and picks the smallest, as the seed did).
 */
import { sendAll } from '../lib/load.js';
import { table, type Section } from '../lib/report.js';
import { startPair } from '../lib/services.js';

const JOBS = 10_000;

async function spread(url: string): Promise<{ counts: number[]; refused: number }> {
  const sent = await sendAll<{ assignedWorker: string }>(
    url,
    Array.from({ length: JOBS }, () => ({ jobName: 'burst', data: { durationMs: 600_000 } })),
    50,
  );
  const counts = new Map<string, number>();
  let refused = 0;
  for (const answer of sent) {
    if (answer.status !== 202) refused += 1;
    else counts.set(answer.body.assignedWorker, (counts.get(answer.body.assignedWorker) ?? 0) + 1);
  }
  return { counts: [...counts.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, n]) => n), refused };
}

export async function fairness(): Promise<Section> {
  const pair = await startPair('running');
  try {
    const ours = await spread(pair.service.url);
    const theirs = await spread(pair.baseline.url);
    const range = (counts: number[]) => Math.max(...counts) - Math.min(...counts, ...(counts.length < 4 ? [0] : []));
    const oursSpread = range(ours.counts);
    return {
      title: '5. Fairness under a burst',
      body: [
        `${JOBS} enqueues from 50 connections; every job lasts 10 minutes, so none finishes during the burst.`,
        'Spread is the largest minus the smallest per-worker count (a worker that got nothing counts 0).',
        '',
        table(
          ['', 'per-worker assignments', 'spread', 'refused'],
          [
            ['service (least running + waiting, atomic)', ours.counts.join(' / '), oursSpread, ours.refused],
            ['selection by running jobs only', theirs.counts.join(' / '), range(theirs.counts), theirs.refused],
          ],
        ),
      ].join('\n'),
      targets: [{ name: 'Burst spread', goal: '<= 1', measured: String(oursSpread), met: oursSpread <= 1 }],
    };
  } finally {
    await pair.stop();
  }
}
