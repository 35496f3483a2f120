/**
 * Scenario 3: dispatch latency with free capacity, from the enqueue response (and from the request)
 * to the job body starting in its thread, measured from the body's own start stamp. The naive
 * baseline runs the same requests for comparison.
 */
import { sendAll, waitForResults, type Sent } from '../lib/load.js';
import { table, type Section } from '../lib/report.js';
import { startPair } from '../lib/services.js';
import { quantile, round } from '../lib/stats.js';

const JOBS = 300;

interface Stamp {
  readonly startedAt: number;
}

/** Latencies of JOBS jobs sent one at a time to the service at `url`. */
export async function measure(url: string): Promise<{ fromAnswer: number[]; fromRequest: number[] }> {
  // One request at a time: capacity is always free, and nothing else competes for the CPU.
  const sent: Sent<{ jobId: string }>[] = await sendAll(
    url,
    Array.from({ length: JOBS }, () => ({ jobName: 'stamp', data: { durationMs: 0 } })),
    1,
  );
  const stamps = await waitForResults<Stamp>(
    url,
    sent.map((s) => s.body.jobId),
    60_000,
  );
  return {
    // A body may start before its answer reaches the client: that is no wait at all.
    fromAnswer: stamps.map((stamp, i) => Math.max(0, stamp.startedAt - (sent[i]?.answeredAt ?? 0))),
    fromRequest: stamps.map((stamp, i) => stamp.startedAt - (sent[i]?.sentAt ?? 0)),
  };
}

export async function dispatch(): Promise<Section> {
  const pair = await startPair('shared');
  try {
    await measure(pair.service.url); // warm-up: threads, scripts, connections
    const ours = await measure(pair.service.url);
    const theirs = await measure(pair.baseline.url);
    const row = (name: string, m: { fromAnswer: number[]; fromRequest: number[] }) => [
      name,
      round(quantile(m.fromAnswer, 0.5)),
      round(quantile(m.fromAnswer, 0.99)),
      round(quantile(m.fromRequest, 0.5)),
      round(quantile(m.fromRequest, 0.99)),
    ];
    const p99 = quantile(ours.fromAnswer, 0.99);
    return {
      title: '3. Dispatch latency',
      body: [
        `${JOBS} jobs sent one at a time (free capacity), after ${JOBS} warm-up jobs. Latency is from the`,
        'moment the client has the 202 (or sent the request) to the moment the body starts in its thread,',
        'stamped by the body itself on the shared wall clock. Milliseconds.',
        '',
        table(
          ['', 'answer to start p50', 'answer to start p99', 'request to start p50', 'request to start p99'],
          [row('service', ours), row('naive baseline', theirs)],
        ),
      ].join('\n'),
      targets: [{ name: 'Dispatch latency', goal: 'p99 <= 5 ms', measured: `p99 ${round(p99)} ms`, met: p99 <= 5 }],
    };
  } finally {
    await pair.stop();
  }
}
