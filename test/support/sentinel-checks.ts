/**
 * What a service through Redis Sentinel must show when it works: its start-up line and /healthz name
 * the mode and the master the sentinels watch, and jobs run on both of its two workers.
 */
import assert from 'node:assert/strict';
import { enqueueMany, waitForIdle, waitForJobs } from './jobs.js';
import type { TestSentinel } from './redis-sentinel.js';
import type { Service } from './service.js';

interface Health {
  readonly redisMode?: string;
  readonly redisMaster?: string;
}

/** For a service of two workers (`test-0`, `test-1`), as the Sentinel tests start it. */
export async function worksThroughSentinel(service: Service, sentinel: TestSentinel, jobName: string): Promise<void> {
  const master = await sentinel.currentMaster();
  const started = service.logs.find((line) => line.event === 'primary.started');
  assert.equal(started?.redisMode, 'sentinel');
  assert.equal(started?.master, master);
  const health = await service.request<Health>('GET', '/healthz');
  assert.equal(health.status, 200, health.text);
  assert.deepEqual([health.body.redisMode, health.body.redisMaster], ['sentinel', master]);
  const jobs = await enqueueMany(service, 6, jobName, { durationMs: 0 });
  assert.deepEqual(new Set(jobs.map((job) => job.assignedWorker)), new Set(['test-0', 'test-1']));
  await waitForJobs(service, jobs, { timeoutMs: 30_000 });
  await waitForIdle(service);
}
