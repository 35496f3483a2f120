/**
 * Durable acceptance (ENQUEUE_MIN_REPLICAS): the real service against a redis-server master with one
 * replica. With the replica up, the job is on the replica by the time the 202 arrives; with the
 * replica stopped (SIGSTOP: it acknowledges nothing), the enqueue answers 503 NOT_DURABLE naming the
 * job, which stays on the master, and a retry with the same Idempotency-Key once the replica is back
 * answers that same job. Off by default: a service without the setting sends no WAIT at all.
 *
 * Single mode only: the setting is refused on a Redis Cluster (see src/config/env-schema.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { NotDurableError } from '../../src/errors.js';
import { createReplicaAcks } from '../../src/redis/replica-acks.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { startService, type Service } from '../support/service.js';

interface Enqueued {
  readonly jobId: string;
}

interface NotDurable {
  readonly code: string;
  readonly details: { jobIds: string[]; acknowledged: number; required: number; retryAfterSeconds: number };
}

const REPLICA_TIMEOUT_MS = 500;
/** Short jobs, so that the services stop soon. */
const TASK_DURATION_MS = '50';

/** How many WAIT commands the server has run since its statistics were last reset. */
async function waitsRun(redis: TestRedis): Promise<number> {
  const stats = await redis.client.info('commandstats');
  return Number(/cmdstat_wait:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

/** Whether the server holds the job's hash (BullMQ's `<prefix>:<queue>:<jobId>`). */
async function holdsJob(redis: TestRedis, prefix: string, jobId: string): Promise<boolean> {
  return (await redis.client.keys(`${prefix}:*:${jobId}`)).length > 0;
}

describe('durable acceptance: ENQUEUE_MIN_REPLICAS against a master with one replica', () => {
  let master: TestRedis;
  let replica: TestRedis;
  let durable: Service;

  before(async () => {
    master = await startRedis();
    replica = await startRedis({ replicaOf: master.port });
    durable = await startService({
      redisUrl: master.url,
      workers: 1,
      env: {
        ENQUEUE_MIN_REPLICAS: '1',
        ENQUEUE_REPLICA_TIMEOUT_MS: String(REPLICA_TIMEOUT_MS),
        TASK_DURATION_MS: TASK_DURATION_MS,
      },
    });
  });

  after(async () => {
    replica?.signal('SIGCONT');
    await durable?.stop();
    await replica?.stop();
    await master?.stop();
  });

  test('with the replica up, the job is on the replica when the 202 arrives', async () => {
    await master.client.config('RESETSTAT');
    const answer = await durable.enqueue<Enqueued>({ jobName: 'durable', data: { n: 1 } });
    assert.equal(answer.status, 202, answer.text);
    assert.equal(await holdsJob(replica, durable.prefix, answer.body.jobId), true);
    assert.ok((await waitsRun(master)) >= 1, 'the service sent a WAIT');

    const bulk = await durable.request<{ tasks: Enqueued[] }>('POST', '/enqueue-tasks', {
      body: JSON.stringify({ tasks: [{ jobName: 'durable' }, { jobName: 'durable', options: { delayMs: 60_000 } }] }),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(bulk.status, 202, bulk.text);
    for (const { jobId } of bulk.body.tasks) assert.equal(await holdsJob(replica, durable.prefix, jobId), true);
  });

  test('with the replica stopped: 503 NOT_DURABLE, the job stays, and a retry with the key gets it once durable', async () => {
    const key = `durable-${Date.now()}`;
    const send = () =>
      durable.request<unknown>('POST', '/enqueue-task', {
        body: JSON.stringify({ jobName: 'durable', data: { n: 2 } }),
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
      });
    replica.signal('SIGSTOP');
    let refused;
    try {
      refused = await send();
      assert.equal(refused.status, 503, refused.text);
      const body = refused.body as NotDurable;
      assert.equal(body.code, 'NOT_DURABLE');
      assert.equal(body.details.acknowledged, 0);
      assert.equal(body.details.required, 1);
      assert.equal(refused.headers.get('retry-after'), '1');
      const [jobId] = body.details.jobIds;
      assert.ok(jobId !== undefined);
      assert.equal(await holdsJob(master, durable.prefix, jobId), true, 'the job is on the master');

      // Still not durable: the retry is refused the same way, and names the same job.
      const again = await send();
      assert.equal(again.status, 503, again.text);
      assert.deepEqual((again.body as NotDurable).details.jobIds, [jobId]);
    } finally {
      replica.signal('SIGCONT');
    }
    const [jobId] = (refused.body as NotDurable).details.jobIds;
    const replayed = await send();
    assert.equal(replayed.status, 200, replayed.text);
    assert.equal(replayed.headers.get('idempotent-replayed'), 'true');
    assert.equal((replayed.body as Enqueued).jobId, jobId);
    assert.equal(await holdsJob(replica, durable.prefix, jobId as string), true);
  });

  test('a batch the replica did not acknowledge names every job', async () => {
    replica.signal('SIGSTOP');
    try {
      const refused = await durable.request<NotDurable>('POST', '/enqueue-tasks', {
        body: JSON.stringify({ tasks: [{ jobName: 'durable' }, { jobName: 'durable' }] }),
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(refused.status, 503, refused.text);
      assert.equal(refused.body.code, 'NOT_DURABLE');
      assert.equal(refused.body.details.jobIds.length, 2);
    } finally {
      replica.signal('SIGCONT');
    }
  });

  test('the confirmations asked for while a WAIT is out share the next one', async () => {
    const connection = new Redis(master.url);
    const acks = createReplicaAcks({ connection, channel: 'durable-test', minReplicas: 1, timeoutMs: 300 });
    try {
      await master.client.config('RESETSTAT');
      await Promise.all(Array.from({ length: 20 }, (_, i) => acks.confirm([`job-${i}`])));
      assert.ok((await waitsRun(master)) <= 2, 'twenty confirmations took at most two WAITs');

      replica.signal('SIGSTOP');
      await master.client.config('RESETSTAT');
      const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => acks.confirm([`job-${i}`])));
      for (const outcome of outcomes) {
        assert.equal(outcome.status, 'rejected');
        assert.ok(outcome.reason instanceof NotDurableError);
      }
      assert.ok((await waitsRun(master)) <= 2, 'twenty refusals took at most two WAITs');
    } finally {
      replica.signal('SIGCONT');
      connection.disconnect();
    }
  });

  test('off by default: a service without the setting sends no WAIT', async () => {
    const plain = await startService({ redisUrl: master.url, workers: 1, env: { TASK_DURATION_MS } });
    try {
      await master.client.config('RESETSTAT');
      const answer = await plain.enqueue<Enqueued>({ jobName: 'plain' });
      assert.equal(answer.status, 202, answer.text);
      assert.equal(await waitsRun(master), 0);
    } finally {
      await plain.stop();
    }
  });
});
