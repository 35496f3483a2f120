/**
 * Scenario 14: what durable acceptance costs (ENQUEUE_MIN_REPLICAS=1). Two services on one
 * redis-server master with one replica, under their own prefixes: one answers once the master has a
 * job (the default), the other once the replica has acknowledged it too (Redis WAIT). They take turns
 * in short rounds of enqueues, as in section 2, so that both meet the same machine.
 */
import { startRedis } from '../../test/support/redis-server.js';
import { startService } from '../../test/support/service.js';
import { median, round } from '../lib/stats.js';
import { table, type Section } from '../lib/report.js';
import { SERVICE_ENV, WORKERS } from '../lib/services.js';
import { enqueueLoad } from './throughput.js';

const ROUNDS = 3;
const ROUND_SECONDS = 3;

export async function durable(): Promise<Section> {
  const master = await startRedis();
  const replica = await startRedis({ replicaOf: master.port });
  const start = (env: Record<string, string>) =>
    startService({ redisUrl: master.url, workers: WORKERS, env: { ...SERVICE_ENV, ...env } });
  const services = await Promise.all([start({}), start({ ENQUEUE_MIN_REPLICAS: '1' })]);
  try {
    const sides = services.map((service) => ({
      url: service.url,
      runs: [] as Awaited<ReturnType<typeof enqueueLoad>>[],
    }));
    for (const side of sides) await enqueueLoad(side.url, 1);
    for (let i = 0; i < ROUNDS; i += 1) {
      for (let k = 0; k < sides.length; k += 1) {
        const side = sides[(i + k) % sides.length];
        side?.runs.push(await enqueueLoad(side.url, ROUND_SECONDS));
      }
    }
    const [off = [], on = []] = sides.map((side) => side.runs);
    const summary = (runs: typeof off) => ({
      rps: median(runs.map((r) => r.rps)),
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      non2xx: runs.reduce((sum, r) => sum + r.non2xx, 0),
    });
    const a = summary(off);
    const b = summary(on);
    const ratio = median(on.map((r, i) => r.rps / (off[i]?.rps ?? Number.NaN)));
    return {
      title: '14. Durable acceptance: what waiting for a replica costs',
      body: [
        `50 connections, ${ROUNDS} alternating rounds of ${ROUND_SECONDS} s each, two services on one redis-server master with one replica (loopback).`,
        'With `ENQUEUE_MIN_REPLICAS=1` each 202 waits for the replica to acknowledge the job (one `WAIT` at a time per process, shared by the enqueues that finished meanwhile). Figures are medians over the rounds.',
        '',
        table(
          ['', 'requests/s', 'p50 ms', 'p99 ms', 'non-2xx + errors'],
          [
            ['`ENQUEUE_MIN_REPLICAS=0` (default)', round(a.rps, 0), a.p50, a.p99, a.non2xx],
            ['`ENQUEUE_MIN_REPLICAS=1`', round(b.rps, 0), b.p50, b.p99, b.non2xx],
            ['ratio on / off', round(ratio), round(b.p50 / a.p50), round(b.p99 / a.p99), ''],
          ],
        ),
        '',
        `Per-round requests/s, off / on: ${off.map((r, i) => `${round(r.rps, 0)} / ${round(on[i]?.rps ?? 0, 0)}`).join(', ')}.`,
      ].join('\n'),
      targets: [],
    };
  } finally {
    await Promise.allSettled(services.map((service) => service.stop('SIGTERM', 20_000)));
    await replica.stop();
    await master.stop();
  }
}
