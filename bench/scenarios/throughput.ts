/**
 * Scenario 1: enqueue throughput and latency with 50 connections, the service beside the naive
 * baseline (Express + Queue.add to one shared queue), in alternating rounds on the same Redis.
 * Jobs are long, so the consumers only ever run 32 of them and the HTTP path is what is measured.
 */
import autocannon from 'autocannon';
import { median, round } from '../lib/stats.js';
import { table, type Section } from '../lib/report.js';
import { startPair } from '../lib/services.js';

const CONNECTIONS = 50;
const ROUND_SECONDS = 3;
const ROUNDS = 8;
const BODY = JSON.stringify({ jobName: 'bench', data: { durationMs: 600_000 } });

interface Round {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly non2xx: number;
}

async function load(url: string, seconds: number): Promise<Round> {
  const result = await autocannon({
    url: `${url}/enqueue-task`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: BODY,
    connections: CONNECTIONS,
    duration: seconds,
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx + result.errors,
  };
}

export async function throughput(): Promise<Section> {
  const pair = await startPair('shared');
  try {
    const { service, baseline } = pair;
    await load(service.url, 1);
    await load(baseline.url, 1);
    const ours: Round[] = [];
    const theirs: Round[] = [];
    for (let i = 0; i < ROUNDS; i += 1) {
      // Alternate who goes first, so that drift in the machine's load hits both alike.
      if (i % 2 === 0) {
        ours.push(await load(service.url, ROUND_SECONDS));
        theirs.push(await load(baseline.url, ROUND_SECONDS));
      } else {
        theirs.push(await load(baseline.url, ROUND_SECONDS));
        ours.push(await load(service.url, ROUND_SECONDS));
      }
    }
    const summary = (rounds: Round[]) => ({
      rps: median(rounds.map((r) => r.rps)),
      p50: median(rounds.map((r) => r.p50)),
      p99: median(rounds.map((r) => r.p99)),
      non2xx: rounds.reduce((sum, r) => sum + r.non2xx, 0),
    });
    const a = summary(ours);
    const b = summary(theirs);
    // Each round pairs two back-to-back runs; the median of their ratios shrugs off a noisy round.
    const ratio = median(ours.map((round, i) => round.rps / (theirs[i]?.rps ?? Number.NaN)));
    return {
      title: '1. Enqueue throughput and latency',
      body: [
        `${CONNECTIONS} connections, ${ROUNDS} rounds of ${ROUND_SECONDS} s each for each side, alternating who goes first, on one Redis.`,
        'Figures are medians over the rounds; the ratio is the median of the per-round ratios.',
        'The service logs at `warn` (no line per request); the baseline logs nothing. Jobs last 10 minutes, so only HTTP, validation, selection and `Queue.add` are measured.',
        '',
        table(
          ['', 'requests/s', 'p50 ms', 'p99 ms', 'non-2xx + errors'],
          [
            ['service (validate, reserve in Lua, add to the chosen worker)', round(a.rps, 0), a.p50, a.p99, a.non2xx],
            ['naive baseline (Queue.add to one shared queue)', round(b.rps, 0), b.p50, b.p99, b.non2xx],
            ['ratio service / baseline', round(ratio), round(a.p50 / b.p50), round(a.p99 / b.p99), ''],
          ],
        ),
        '',
        `Per-round requests/s, service / baseline: ${ours.map((r, i) => `${round(r.rps, 0)} / ${round(theirs[i]?.rps ?? 0, 0)}`).join(', ')}.`,
      ].join('\n'),
      targets: [
        {
          name: 'Enqueue throughput',
          goal: '>= 0.9x baseline requests/s',
          measured: `${round(ratio)}x`,
          met: ratio >= 0.9,
        },
      ],
    };
  } finally {
    await pair.stop();
  }
}
