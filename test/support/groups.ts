/**
 * What the group tests share: a group ledger of their own on the test's Redis connection, to set a
 * group's settings and read its counts as the service keeps them, and a batch of gate jobs in one
 * group sent through `POST /enqueue-tasks`.
 */
import assert from 'node:assert/strict';
import type { RedisClient } from '../../src/redis/connections.js';
import { createGroupLedger, type GroupLedger } from '../../src/ledger/groups.js';
import { GATE_JOB, type Gate } from './gate.js';
import type { Enqueued } from './jobs.js';
import type { Service } from './service.js';

/**
 * For settings and counts only: it releases nothing (it covers no worker), so its prefetch and
 * liveness do not matter; `groupConcurrency` must be the service's GROUP_CONCURRENCY.
 */
export function testGroupLedger(redis: RedisClient, prefix: string, groupConcurrency = 0): GroupLedger {
  return createGroupLedger({
    redis,
    prefix,
    workerTtlMs: 5_000,
    prefetch: 0,
    groupConcurrency,
    members: () => [],
    refreshMembers: () => Promise.resolve(),
  });
}

/** `count` gate jobs in `group`, in one request; each job's data carries its index. */
export async function enqueueGateJobs(service: Service, gate: Gate, group: string, count: number): Promise<Enqueued[]> {
  const response = await service.request<{ tasks: Enqueued[] }>('POST', '/enqueue-tasks', {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      tasks: Array.from({ length: count }, (_, i) => ({ jobName: GATE_JOB, group, data: gate.data({ i, group }) })),
    }),
  });
  assert.equal(response.status, 202, response.text);
  return response.body.tasks;
}
