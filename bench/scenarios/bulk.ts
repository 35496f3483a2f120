/**
 * Scenario 9: bulk enqueue. The same number of tasks sent as single requests (50 connections) and
 * as batches of 100 through `POST /enqueue-tasks` (8 connections), on one service: how many more
 * jobs per second a client gets by batching. Jobs last 10 minutes, so only enqueueing is measured.
 */
import autocannon from 'autocannon';
import { fire } from '../lib/completions.js';
import { table, type Section } from '../lib/report.js';
import { SERVICE_ENV, WORKERS } from '../lib/services.js';
import { median, round } from '../lib/stats.js';
import { startRedis } from '../../test/support/redis-server.js';
import { startService } from '../../test/support/service.js';

const JOBS = 10_000;
const BATCH = 100;
const ROUNDS = 3;
const TASK = { jobName: 'bulk', data: { durationMs: 600_000 } };

interface Run {
  readonly jobsPerSecond: number;
  readonly refused: number;
}

async function single(url: string): Promise<Run> {
  const began = Date.now();
  const sent = await fire(url, TASK, JOBS, 50);
  return { jobsPerSecond: (sent.accepted / (Date.now() - began)) * 1000, refused: sent.refused };
}

async function batched(url: string): Promise<Run> {
  const began = Date.now();
  const result = await autocannon({
    url: `${url}/enqueue-tasks`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tasks: Array.from({ length: BATCH }, () => TASK) }),
    connections: 8,
    amount: JOBS / BATCH,
  });
  const accepted = result['2xx'] * BATCH;
  return { jobsPerSecond: (accepted / (Date.now() - began)) * 1000, refused: (result.non2xx + result.errors) * BATCH };
}

export async function bulk(): Promise<Section> {
  const redis = await startRedis();
  const service = await startService({ redisUrl: redis.url, workers: WORKERS, env: { ...SERVICE_ENV } });
  try {
    await single(service.url);
    await batched(service.url);
    const singles: Run[] = [];
    const batches: Run[] = [];
    for (let i = 0; i < ROUNDS; i += 1) {
      // Alternate who goes first, so that drift in the machine's load hits both alike.
      if (i % 2 === 0) {
        singles.push(await single(service.url));
        batches.push(await batched(service.url));
      } else {
        batches.push(await batched(service.url));
        singles.push(await single(service.url));
      }
    }
    const ratio = median(batches.map((run, i) => run.jobsPerSecond / (singles[i]?.jobsPerSecond ?? Number.NaN)));
    const row = (name: string, runs: Run[]) => [
      name,
      round(median(runs.map((run) => run.jobsPerSecond)), 0),
      runs.reduce((sum, run) => sum + run.refused, 0),
    ];
    return {
      title: '9. Bulk enqueue',
      body: [
        `${JOBS.toLocaleString('en')} tasks per round, as single \`POST /enqueue-task\` requests over 50 connections and as`,
        `batches of ${BATCH} through \`POST /enqueue-tasks\` over 8 connections, on one service (${WORKERS} processes);`,
        `a warm-up of each, then ${ROUNDS} alternating rounds. Jobs last 10 minutes, so only enqueueing is measured.`,
        '',
        table(
          ['', 'jobs/s (median)', 'refused'],
          [
            row('single requests', singles),
            row(`batches of ${BATCH}`, batches),
            ['ratio bulk / single', round(ratio), ''],
          ],
        ),
      ].join('\n'),
      targets: [],
    };
  } finally {
    await service.stop('SIGTERM', 20_000);
    await redis.stop();
  }
}
