/**
 * The HTTP edges, in-process on port 0 against a real Redis: malformed paths and bodies, wrong
 * content types and methods, requests Node's parser refuses, aborted uploads, the API key's
 * exemption and what a 404 echoes. Each answer is JSON in the `{ error, code }` shape, nothing is
 * enqueued, and nothing is logged above `info`.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { ROUTES } from '../../src/http/route-table.js';
import { createQueueRegistry, type QueueRegistry } from '../../src/queue/queues.js';
import { closeConnection, createRedisConnection, waitUntilReady } from '../../src/redis/connections.js';
import { serveApp, type InProcessApp } from '../support/in-process-app.js';
import { joinWorkers } from '../support/ledger.js';
import { captureLogger, type CapturedLine } from '../support/capture-logger.js';
import { lineOf } from '../support/log-lines.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { waitFor } from '../support/wait.js';

const KEY = 'a-long-enough-test-key-0123456789';
const config = loadConfig({ QUEUE_PREFIX: 'edges' });

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: { error?: string; code?: string; allow?: string[] } | undefined;
}

let redis: TestRedis;
let connection: Redis;
let queues: QueueRegistry;
const apps: InProcessApp[] = [];
const logs: CapturedLine[] = [];

async function serve(apiKey: string | undefined): Promise<string> {
  const { logger } = captureLogger(logs);
  const app = await serveApp({
    connection,
    queues,
    prefix: config.prefix,
    logger,
    ...(apiKey === undefined ? {} : { apiKey }),
  });
  apps.push(app);
  return app.url;
}

async function call(
  base: string,
  method: string,
  path: string,
  init: { body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const response = await fetch(`${base}${path}`, {
    method,
    body: init.body,
    headers: init.headers,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  let body: Answer['body'];
  try {
    body = JSON.parse(text) as Answer['body'];
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, body };
}

/** Sends raw bytes and answers with what came back, for what fetch will not send. */
function raw(base: string, bytes: string, { closeAfterMs }: { closeAfterMs?: number } = {}): Promise<string> {
  const { port } = new URL(base);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString('utf8')));
    socket.on('close', () => resolve(received));
    socket.on('error', () => resolve(received));
    socket.write(bytes);
    if (closeAfterMs !== undefined) setTimeout(() => socket.destroy(), closeAfterMs);
  });
}

async function enqueuedJobs(): Promise<number> {
  return queues.forWorker('edge-0').count();
}

function assertJsonError(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(answer.body?.code, code);
  assert.equal(typeof answer.body?.error, 'string');
}

describe('HTTP edges', () => {
  let base: string;
  before(async () => {
    redis = await startRedis();
    connection = createRedisConnection(redis.url, 'command', pino({ level: 'silent' }));
    await waitUntilReady(connection, 10_000);
    queues = createQueueRegistry({ connection, prefix: config.prefix });
    await joinWorkers(connection, config.prefix, ['edge-0']);
    base = await serve(undefined);
  });
  after(async () => {
    for (const app of apps) await app.close();
    await queues?.close();
    if (connection) await closeConnection(connection);
    await redis?.stop();
    const loud = logs.filter((line) => line.level > 30);
    assert.deepEqual(loud, [], 'nothing is logged above info');
  });

  test('malformed percent-encoding in a path answers 400 MALFORMED_PATH', async () => {
    for (const path of ['/jobs/%zz', '/jobs/%E0%A4%A'])
      assertJsonError(await call(base, 'GET', path), 400, 'MALFORMED_PATH');
  });

  test('a compressed body that is not valid compressed data answers 400; valid gzip is accepted', async () => {
    for (const encoding of ['gzip', 'br', 'deflate']) {
      const answer = await call(base, 'POST', '/enqueue-task', {
        body: 'this is not compressed',
        headers: { 'content-type': 'application/json', 'content-encoding': encoding },
      });
      assertJsonError(answer, 400, 'BAD_REQUEST');
    }
    const before = await enqueuedJobs();
    const ok = await call(base, 'POST', '/enqueue-task', {
      body: gzipSync(JSON.stringify({ jobName: 'zipped', data: { durationMs: 1 } })),
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    });
    assert.equal(ok.status, 202);
    assert.equal(await enqueuedJobs(), before + 1);
  });

  test('each refused body says what is really wrong', async () => {
    const before = await enqueuedJobs();
    const cases: { headers: Record<string, string>; body?: string; status: number; code: string; says: RegExp }[] = [
      {
        headers: { 'content-type': 'text/plain' },
        body: '{"jobName":"x"}',
        status: 415,
        code: 'UNSUPPORTED_MEDIA_TYPE',
        says: /not text\/plain/,
      },
      { headers: { 'content-type': 'application/json' }, status: 400, code: 'MALFORMED_JSON', says: /empty/ },
      {
        headers: { 'content-type': 'application/json', 'content-length': '0' },
        body: '',
        status: 400,
        code: 'MALFORMED_JSON',
        says: /empty/,
      },
      {
        headers: { 'content-type': 'application/json; charset=latin1' },
        body: '{"jobName":"x"}',
        status: 415,
        code: 'UNSUPPORTED_MEDIA_TYPE',
        says: /charset latin1/,
      },
      {
        headers: { 'content-type': 'application/json', 'content-encoding': 'compress' },
        body: '{"jobName":"x"}',
        status: 415,
        code: 'UNSUPPORTED_MEDIA_TYPE',
        says: /Content-Encoding compress/,
      },
    ];
    for (const testCase of cases) {
      const answer = await call(base, 'POST', '/enqueue-task', {
        headers: testCase.headers,
        ...(testCase.body === undefined ? {} : { body: testCase.body }),
      });
      assertJsonError(answer, testCase.status, testCase.code);
      assert.match(answer.body?.error ?? '', testCase.says);
      assert.doesNotMatch(
        answer.body?.error ?? '',
        /Content-Type must be application\/json$/,
        'not the old catch-all message',
      );
    }
    // fetch adds a text/plain type to a string body, so the body without any type goes out raw.
    const untyped = await raw(
      base,
      'POST /enqueue-task HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 15\r\n\r\n{"jobName":"x"}',
    );
    assert.match(untyped, /^HTTP\/1\.1 415 /);
    assert.match(untyped.split('\r\n\r\n')[1] ?? '', /Content-Type is missing/);
    assert.equal(await enqueuedJobs(), before, 'nothing was enqueued');
  });

  test('OPTIONS answers JSON with Allow; a wrong method on a known route answers 405 with Allow', async () => {
    const examples = [
      '/enqueue-task',
      '/enqueue-tasks',
      '/jobs',
      '/jobs/x~y',
      '/jobs/x~y/events',
      '/jobs/x~y/retry',
      '/groups',
      '/groups/tenant-a',
      '/schedules',
      '/schedules/nightly',
      '/workers',
      '/livez',
      '/healthz',
      '/metrics',
      '/openapi.json',
      '/docs',
    ];
    assert.equal(examples.length, ROUTES.length, 'one example path per route');
    for (const path of examples) {
      const methods = ROUTES.find((route) => route.pattern.test(path))?.methods ?? [];
      const allow = [...methods, 'OPTIONS'];
      const options = await call(base, 'OPTIONS', path);
      assert.equal(options.status, 200, path);
      assert.match(options.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(options.body?.allow, allow);
      assert.equal(options.headers.get('allow'), allow.join(', '));
      // No route takes PATCH.
      const refused = await call(base, 'PATCH', path);
      assertJsonError(refused, 405, 'METHOD_NOT_ALLOWED');
      assert.equal(refused.headers.get('allow'), allow.join(', '));
    }
    assertJsonError(await call(base, 'DELETE', '/no-such-route'), 404, 'NOT_FOUND');
  });

  test("requests Node's parser refuses get JSON too: 400 for garbage, 431 for huge headers", async () => {
    const garbage = await raw(base, 'THIS IS NOT HTTP\r\n\r\n');
    assert.match(garbage, /^HTTP\/1\.1 400 /);
    assert.match(garbage, /content-type: application\/json/i);
    assert.equal((JSON.parse(garbage.split('\r\n\r\n')[1] ?? '') as { code: string }).code, 'BAD_REQUEST');
    const huge = await raw(base, `GET /workers HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(huge, /^HTTP\/1\.1 431 /);
    assert.equal((JSON.parse(huge.split('\r\n\r\n')[1] ?? '') as { code: string }).code, 'HEADERS_TOO_LARGE');
  });

  test('a client that disconnects mid-body is logged at info, not as an error', async () => {
    const body = JSON.stringify({ jobName: 'aborted', data: { pad: 'x'.repeat(2_000) } });
    await raw(
      base,
      `POST /enqueue-task HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 100)}`,
      { closeAfterMs: 100 },
    );
    const line = await waitFor(() => lineOf(logs, 'http.aborted', { method: 'POST', path: '/enqueue-task' }), {
      what: 'the aborted request to be logged',
    });
    assert.equal(line.level, 30);
  });

  test('404 bodies echo at most a short part of what was asked', async () => {
    const answer = await call(base, 'GET', `/jobs/${'x'.repeat(10_000)}`);
    assertJsonError(answer, 404, 'NOT_FOUND');
    assert.ok((answer.body?.error?.length ?? 0) < 200, `echoed ${answer.body?.error?.length} characters`);
    const route = await call(base, 'GET', `/${'y'.repeat(10_000)}`);
    assert.ok((route.body?.error?.length ?? 0) < 200);
  });

  test('the API key exemption follows routing: every spelling that reaches /healthz is open', async () => {
    const keyed = await serve(KEY);
    for (const path of ['/healthz', '/healthz/', '/HEALTHZ', '/Healthz/'])
      assert.equal((await call(keyed, 'GET', path)).status, 200, path);
    assertJsonError(await call(keyed, 'GET', '/workers'), 401, 'UNAUTHORIZED');
    assertJsonError(await call(keyed, 'GET', '/healthz/x'), 401, 'UNAUTHORIZED');
  });
});
