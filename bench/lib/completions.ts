/**
 * Short-job runs: send a fixed number of tasks with autocannon, then wait for the last of them to
 * complete by reading BullMQ's completed sets straight from Redis. Polling the services' own
 * `GET /jobs/:id` for thousands of jobs would load the very processes being measured; a ZCARD per
 * queue costs them nothing. BullMQ scores each completed job by the time it finished (the consumer's
 * clock, which every process on the host shares), so the highest score is the last completion.
 */
import autocannon from 'autocannon';
import type { RedisClient } from '../../src/redis/connections.js';
import { queueNameFor } from '../../src/contracts/names.js';
import type { Service } from '../../test/support/service.js';
import type { Baseline } from './baseline.js';

/** The completed sets of the service's own worker queues (work stealing keeps jobs among them). */
export async function serviceCompletedKeys(service: Service): Promise<string[]> {
  const { workers } = await service.workers();
  return workers.map((worker) => `${service.prefix}:${queueNameFor(worker.id)}:completed`);
}

/** The completed sets of the baseline's queues: one shared queue, or one per process. */
export function baselineCompletedKeys(baseline: Baseline, mode: 'shared' | 'running', workers: number): string[] {
  const names = mode === 'shared' ? ['shared'] : Array.from({ length: workers }, (_, i) => `w${i}`);
  return names.map((name) => `${baseline.prefix}:${name}:completed`);
}

export async function completedCount(client: RedisClient, keys: readonly string[]): Promise<number> {
  const counts = await Promise.all(keys.map((key) => client.zcard(key)));
  return counts.reduce((sum, count) => sum + count, 0);
}

/**
 * Polls until `count` jobs are completed over `keys` in all; answers the wall-clock time (ms) of the
 * last completion.
 */
export async function waitForCompleted(
  client: RedisClient,
  keys: readonly string[],
  count: number,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const done = await completedCount(client, keys);
    if (done >= count) break;
    if (Date.now() > deadline) throw new Error(`only ${done} of ${count} jobs completed in time`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const lasts = await Promise.all(keys.map((key) => client.zrange(key, -1, -1, 'WITHSCORES')));
  return Math.max(...lasts.map((reply) => Number(reply[1] ?? 0)));
}

export interface Fired {
  /** Tasks accepted (2xx). */
  readonly accepted: number;
  /** Non-2xx answers, connection errors and time-outs. */
  readonly refused: number;
}

/** Sends `amount` copies of `task` to `POST /enqueue-task` over `connections` kept-alive connections. */
export async function fire(url: string, task: unknown, amount: number, connections: number): Promise<Fired> {
  const result = await autocannon({
    url: `${url}/enqueue-task`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(task),
    connections,
    amount,
  });
  return { accepted: result['2xx'], refused: result.non2xx + result.errors };
}
