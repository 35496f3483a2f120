/** Enqueue-and-watch helpers shared by the tests that drive the real cluster. */
import assert from 'node:assert/strict';
import type { Service, WorkerView } from './service.js';
import { waitFor } from './wait.js';
import { ledgerKeys } from '../../src/contracts/keys.js';
import type { RedisClient } from '../../src/redis/connections.js';
import { keysEverywhere } from './redis-nodes.js';

export interface Enqueued {
  readonly jobId: string;
  readonly assignedWorker: string;
}

export interface JobView {
  readonly jobId: string;
  readonly jobName: string;
  readonly state: string;
  readonly assignedWorker: string;
  readonly movedFrom: readonly string[];
  readonly attemptsMade: number;
  readonly attemptsStarted: number;
  readonly failedReason: string | null;
  readonly progress: unknown;
  readonly result: Record<string, unknown> | null;
  readonly timestamps: { enqueuedAt: string | null; startedAt: string | null; finishedAt: string | null };
}

export async function enqueueMany(
  service: Service,
  count: number,
  jobName: string,
  data: Record<string, unknown>,
): Promise<Enqueued[]> {
  const responses = await Promise.all(
    Array.from({ length: count }, (_, i) => service.enqueue<Enqueued>({ jobName, data: { i, ...data } })),
  );
  for (const response of responses) assert.equal(response.status, 202, response.text);
  return responses.map((response) => response.body);
}

export async function enqueueOne(service: Service, jobName: string, data: Record<string, unknown>): Promise<Enqueued> {
  const response = await service.enqueue<Enqueued>({ jobName, data });
  assert.equal(response.status, 202, response.text);
  return response.body;
}

/** Enqueues one task (a whole request body, options included), asserting that it was accepted. */
export async function enqueueTask<T = Enqueued>(service: Service, body: unknown): Promise<T> {
  const response = await service.enqueue<T>(body);
  assert.equal(response.status, 202, response.text);
  return response.body;
}

export async function readJob(service: Service, jobId: string): Promise<JobView> {
  const response = await service.request<JobView>('GET', `/jobs/${jobId}`);
  assert.equal(response.status, 200, response.text);
  return response.body;
}

/** Waits until every job is in one of `states`; a job failing on the way fails the wait at once. */
export async function waitForJobs(
  service: Service,
  jobs: readonly Enqueued[],
  { state = 'completed', timeoutMs = 90_000 }: { state?: 'completed' | 'failed'; timeoutMs?: number } = {},
): Promise<JobView[]> {
  return waitFor(
    async () => {
      const views = await Promise.all(jobs.map((job) => readJob(service, job.jobId)));
      if (state === 'completed')
        for (const view of views) assert.notEqual(view.state, 'failed', `a job failed: ${JSON.stringify(view)}`);
      return views.every((view) => view.state === state) ? views : undefined;
    },
    { timeoutMs, intervalMs: 200, what: `${jobs.length} jobs to be ${state}` },
  ).catch((error: unknown) => {
    // Jobs that never get there (a read refused, a process gone): what the service said meanwhile.
    const lines = service.telling(0, 30).map((line) => JSON.stringify(line));
    const told = `the service's last warnings and lifecycle lines:\n${lines.join('\n')}`;
    throw new Error(`${(error as Error).message}; ${told}`, { cause: error });
  });
}

export async function waitForIdle(service: Service): Promise<void> {
  await waitFor(
    async () => {
      const { totals } = await service.workers();
      return totals.active === 0 && totals.queued === 0;
    },
    { what: 'load counters to return to 0' },
  );
}

/** Waits until exactly `count` jobs run over the service's workers, as `GET /workers` counts them. */
export async function waitForRunning(service: Service, count: number): Promise<void> {
  await waitFor(async () => (await service.workers()).totals.active === count, { what: `${count} running jobs` });
}

/** Worker `id` as `GET /workers` lists it now; fails when it is not listed. */
export async function listedWorker(service: Service, id: string): Promise<WorkerView> {
  const found = (await service.workers()).workers.find((candidate) => candidate.id === id);
  assert.ok(found, `${id} is listed`);
  return found;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Reservations left in the load ledger, over every worker of the service. */
export async function reservationsLeft(client: RedisClient, prefix: string): Promise<number> {
  const keys = await keysEverywhere(client, `${ledgerKeys(prefix).jobs('')}*`);
  const sizes = await Promise.all(keys.map((key) => client.hlen(key)));
  return sizes.reduce((sum, size) => sum + size, 0);
}

/** The keys of every job hash in every worker queue of `prefix` (`<prefix>:tasks.<worker>:<jobId>`). */
export async function jobKeys(client: RedisClient, prefix: string): Promise<string[]> {
  const keys = await keysEverywhere(client, `${prefix}:tasks.*`);
  return keys.filter((key) => /:tasks\.[^:]+:[^:]+~[^:]+$/.test(key));
}

/** Jobs assigned and not started, over every worker, as the ledger counts them. */
export async function queuedTotal(client: RedisClient, prefix: string): Promise<number> {
  const queued = await client.hgetall(ledgerKeys(prefix).queued);
  return Object.values(queued).reduce((sum, value) => sum + Number(value), 0);
}
