/**
 * The optional API key and the response hygiene around it: every route but /healthz (and /metrics
 * when METRICS_PUBLIC) needs `Authorization: Bearer <key>`; a refused request enqueues nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { startService, type Service } from '../support/service.js';
import { waitFor } from '../support/wait.js';

const KEY = 'a-long-enough-test-key-0123456789';

describe('API key', () => {
  let redis: TestRedis;
  let service: Service;
  before(async () => {
    redis = await startRedis();
    // The harness polls /workers to see readiness, which needs the key: wait by hand.
    service = await startService({ redisUrl: redis.url, workers: 1, env: { API_KEY: KEY }, waitUntilReady: false });
    await waitFor(async () => (await service.request('GET', '/healthz')).status === 200, { timeoutMs: 60_000, what: 'the service' });
  });
  after(async () => {
    await service?.stop();
    await redis?.stop();
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
      const response = await service.request<{ code: string }>('POST', '/enqueue-task', { body: task, headers });
      assert.equal(response.status, 401);
      assert.equal(response.body.code, 'UNAUTHORIZED');
      assert.equal(response.headers.get('www-authenticate'), 'Bearer');
      assert.deepEqual(await redis.client.keys(`${service.prefix}:tasks.*:wait`), []);
    });
  }

  test('the right key is accepted on every route', async () => {
    const authorization = `Bearer ${KEY}`;
    const enqueued = await service.request<{ jobId: string }>('POST', '/enqueue-task', {
      body: task,
      headers: { 'content-type': 'application/json', authorization },
    });
    assert.equal(enqueued.status, 202);
    for (const path of ['/workers', `/jobs/${enqueued.body.jobId}`, '/metrics']) {
      assert.equal((await service.request('GET', path, { headers: { authorization } })).status, 200, path);
      assert.equal((await service.request('GET', path)).status, 401, `${path} without the key`);
    }
  });

  test('/healthz stays open, and no response advertises the framework', async () => {
    const health = await service.request('GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.headers.get('x-powered-by'), null);
    assert.equal((await service.request('GET', '/workers')).headers.get('x-powered-by'), null);
  });
});

describe('API key with public metrics', () => {
  test('METRICS_PUBLIC=true opens /metrics and nothing else', async () => {
    const redis = await startRedis();
    const service = await startService({
      redisUrl: redis.url,
      workers: 1,
      env: { API_KEY: KEY, METRICS_PUBLIC: 'true' },
      waitUntilReady: false,
    });
    try {
        await waitFor(async () => (await service.request('GET', '/metrics')).status === 200, { timeoutMs: 60_000, what: 'public metrics' });
      assert.equal((await service.request('GET', '/workers')).status, 401);
    } finally {
      await service.stop();
      await redis.stop();
    }
  });
});
