/**
 * Scenario 4: saturation. K x 32 jobs of duration D arrive at once: the makespan against the ideal
 * K x D, the peak number of jobs running at once (from the bodies' own stamps) and how long a slot
 * stays idle between one job and the next. The shared-queue baseline runs the same load.
 */
import { sendAll, waitForResults, wallClock } from '../lib/load.js';
import { table, type Section } from '../lib/report.js';
import { CONCURRENCY, WORKERS, startPair } from '../lib/services.js';
import { peakOverlap } from '../../test/support/intervals.js';
import { quantile, round } from '../lib/stats.js';
import { slotGaps, type Stamp } from '../lib/stamps.js';

const K = 5;
const D_MS = 1_000;
const CAPACITY = WORKERS * CONCURRENCY;

interface Outcome {
  readonly makespan: number;
  readonly peak: number;
  readonly gaps: number[];
}

async function run(url: string): Promise<Outcome> {
  // Warm up: open the client's 50 connections and the service's threads, so the burst measures the
  // service rather than TCP handshakes.
  const warm = await sendAll<{ jobId: string }>(
    url,
    Array.from({ length: 50 }, () => ({ jobName: 'stamp', data: { durationMs: 0 } })),
    50,
  );
  await waitForResults<Stamp>(
    url,
    warm.map((s) => s.body.jobId),
    60_000,
  );
  const began = wallClock();
  const sent = await sendAll<{ jobId: string }>(
    url,
    Array.from({ length: K * CAPACITY }, () => ({ jobName: 'stamp', data: { durationMs: D_MS } })),
    50,
  );
  const stamps = await waitForResults<Stamp>(
    url,
    sent.map((s) => s.body.jobId),
    120_000,
  );
  const makespan = Math.max(...stamps.map((s) => s.finishedAt)) - began;
  return {
    makespan,
    peak: peakOverlap(stamps.map((s) => [s.startedAt, s.finishedAt] as const)),
    gaps: slotGaps(stamps),
  };
}

export async function saturation(): Promise<Section> {
  const pair = await startPair('shared');
  try {
    const ours = await run(pair.service.url);
    const theirs = await run(pair.baseline.url);
    const ideal = K * D_MS;
    const row = (name: string, o: Outcome) => [
      name,
      round(o.makespan, 0),
      round(o.makespan / ideal, 3),
      o.peak,
      round(quantile(o.gaps, 0.5), 1),
      round(quantile(o.gaps, 0.99), 1),
    ];
    const within = ours.makespan / ideal;
    return {
      title: '4. Saturation',
      body: [
        `${K} x ${CAPACITY} = ${K * CAPACITY} jobs of ${D_MS} ms sent at once (50 in flight, connections warmed up first). Ideal makespan ${ideal} ms.`,
        'Makespan runs from the first request to the last body end. Peak and slot gaps come from the',
        "bodies' own start and end stamps. A slot is one thread of one process.",
        '',
        table(
          ['', 'makespan ms', 'x ideal', 'peak running', 'slot idle gap p50 ms', 'slot idle gap p99 ms'],
          [row('service', ours), row('shared-queue baseline', theirs)],
        ),
      ].join('\n'),
      targets: [
        {
          name: 'Saturation makespan',
          goal: 'within 2% of K x D',
          measured: `${round((within - 1) * 100, 1)}% over`,
          met: within <= 1.02,
        },
        {
          name: 'Saturation peak',
          goal: 'exactly 32 running',
          measured: String(ours.peak),
          met: ours.peak === CAPACITY,
        },
      ],
    };
  } finally {
    await pair.stop();
  }
}
