/**
 * Bad request bodies against the real app in-process, with a real Redis and one registered worker:
 * each gets a JSON error with the right status and code, no stack trace, nothing enqueued and nothing
 * reserved, and the same process then serves a valid request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { createQueueRegistry, type QueueRegistry } from '../../src/queue/queues.js';
import { closeConnection, createRedisConnection, waitUntilReady } from '../../src/redis/connections.js';
import { serveApp, type InProcessApp } from '../support/in-process-app.js';
import { reservationsLeft } from '../support/jobs.js';
import { joinWorkers } from '../support/ledger.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';

const PREFIX = 'bad-input';
const WORKER = 'bad-0';

interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
  readonly body: { error?: string; code?: string; details?: readonly unknown[] } | undefined;
}

describe('bad input gets a JSON error, enqueues nothing, and the process keeps serving', () => {
  let redis: TestRedis;
  let connection: Redis;
  let queues: QueueRegistry;
  let app: InProcessApp;

  const post = async (body: string, contentType = 'application/json'): Promise<Answer> => {
    const response = await fetch(`${app.url}/enqueue-task`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    let parsed: Answer['body'];
    try {
      parsed = JSON.parse(text) as Answer['body'];
    } catch {
      parsed = undefined;
    }
    return { status: response.status, contentType: response.headers.get('content-type') ?? '', text, body: parsed };
  };

  before(async () => {
    redis = await startRedis();
    const logger = pino({ level: 'silent' });
    connection = createRedisConnection(redis.url, 'command', logger);
    await waitUntilReady(connection, 10_000);
    queues = createQueueRegistry({ connection, prefix: PREFIX });
    await joinWorkers(connection, PREFIX, [WORKER]);
    app = await serveApp({ connection, queues, prefix: PREFIX, logger });
  });
  after(async () => {
    await app?.close();
    await queues?.close();
    if (connection) await closeConnection(connection);
    await redis?.stop();
  });

  const cases: readonly { name: string; body: string; contentType?: string; status: number; code: string }[] = [
    { name: 'malformed JSON', body: '{"jobName": "x",', status: 400, code: 'MALFORMED_JSON' },
    { name: 'missing jobName', body: '{"data": {}}', status: 400, code: 'VALIDATION_FAILED' },
    { name: 'empty jobName', body: '{"jobName": ""}', status: 400, code: 'VALIDATION_FAILED' },
    {
      name: 'over-long jobName',
      body: JSON.stringify({ jobName: 'x'.repeat(129) }),
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    { name: 'unsafe jobName', body: '{"jobName": "../etc/passwd"}', status: 400, code: 'VALIDATION_FAILED' },
    { name: 'data that is an array', body: '{"jobName": "x", "data": [1]}', status: 400, code: 'VALIDATION_FAILED' },
    { name: 'data that is a string', body: '{"jobName": "x", "data": "s"}', status: 400, code: 'VALIDATION_FAILED' },
    { name: 'a body that is not an object', body: '42', status: 400, code: 'VALIDATION_FAILED' },
    {
      name: 'durationMs out of bounds',
      body: '{"jobName": "x", "data": {"durationMs": 999999999}}',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'a prototype-polluting key',
      body: '{"jobName": "x", "data": {"__proto__": {"admin": true}}}',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'a body over the size limit',
      body: JSON.stringify({ jobName: 'x', data: { s: 'y'.repeat(200 * 1024) } }),
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
    },
    {
      name: 'a text/plain body',
      body: '{"jobName": "x"}',
      contentType: 'text/plain',
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    },
    {
      name: 'a form body',
      body: 'jobName=x',
      contentType: 'application/x-www-form-urlencoded',
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    },
  ];

  for (const testCase of cases) {
    test(testCase.name, async () => {
      const response = await post(testCase.body, testCase.contentType);
      assert.equal(response.status, testCase.status, response.text);
      assert.match(response.contentType, /^application\/json/);
      assert.equal(response.body?.code, testCase.code);
      assert.equal(typeof response.body?.error, 'string');
      assert.doesNotMatch(response.text, /at .*\.js:\d+|node_modules|Error:/, 'no stack trace leaks');
      if (testCase.code === 'VALIDATION_FAILED')
        assert.ok((response.body?.details?.length ?? 0) > 0, 'names what is wrong');
      assert.equal(await queues.forWorker(WORKER).count(), 0, 'nothing was enqueued');
      assert.equal(await reservationsLeft(redis.client, PREFIX), 0, 'no load was reserved');
    });
  }

  test('still serves a valid request afterwards', async () => {
    const response = await post(JSON.stringify({ jobName: 'after-bad-input', data: { durationMs: 0 } }));
    assert.equal(response.status, 202, response.text);
    assert.equal(await queues.forWorker(WORKER).count(), 1);
  });
});
