/**
 * Scenario 11: Redis Cluster against one Redis (issue 12). The same service, started once on a
 * single redis-server and once on a 3-master Redis Cluster on the same machine, each measured the
 * same way in one run: end-to-end short jobs, dispatch latency, and enqueue throughput.
 */
import { fire, serviceCompletedKeys, waitForCompleted } from '../lib/completions.js';
import { table, type Section } from '../lib/report.js';
import { SERVICE_ENV, WORKERS } from '../lib/services.js';
import { quantile, round } from '../lib/stats.js';
import { measure } from './dispatch.js';
import type { RedisClient } from '../../src/redis/connections.js';
import { startRedisCluster } from '../../test/support/redis-cluster.js';
import { startRedis } from '../../test/support/redis-server.js';
import { startService, type Service } from '../../test/support/service.js';

const SHORT_JOBS = 3_000;
const ENQUEUES = 3_000;
const CONNECTIONS = 50;

interface Figures {
  readonly endToEnd: number;
  readonly dispatchP99: number;
  readonly enqueue: number;
}

async function measureService(service: Service, client: RedisClient): Promise<Figures> {
  // Short jobs first, while every slot is free; the enqueue run last, its jobs holding their slots.
  const keys = await serviceCompletedKeys(service);
  const began = Date.now();
  const short = await fire(service.url, { jobName: 'short', data: { durationMs: 0 } }, SHORT_JOBS, CONNECTIONS);
  const last = await waitForCompleted(client, keys, short.accepted, 120_000);
  const endToEnd = (short.accepted / Math.max(1, last - began)) * 1000;
  await measure(service.url); // warm-up
  const latencies = await measure(service.url);
  const sent = Date.now();
  const long = await fire(service.url, { jobName: 'long', data: { durationMs: 600_000 } }, ENQUEUES, CONNECTIONS);
  const enqueue = (long.accepted / (Date.now() - sent)) * 1000;
  return { endToEnd, dispatchP99: quantile(latencies.fromAnswer, 0.99), enqueue };
}

export async function clusterMode(): Promise<Section> {
  const redis = await startRedis();
  let single: Figures;
  try {
    const service = await startService({ redisUrl: redis.url, workers: WORKERS, env: { ...SERVICE_ENV } });
    try {
      single = await measureService(service, redis.client);
    } finally {
      await service.stop('SIGTERM', 20_000);
    }
  } finally {
    await redis.stop();
  }
  const cluster = await startRedisCluster({ masters: 3 });
  let clustered: Figures;
  try {
    const service = await startService({
      redisUrl: '',
      clusterNodes: cluster.nodesSpec,
      workers: WORKERS,
      env: { ...SERVICE_ENV },
    });
    try {
      clustered = await measureService(service, cluster.client);
    } finally {
      await service.stop('SIGTERM', 20_000);
    }
  } finally {
    await cluster.stop();
  }
  const ratio = (a: number, b: number) => round(a / b);
  return {
    title: '11. Redis Cluster against one Redis',
    body: [
      `The same service (${WORKERS} processes × 8 slots) on one redis-server, then on a 3-master Redis Cluster on the same`,
      `machine: ${SHORT_JOBS.toLocaleString('en')} jobs of 0 ms end to end, dispatch latency as in section 3, and`,
      `${ENQUEUES.toLocaleString('en')} enqueues of long jobs, each over ${CONNECTIONS} connections. One round each, so`,
      'the ratios are as noisy as one run.',
      '',
      table(
        ['', 'end-to-end jobs/s', 'dispatch p99 ms', 'enqueue requests/s'],
        [
          ['one Redis', round(single.endToEnd, 0), round(single.dispatchP99), round(single.enqueue, 0)],
          [
            'Redis Cluster, 3 masters',
            round(clustered.endToEnd, 0),
            round(clustered.dispatchP99),
            round(clustered.enqueue, 0),
          ],
          [
            'ratio cluster / one Redis',
            ratio(clustered.endToEnd, single.endToEnd),
            ratio(clustered.dispatchP99, single.dispatchP99),
            ratio(clustered.enqueue, single.enqueue),
          ],
        ],
      ),
      '',
      "All three masters share this machine's two cores with the service, so a cluster has nothing to gain",
      'here, and differences of a few tens of percent either way are the noise of one run. With one master',
      'per machine, the worker queues, spread over the masters by their hash tags, would stop competing for',
      'one Redis core. The ledger is one slot, though: every reservation would still go to one master, and',
      'that master would set the ceiling on enqueues.',
    ].join('\n'),
    targets: [],
  };
}
