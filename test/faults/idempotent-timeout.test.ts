/**
 * An enqueue with an `Idempotency-Key` whose transaction times out on a hung Redis, and runs once
 * Redis resumes: the job is not undone behind it, since the transaction wrote the key's answer with
 * it, so the client's retry with the key gets a job that exists. In-process (the app of
 * test/support/in-process-app.ts, with a short `COMMAND_TIMEOUT_MS`) against one redis-server, which
 * the test stops (SIGSTOP) once the slot is reserved, before the transaction goes out. The
 * dispatcher then reads the key's record to learn whether the transaction ran: once with Redis still
 * stopped (it cannot tell), once with Redis resumed just before that read (it finds the answer).
 *
 * Single mode only: its subject is the one redis-server hanging.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createQueueRegistry, type QueueRegistry } from '../../src/queue/queues.js';
import {
  closeConnection,
  createRedisConnection,
  waitUntilReady,
  type RedisClient,
} from '../../src/redis/connections.js';
import { captureLogger } from '../support/capture-logger.js';
import { serveApp, type InProcessApp } from '../support/in-process-app.js';
import { jobKeys, queuedTotal } from '../support/jobs.js';
import { joinWorkers } from '../support/ledger.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';

const PREFIX = 'idem-stall';
const COMMAND_TIMEOUT_MS = 300;

describe('Idempotency-Key and an add that timed out', () => {
  let redis: TestRedis;
  let connection: RedisClient;
  let registry: QueueRegistry;
  let app: InProcessApp;
  /** Set by the test: the next queue lookup (the dispatcher's, right after its reservation) stops Redis. */
  let stopOnLookup = false;
  /** Set by the test: Redis resumes just before the dispatcher reads a key's record after a failed add. */
  let resumeOnRecordRead = false;
  const { logger, lines } = captureLogger();

  before(async () => {
    redis = await startRedis();
    connection = createRedisConnection({ kind: 'single', url: redis.url }, 'command', logger, {
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    await waitUntilReady(connection, 10_000);
    registry = createQueueRegistry({ connection, prefix: PREFIX });
    // A handle made while Redis is stopped could not even start (BullMQ asks for the server's version).
    await registry.forWorker('stall-0').waitUntilReady();
    const queues: QueueRegistry = {
      ...registry,
      forWorker: (workerId) => {
        if (stopOnLookup) {
          stopOnLookup = false;
          redis.signal('SIGSTOP');
        }
        return registry.forWorker(workerId);
      },
    };
    const get = (async (key: string) => {
      if (resumeOnRecordRead && key.includes(':idempotency-sha256:')) {
        resumeOnRecordRead = false;
        redis.signal('SIGCONT');
      }
      return connection.get(key);
    }) as RedisClient['get'];
    // The app's connection, but for its `get`; every other member is the connection's own.
    const watched = new Proxy(connection, {
      get(target, property) {
        if (property === 'get') return get;
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    app = await serveApp({ connection: watched, queues, prefix: PREFIX, logger, workerTtlMs: 60_000 });
    await joinWorkers(redis.client, PREFIX, ['stall-0']);
  });

  after(async () => {
    await app?.close();
    await registry?.close();
    if (connection) await closeConnection(connection);
    await redis?.stop();
  });

  const post = async (body: unknown, key: string) => {
    const response = await fetch(`${app.url}/enqueue-task`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(20_000),
    });
    return {
      status: response.status,
      replayed: response.headers.get('idempotent-replayed'),
      body: (await response.json()) as { jobId: string; code?: string },
    };
  };

  for (const { when, resumeFirst, outcome } of [
    { when: 'while Redis is still stopped', resumeFirst: false, outcome: 'unknown' },
    { when: 'once Redis has resumed', resumeFirst: true, outcome: 'added' },
  ]) {
    test(`the record read ${when}: the job stays, and the retry with the key gets it, existing`, async () => {
      const key = `order-stall-${outcome}`;
      const task = { jobName: 'stalled', data: { key } };
      const jobsBefore = (await jobKeys(redis.client, PREFIX)).length;
      const queuedBefore = await queuedTotal(redis.client, PREFIX);
      stopOnLookup = true;
      resumeOnRecordRead = resumeFirst;
      let refused;
      try {
        refused = await post(task, key);
      } finally {
        redis.signal('SIGCONT');
      }
      assert.equal(refused.status, 503);
      assert.equal(refused.body.code, 'QUEUE_UNAVAILABLE');
      // Sent on the app's connection behind all it sent meanwhile: once answered, all of that has
      // run, the transaction that timed out included.
      await connection.ping();
      const kept = lines.filter((line) => line.event === 'enqueue.kept');
      assert.deepEqual(
        kept.map((line) => line.outcome),
        [outcome],
        'the dispatcher kept the job, and says whether it knew the add had run',
      );
      lines.length = 0;

      const retry = await post(task, key);
      assert.equal(retry.status, 200);
      assert.equal(retry.replayed, 'true');
      const job = await fetch(`${app.url}/jobs/${encodeURIComponent(retry.body.jobId)}`);
      assert.equal(job.status, 200, 'the job the replayed answer names exists');
      assert.equal(((await job.json()) as { state: string }).state, 'waiting');
      assert.equal((await jobKeys(redis.client, PREFIX)).length, jobsBefore + 1, 'one job');
      assert.equal(await queuedTotal(redis.client, PREFIX), queuedBefore + 1, 'its slot is still reserved for it');
    });
  }
});
