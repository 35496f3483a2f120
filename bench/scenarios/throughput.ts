/**
 * Scenario 2: enqueue throughput and latency with 50 connections. The comparison is the seed-style
 * service (the baseline in `running` mode: Express, one MGET of every process's running count, then
 * Queue.add to the process with the fewest), and, as an extra row, plain BullMQ (Queue.add to one
 * shared queue). All three take turns in rounds on the same Redis. Jobs are long, so the consumers
 * only ever run 32 of them on each side and the HTTP path is what is measured.
 */
import autocannon from 'autocannon';
import { median, round } from '../lib/stats.js';
import { startBaseline } from '../lib/baseline.js';
import { table, type Section } from '../lib/report.js';
import { CONCURRENCY, HANDLERS_DIR, WORKERS, startPair } from '../lib/services.js';

const CONNECTIONS = 50;
const ROUND_SECONDS = 3;
const ROUNDS = 5;
const BODY = JSON.stringify({ jobName: 'bench', data: { durationMs: 600_000 } });

interface Round {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly non2xx: number;
}

/** Enqueues of long jobs over `CONNECTIONS` connections for `seconds`: autocannon's mean requests/s. */
export async function enqueueLoad(url: string, seconds: number): Promise<Round> {
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
  const pair = await startPair('running');
  const shared = await startBaseline({
    redisUrl: pair.redis.url,
    mode: 'shared',
    workers: WORKERS,
    concurrency: CONCURRENCY,
    handlersDir: HANDLERS_DIR,
  }).catch(async (error: unknown) => {
    await pair.stop();
    throw error;
  });
  try {
    const sides = [pair.service.url, pair.baseline.url, shared.url].map((url) => ({ url, runs: [] as Round[] }));
    for (const side of sides) await enqueueLoad(side.url, 1);
    for (let i = 0; i < ROUNDS; i += 1) {
      // Rotate who goes first, so that drift in the machine's load hits all alike.
      for (let k = 0; k < sides.length; k += 1) {
        const side = sides[(i + k) % sides.length];
        side?.runs.push(await enqueueLoad(side.url, ROUND_SECONDS));
      }
    }
    const [ours = [], seed = [], plain = []] = sides.map((side) => side.runs);
    const summary = (runs: Round[]) => ({
      rps: median(runs.map((r) => r.rps)),
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      non2xx: runs.reduce((sum, r) => sum + r.non2xx, 0),
    });
    const a = summary(ours);
    const b = summary(seed);
    const c = summary(plain);
    // Each round runs the sides back to back; the median of their ratios shrugs off a noisy round.
    const ratioTo = (theirs: Round[]) => median(ours.map((r, i) => r.rps / (theirs[i]?.rps ?? Number.NaN)));
    const ratio = ratioTo(seed);
    const plainRatio = ratioTo(plain);
    return {
      title: '2. Enqueue throughput and latency',
      body: [
        `${CONNECTIONS} connections, ${ROUNDS} rounds of ${ROUND_SECONDS} s each for each of the three, rotating who goes first, on one Redis.`,
        'Figures are medians over the rounds; a ratio is the median of the per-round ratios. The seed-style',
        "service reads every process's running count with one MGET (the counts are INCR/DECR as bodies start",
        'and end), then adds to the process with the fewest running.',
        'The service logs at `info`, its default (no line per request); the baselines log nothing. Jobs last 10 minutes, so only HTTP, validation, selection and `Queue.add` are measured.',
        '',
        table(
          ['', 'requests/s', 'p50 ms', 'p99 ms', 'non-2xx + errors'],
          [
            ['service (validate, reserve in Lua, add to the chosen worker)', round(a.rps, 0), a.p50, a.p99, a.non2xx],
            ['seed-style (one MGET of running counts, Queue.add)', round(b.rps, 0), b.p50, b.p99, b.non2xx],
            ['ratio service / seed-style', round(ratio), round(a.p50 / b.p50), round(a.p99 / b.p99), ''],
            ['plain BullMQ (Queue.add to one shared queue)', round(c.rps, 0), c.p50, c.p99, c.non2xx],
            ['ratio service / plain', round(plainRatio), round(a.p50 / c.p50), round(a.p99 / c.p99), ''],
          ],
        ),
        '',
        `Per-round requests/s, service / seed-style / plain: ${ours.map((r, i) => `${round(r.rps, 0)} / ${round(seed[i]?.rps ?? 0, 0)} / ${round(plain[i]?.rps ?? 0, 0)}`).join(', ')}.`,
      ].join('\n'),
      targets: [
        {
          name: 'Enqueue throughput',
          goal: '>= 1.0x seed-style requests/s (aim 1.2x)',
          measured: `${round(ratio)}x`,
          met: ratio >= 1.0,
        },
      ],
    };
  } finally {
    await shared.stop();
    await pair.stop();
  }
}
