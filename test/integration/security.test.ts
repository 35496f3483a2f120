/**
 * The optional API key and the response hygiene around it, in-process against a real Redis: every
 * route but /healthz (and /metrics when METRICS_PUBLIC) needs `Authorization: Bearer <key>`; a
 * refused request enqueues nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { createQueueRegistry, type QueueRegistry } from '../../src/queue/queues.js';
import { closeConnection, createRedisConnection, waitUntilReady } from '../../src/redis/connections.js';
import { serveApp, type InProcessApp } from '../support/in-process-app.js';
import { joinWorkers } from '../support/ledger.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';

const KEY = 'a-long-enough-test-key-0123456789';
const PREFIX = 'secure';
const logger = pino({ level: 'silent' });

let redis: TestRedis;
let connection: Redis;
let queues: QueueRegistry;

async function call(
  app: InProcessApp,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
) {
  const response = await fetch(`${app.url}${path}`, { method, headers, body, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: (text.startsWith('{') ? JSON.parse(text) : undefined) as
      { code?: string; jobId?: string; state?: string } | undefined,
  };
}

before(async () => {
  redis = await startRedis();
  connection = createRedisConnection(redis.url, 'command', logger);
  await waitUntilReady(connection, 10_000);
  queues = createQueueRegistry({ connection, prefix: PREFIX });
  await joinWorkers(connection, PREFIX, ['secure-0']);
});
after(async () => {
  await queues?.close();
  if (connection) await closeConnection(connection);
  await redis?.stop();
});

describe('API key', () => {
  let app: InProcessApp;
  before(async () => {
    app = await serveApp({ connection, queues, prefix: PREFIX, logger, apiKey: KEY });
  });
  after(async () => {
    await app?.close();
  });

  const task = JSON.stringify({ jobName: 'secret', data: { durationMs: 1 } });

  for (const [name, header] of [
    ['no header', undefined],
    ['a wrong key', `Bearer ${KEY}x`],
    ['a prefix of the key', `Bearer ${KEY.slice(0, 10)}`],
    ['another scheme', `Basic ${KEY}`],
  ] as const) {
    test(`${name}: 401 with WWW-Authenticate, nothing enqueued`, async () => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (header !== undefined) headers.authorization = header;
      const response = await call(app, 'POST', '/enqueue-task', headers, task);
      assert.equal(response.status, 401);
      assert.equal(response.body?.code, 'UNAUTHORIZED');
      assert.equal(response.headers.get('www-authenticate'), 'Bearer');
      assert.equal(await queues.forWorker('secure-0').count(), 0);
    });
  }

  test('the right key is accepted on every route', async () => {
    const authorization = `Bearer ${KEY}`;
    const enqueued = await call(
      app,
      'POST',
      '/enqueue-task',
      { 'content-type': 'application/json', authorization },
      task,
    );
    assert.equal(enqueued.status, 202);
    for (const path of ['/workers', `/jobs/${enqueued.body?.jobId ?? ''}`, '/groups', '/groups/default', '/metrics']) {
      assert.equal((await call(app, 'GET', path, { authorization })).status, 200, path);
      assert.equal((await call(app, 'GET', path)).status, 401, `${path} without the key`);
    }
    // Cancel and retry change jobs: without the key they are refused before anything changes.
    const jobPath = `/jobs/${enqueued.body?.jobId ?? ''}`;
    assert.equal((await call(app, 'DELETE', jobPath)).status, 401);
    assert.equal((await call(app, 'POST', `${jobPath}/retry`)).status, 401);
    // A group's settings too: a PUT or DELETE without the key stores nothing.
    const settings = JSON.stringify({ paused: true });
    const json = { 'content-type': 'application/json' };
    assert.equal((await call(app, 'PUT', '/groups/default', json, settings)).status, 401);
    assert.equal((await call(app, 'DELETE', '/groups/default')).status, 401);
    const group = (await call(app, 'GET', '/groups/default', { authorization })).body as
      { paused?: unknown } | undefined;
    assert.equal(group?.paused, null, 'nothing was stored');
    assert.equal((await call(app, 'GET', jobPath, { authorization })).body?.state, 'waiting');
  });

  test('/healthz stays open, and no response advertises the framework', async () => {
    const health = await call(app, 'GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.headers.get('x-powered-by'), null);
    assert.equal((await call(app, 'GET', '/workers')).headers.get('x-powered-by'), null);
  });
});

describe('API key with public metrics', () => {
  test('METRICS_PUBLIC=true opens /metrics and nothing else', async () => {
    const app = await serveApp({ connection, queues, prefix: PREFIX, logger, apiKey: KEY, metricsPublic: true });
    try {
      assert.equal((await call(app, 'GET', '/metrics')).status, 200);
      assert.equal((await call(app, 'GET', '/workers')).status, 401);
    } finally {
      await app.close();
    }
  });
});
