/**
 * The comparison for the benchmarks: the same cluster shape as the service (N processes, each an
 * Express server and a BullMQ consumer at concurrency C running job bodies in a Piscina pool), with
 * none of its care: no validation, no ledger, no logs.
 *
 * MODE=shared   every request adds to one shared queue that every process consumes (BullMQ's
 *               natural balancing).
 * MODE=running  the seed's rule: each process consumes its own queue and keeps a count of the job
 *               bodies running in it in Redis (INCR as a body starts, DECR as it ends); a request
 *               reads every count with one MGET, then adds to the queue of the process with the fewest
 *               running. Waiting jobs count for nothing, and the read and the add are not atomic.
 *
 * RUNNER=thread  job bodies run in the process's Piscina pool, as the service runs them (default).
 * RUNNER=inline  job bodies run on the process's own event loop, as a plain BullMQ service would
 *                run them: no thread hand-off, and a body that blocks stalls the process.
 */
import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Queue, Worker, type Job } from 'bullmq';
import express from 'express';
import { Redis } from 'ioredis';
import { createHandlerRegistry } from '../../src/execution/handlers.js';
import { createJobPool } from '../../src/execution/pool.js';
import type { Handler } from '../../workers/handler.js';

const env = process.env;
const workers = Number(env.WORKERS ?? 4);
const concurrency = Number(env.WORKER_CONCURRENCY ?? 8);
const mode = env.MODE === 'running' ? 'running' : 'shared';
const inline = env.RUNNER === 'inline';
const prefix = env.QUEUE_PREFIX ?? 'naive';
const redisUrl = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const port = Number(env.PORT ?? 3100);
const workersDirectory = new URL('../../workers/', import.meta.url);

function queueName(index: number): string {
  return mode === 'shared' ? 'shared' : `w${index}`;
}

/** Where process `index` counts its running job bodies (MODE=running), under the baseline's prefix. */
function runningKey(index: number): string {
  return `${prefix}:running:w${index}`;
}

if (cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  for (let index = 0; index < workers; index += 1) cluster.fork({ WORKER_INDEX: String(index) });
  const stop = () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const index = Number(env.WORKER_INDEX ?? 0);
  const commands = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const consumerConnection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queues = Array.from(
    { length: mode === 'shared' ? 1 : workers },
    (_, i) => new Queue(queueName(i), { connection: commands, prefix }),
  );
  const handlers = createHandlerRegistry({
    directory: env.HANDLERS_DIR ?? fileURLToPath(new URL('handlers/', workersDirectory)),
    fallback: fileURLToPath(new URL('dummy.js', workersDirectory)),
    dummyJobNames: '*',
  });
  const pool = inline
    ? undefined
    : createJobPool({
        runnerFile: fileURLToPath(new URL('runner.js', workersDirectory)),
        threads: concurrency,
        warmThreads: concurrency,
        memoryLimitMb: 512,
      });

  const counted = mode === 'running';
  const runningKeys = Array.from({ length: workers }, (_, i) => runningKey(i));
  const consumer = new Worker(
    queueName(index),
    async (job: Job) => {
      const data = (job.data ?? {}) as Record<string, unknown>;
      // As the seed did: the count goes up as the body starts and down as it ends, each a plain
      // command on the shared connection, not waited for.
      if (counted) void commands.incr(runningKey(index)).catch(() => {});
      const context = {
        jobId: job.id ?? '',
        jobName: job.name,
        attempt: 1,
        data,
        durationMs: typeof data.durationMs === 'number' ? data.durationMs : 0,
      };
      try {
        if (pool === undefined) {
          const handler = (await import(handlers.resolve(job.name))) as { default: Handler };
          return await handler.default({ ...context, reportProgress: () => {} });
        }
        return await pool.run({
          ...context,
          handlerUrl: handlers.resolve(job.name),
          signal: new AbortController().signal,
          progressIntervalMs: 1_000,
          onProgress: () => {},
        });
      } finally {
        if (counted) void commands.decr(runningKey(index)).catch(() => {});
      }
    },
    { connection: consumerConnection, prefix, concurrency },
  );
  consumer.on('error', () => {});

  const pick = async (): Promise<number> => {
    if (!counted) return 0;
    // One MGET of every process's count; a count not yet written is 0.
    const running = (await commands.mget(...runningKeys)).map((value) => Number(value ?? 0));
    return running.indexOf(Math.min(...running));
  };

  const app = express();
  app.use(express.json());
  app.post('/enqueue-task', async (req, res) => {
    const body = req.body as { jobName: string; data?: Record<string, unknown> };
    const target = await pick();
    const queue = queues[target];
    if (!queue) throw new Error('no queue');
    const job = await queue.add(body.jobName, body.data ?? {}, { jobId: randomUUID(), removeOnComplete: 100_000 });
    res.status(202).json({ jobId: job.id, assignedWorker: mode === 'shared' ? 'shared' : `w${target}` });
  });
  app.get('/jobs/:id', async (req, res) => {
    for (const queue of queues) {
      // State first: a job seen completed is then read with its result.
      const state = await queue.getJobState(req.params.id);
      if (state === 'unknown') continue;
      const job = await queue.getJob(req.params.id);
      const result: unknown = job?.returnvalue ?? null;
      res.json({ state, result });
      return;
    }
    res.status(404).json({ error: 'not found' });
  });
  app.get('/ready', async (_req, res) => {
    await consumer.waitUntilReady();
    res.json({ pid: process.pid });
  });
  app.listen(port, '127.0.0.1');
  process.on('SIGTERM', () => {
    void consumer.close(true).finally(() => process.exit(0));
  });
}
