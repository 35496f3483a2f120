/**
 * Scenario 10: delayed jobs. How late after its due time a delayed job starts, when slots are free
 * (jobs falling due a few at a time) and when a burst falls due at once (more jobs than slots, so
 * most wait for a slot as well). A delayed job is routed when due: its lateness is BullMQ handing it
 * over, the routing, and the pick-up by its worker.
 */
import { table, type Section } from '../lib/report.js';
import { SERVICE_ENV, WORKERS } from '../lib/services.js';
import { quantile, round } from '../lib/stats.js';
import { startRedis } from '../../test/support/redis-server.js';
import { startService, type Service } from '../../test/support/service.js';
import { waitFor } from '../../test/support/wait.js';

const SPREAD_JOBS = 300;
/** The spread jobs fall due over this long: a few every 10 ms. */
const SPREAD_MS = 2_000;
const BURST_JOBS = 1_000;
const FIRST_DUE_MS = 1_500;
const BATCH = 100;

interface Accepted {
  readonly jobId: string;
}

interface JobRead {
  readonly state: string;
  readonly timestamps: { readonly enqueuedAt: string | null; readonly startedAt: string | null };
}

/** Enqueues the tasks in batches of BATCH, all sent at once; answers each job's id and delay. */
async function enqueue(service: Service, delays: readonly number[]): Promise<{ jobId: string; delayMs: number }[]> {
  const batches = Array.from({ length: Math.ceil(delays.length / BATCH) }, (_, b) =>
    delays.slice(b * BATCH, (b + 1) * BATCH),
  );
  const answers = await Promise.all(
    batches.map(async (batch) => {
      const response = await service.request<{ tasks: Accepted[] }>('POST', '/enqueue-tasks', {
        body: JSON.stringify({
          tasks: batch.map((delayMs) => ({ jobName: 'delayed', data: { durationMs: 0 }, options: { delayMs } })),
        }),
        headers: { 'content-type': 'application/json' },
      });
      if (response.status !== 202) throw new Error(`enqueue answered ${response.status}: ${response.text}`);
      return response.body.tasks.map((task, i) => ({ jobId: task.jobId, delayMs: batch[i] ?? 0 }));
    }),
  );
  return answers.flat();
}

/** Each job's start minus its due time (ms), once every job has completed. */
async function lateness(service: Service, jobs: readonly { jobId: string; delayMs: number }[]): Promise<number[]> {
  const reads = await waitFor(
    async () => {
      const views: JobRead[] = [];
      for (let i = 0; i < jobs.length; i += 50) {
        const chunk = jobs.slice(i, i + 50);
        views.push(
          ...(await Promise.all(
            chunk.map(async (job) => (await service.request<JobRead>('GET', `/jobs/${job.jobId}`)).body),
          )),
        );
        if (views.some((view) => view.state !== 'completed')) return undefined;
      }
      return views;
    },
    { timeoutMs: 120_000, intervalMs: 500, what: `${jobs.length} delayed jobs to complete` },
  );
  return reads.map((view, i) => {
    const due = Date.parse(view.timestamps.enqueuedAt ?? '') + (jobs[i]?.delayMs ?? 0);
    return Date.parse(view.timestamps.startedAt ?? '') - due;
  });
}

export async function delayed(): Promise<Section> {
  const redis = await startRedis();
  const service = await startService({ redisUrl: redis.url, workers: WORKERS, env: { ...SERVICE_ENV } });
  try {
    const spreadJobs = await enqueue(
      service,
      Array.from({ length: SPREAD_JOBS }, (_, i) => FIRST_DUE_MS + Math.floor((i * SPREAD_MS) / SPREAD_JOBS)),
    );
    const spread = await lateness(service, spreadJobs);
    const burstJobs = await enqueue(
      service,
      Array.from({ length: BURST_JOBS }, () => FIRST_DUE_MS),
    );
    const burst = await lateness(service, burstJobs);
    const row = (name: string, values: readonly number[]) => [
      name,
      values.length,
      round(quantile(values, 0.5), 0),
      round(quantile(values, 0.99), 0),
      round(Math.max(...values), 0),
      values.filter((value) => value < 0).length,
    ];
    const p99 = quantile(spread, 0.99);
    return {
      title: '10. Delayed jobs',
      body: [
        `Jobs of 0 ms with \`options.delayMs\`, on one service (${WORKERS} processes × 8 slots). *Spread*:`,
        `${SPREAD_JOBS} jobs falling due over ${SPREAD_MS / 1000} s, so a slot is free for each. *Burst*: ${BURST_JOBS} jobs`,
        'due at the same moment, more than the slots, so most also wait for a slot. Lateness is the start',
        "(BullMQ's `processedOn`) minus the due time (enqueue time plus the delay), in ms; no job may start early.",
        '',
        table(
          ['', 'jobs', 'p50 ms', 'p99 ms', 'max ms', 'started early'],
          [row('spread', spread), row('burst', burst)],
        ),
        '',
        `The burst drained at about ${round(BURST_JOBS / (Math.max(...burst) / 1000), 0)} jobs/s: besides its run, each due job`,
        'costs a routing step (BullMQ hands it over, the cancel and already-routed checks, a reservation,',
        "and the transaction that adds it to its worker's queue), done 16 at a time per process.",
      ].join('\n'),
      targets: [
        {
          name: 'Delayed job started after its due time, slots free (p99)',
          goal: '≤ 1000 ms',
          measured: `${round(p99, 0)} ms`,
          met: p99 <= 1_000 && spread.every((value) => value >= 0),
        },
      ],
    };
  } finally {
    await service.stop('SIGTERM', 20_000);
    await redis.stop();
  }
}
