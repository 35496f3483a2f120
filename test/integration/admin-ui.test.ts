/**
 * The queue dashboard at /admin/queues, in-process against a real Redis (one server or a cluster,
 * test/support/test-redis.ts): the API key as Bearer or as the password of HTTP Basic (only on the
 * browser pages), the queues bull-board's API lists (every worker id the ledger knows, retired ones
 * too, and the scheduled queue, followed as workers join), its page, static files and deep links,
 * a job with its group among its options, and its read-only guard: a request that would change
 * anything is refused with 405 and leaves Redis byte for byte as it was. Then the real service with
 * ADMIN_UI=false, where the dashboard's paths are unknown.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import { ADMIN_ROUTE } from '../../src/http/route-table.js';
import { ledgerKeys } from '../../src/contracts/keys.js';
import { captureLogger, type CapturedLine } from '../support/capture-logger.js';
import { logged } from '../support/log-lines.js';
import { startApp, type StartedApp } from '../support/in-process-app.js';
import { joinWorkers } from '../support/ledger.js';
import { keysEverywhere } from '../support/redis-nodes.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';
import { startService } from '../support/service.js';
import { waitFor } from '../support/wait.js';
import { queueNameFor, DELAYED_QUEUE, HELD_QUEUE } from '../../src/contracts/names.js';
import { GROUP_OPTION } from '../../src/contracts/stored-job.js';

const KEY = 'a-long-enough-test-key-0123456789';
const PREFIX = 'admin';
const BEARER = { authorization: `Bearer ${KEY}` };
const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: unknown;
}

interface QueuesAnswer {
  readonly queues: readonly { readonly name: string; readonly readOnlyMode: boolean }[];
}

let redis: ModeRedis;
let app: StartedApp;
const logs: CapturedLine[] = [];

async function call(
  base: string,
  method: string,
  path: string,
  { headers = {}, body }: { headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const response = await fetch(`${base}${path}`, { method, headers, body, signal: AbortSignal.timeout(15_000) });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

function assertJsonError(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, answer.text.slice(0, 200));
  assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
  const body = answer.json as { code?: unknown; error?: unknown };
  assert.equal(body.code, code);
  assert.equal(typeof body.error, 'string');
}

async function queueNames(): Promise<string[]> {
  const answer = await call(app.url, 'GET', '/admin/queues/api/queues', { headers: BEARER });
  assert.equal(answer.status, 200, answer.text.slice(0, 200));
  return (answer.json as QueuesAnswer).queues.map((queue) => queue.name).sort();
}

/** Every key under the prefix with its serialized value: equal snapshots mean nothing changed. */
async function redisState(): Promise<Map<string, string>> {
  const keys = (await keysEverywhere(redis.client, `${PREFIX}:*`)).sort();
  const state = new Map<string, string>();
  for (const key of keys) state.set(key, (await redis.client.dumpBuffer(key))?.toString('base64') ?? '');
  return state;
}

describe('the queue dashboard', () => {
  before(async () => {
    redis = await startTestRedis();
    const { logger } = captureLogger(logs);
    app = await startApp(redis.target, { prefix: PREFIX, logger, apiKey: KEY, adminUi: true });
    await joinWorkers(app.connection, PREFIX, ['a-0'], 4);
  });
  after(async () => {
    await app?.close();
    await redis?.stop();
    const loud = logs.filter((line) => line.level > 30);
    assert.deepEqual(loud, [], 'nothing is logged above info');
  });

  test('without a key: 401 JSON with a Basic challenge, so that a browser asks for the key', async () => {
    for (const path of ['/admin/queues', '/admin/queues/', '/admin/queues/api/queues', '/ADMIN/Queues']) {
      const answer = await call(app.url, 'GET', path);
      assertJsonError(answer, 401, 'UNAUTHORIZED');
      assert.equal(answer.headers.get('www-authenticate'), 'Basic realm="bullpen"', path);
    }
  });

  test('Bearer, or Basic with the key as the password and any user name, opens the page', async () => {
    for (const headers of [
      BEARER,
      basic('operator', KEY),
      basic('', KEY),
      { authorization: `basic ${btoa(`x:${KEY}`)}` },
    ]) {
      const answer = await call(app.url, 'GET', '/admin/queues', { headers });
      assert.equal(answer.status, 200, headers.authorization);
      assert.match(answer.headers.get('content-type') ?? '', /^text\/html/);
      assert.match(answer.text, /<title>Bullpen<\/title>/);
      assert.match(answer.text, /<base href="\/admin\/queues\/"/);
      assert.equal(answer.headers.get('x-powered-by'), null);
    }
  });

  test('a wrong Basic password, or Basic without one, is refused', async () => {
    const noColon = { authorization: `Basic ${Buffer.from(KEY).toString('base64')}` };
    for (const headers of [
      basic('operator', `${KEY}x`),
      basic('operator', ''),
      { authorization: 'Basic %%%' },
      noColon,
    ]) {
      const answer = await call(app.url, 'GET', '/admin/queues', { headers });
      assertJsonError(answer, 401, 'UNAUTHORIZED');
      assert.equal(answer.headers.get('www-authenticate'), 'Basic realm="bullpen"');
    }
  });

  test('Basic is for the browser pages only: the API still wants Bearer', async () => {
    for (const path of ['/workers', '/jobs/a-0~x', '/metrics', '/administrator']) {
      const answer = await call(app.url, 'GET', path, { headers: basic('operator', KEY) });
      assertJsonError(answer, 401, 'UNAUTHORIZED');
      assert.equal(answer.headers.get('www-authenticate'), 'Bearer', path);
    }
    assert.equal((await call(app.url, 'GET', '/workers', { headers: BEARER })).status, 200);
    // /admin itself is a browser path with no page: with the key it is simply unknown.
    assertJsonError(await call(app.url, 'GET', '/admin', { headers: basic('operator', KEY) }), 404, 'NOT_FOUND');
  });

  test("the page's static files and deep links are served", async () => {
    const page = await call(app.url, 'GET', '/admin/queues/', { headers: BEARER });
    const scripts = [...page.text.matchAll(/<script defer src="([^"]+)"/g)].map((match) => match[1] ?? '');
    const styles = [...page.text.matchAll(/<link href="(static\/[^"]+\.css)"/g)].map((match) => match[1] ?? '');
    assert.ok(scripts.length > 0 && styles.length > 0, 'the page names its scripts and styles');
    for (const asset of [...scripts, ...styles]) {
      const answer = await call(app.url, 'GET', `/admin/queues/${asset}`, { headers: basic('operator', KEY) });
      assert.equal(answer.status, 200, asset);
      assert.match(answer.headers.get('content-type') ?? '', asset.endsWith('.js') ? /javascript/ : /text\/css/);
      assert.ok(answer.text.length > 100, asset);
    }
    const head = await call(app.url, 'HEAD', `/admin/queues/${scripts[0]}`, { headers: BEARER });
    assert.equal(head.status, 200);
    const queuePage = `/admin/queues/queue/${encodeURIComponent(queueNameFor('a-0'))}`;
    for (const link of [queuePage, `${queuePage}/a-0~x`]) {
      const answer = await call(app.url, 'GET', link, { headers: BEARER });
      assert.equal(answer.status, 200, link);
      assert.match(answer.text, /<title>Bullpen<\/title>/);
    }
    assertJsonError(await call(app.url, 'GET', '/admin/queues/no/such/page', { headers: BEARER }), 404, 'NOT_FOUND');
    assertJsonError(
      await call(app.url, 'GET', '/admin/queues/static/no-such-file.js', { headers: BEARER }),
      404,
      'NOT_FOUND',
    );
  });

  test("bull-board's API lists every worker the ledger knows, retired ones, the held and the scheduled queue, read-only", async () => {
    await app.connection.hset(ledgerKeys(PREFIX).retired, 'gone-0', String(Date.now()));
    const expected = ['a-0', 'gone-0', HELD_QUEUE, DELAYED_QUEUE].map(queueNameFor).sort();
    // A list read before the retired id was written may be shown for a moment.
    await waitFor(async () => JSON.stringify(await queueNames()) === JSON.stringify(expected), {
      what: `the queues ${expected.join(', ')}`,
    });
    const answer = await call(app.url, 'GET', '/admin/queues/api/queues', { headers: basic('operator', KEY) });
    assert.equal(answer.status, 200);
    const queues = (answer.json as QueuesAnswer).queues;
    assert.deepEqual(
      queues.map((queue) => queue.readOnlyMode),
      [true, true, true, true],
    );
  });

  test('a worker that joins later appears, without a restart', async () => {
    await joinWorkers(app.connection, PREFIX, ['b-0'], 4);
    await waitFor(async () => (await queueNames()).includes(queueNameFor('b-0')), {
      what: 'queue of b-0 on the dashboard',
    });
  });

  test('a job is shown; nothing that would change it gets through, and Redis is unchanged', async () => {
    const enqueued = await call(app.url, 'POST', '/enqueue-task', {
      headers: { ...BEARER, 'content-type': 'application/json' },
      body: JSON.stringify({ jobName: 'kept', group: 'tenant-a', data: { durationMs: 1 } }),
    });
    assert.equal(enqueued.status, 202, enqueued.text);
    const { jobId, assignedWorker } = enqueued.json as { jobId: string; assignedWorker: string };
    const queue = queueNameFor(assignedWorker);
    const shown = await call(app.url, 'GET', `/admin/queues/api/queues/${queue}/${encodeURIComponent(jobId)}`, {
      headers: BEARER,
    });
    assert.equal(shown.status, 200, shown.text.slice(0, 200));
    const shownJob = (shown.json as { job?: { id?: string; opts?: Record<string, unknown> } }).job;
    assert.equal(shownJob?.id, jobId);
    assert.equal(shownJob?.opts?.[GROUP_OPTION], 'tenant-a', "the job's group is shown with its options");

    const before = await redisState();
    assert.ok(before.size > 0);
    const json = { ...BEARER, 'content-type': 'application/json' };
    const attempts: [string, string, string?][] = [
      ['POST', `/api/queues/${queue}/add`, JSON.stringify({ name: 'sneaked', data: {} })],
      ['PUT', `/api/queues/${queue}/${jobId}/clean`],
      ['PUT', `/api/queues/${queue}/${jobId}/promote`],
      ['PUT', `/api/queues/${queue}/${jobId}/retry`],
      ['PATCH', `/api/queues/${queue}/${jobId}/update-data`, JSON.stringify({ data: { changed: true } })],
      ['PATCH', `/api/queues/${queue}/${jobId}/priority`, JSON.stringify({ priority: 1 })],
      ['PUT', `/api/queues/${queue}/empty`],
      ['PUT', `/api/queues/${queue}/obliterate`],
      ['PUT', `/api/queues/${queue}/pause`],
      ['PUT', '/api/queues/pause'],
      ['PUT', `/api/queues/${queue}/clean/waiting`],
      ['DELETE', `/api/queues/${queue}/${jobId}`],
      ['POST', ''],
    ];
    for (const [method, path, body] of attempts) {
      for (const headers of [json, { ...basic('operator', KEY), 'content-type': 'application/json' }]) {
        const answer = await call(app.url, method, `/admin/queues${path}`, {
          headers,
          ...(body === undefined ? {} : { body }),
        });
        assertJsonError(answer, 405, 'METHOD_NOT_ALLOWED');
        assert.equal(answer.headers.get('allow'), 'GET, HEAD, OPTIONS', `${method} ${path}`);
      }
    }
    // A refused write with a body that is not even JSON is still a 405: the guard reads no body.
    const garbled = await call(app.url, 'PUT', `/admin/queues/api/queues/${queue}/empty`, {
      headers: json,
      body: '{not json',
    });
    assertJsonError(garbled, 405, 'METHOD_NOT_ALLOWED');
    assert.deepEqual(await redisState(), before, 'Redis is byte for byte as it was');
    const job = await app.queues.forWorker(assignedWorker).getJob(jobId);
    assert.equal(job?.name, 'kept');
    assert.equal(await app.queues.forWorker(assignedWorker).isPaused(), false);
  });

  test('OPTIONS answers the methods of the route table', async () => {
    const allow = [...ADMIN_ROUTE.methods, 'OPTIONS'];
    for (const path of ['/admin/queues', '/admin/queues/api/queues', '/admin/queues/static/x.js']) {
      assert.ok(ADMIN_ROUTE.pattern.test(path), path);
      const answer = await call(app.url, 'OPTIONS', path, { headers: BEARER });
      assert.equal(answer.status, 200, path);
      assert.deepEqual((answer.json as { allow?: unknown }).allow, allow);
      assert.equal(answer.headers.get('allow'), allow.join(', '));
    }
    assert.ok(!ADMIN_ROUTE.pattern.test('/admin/queuesx'));
  });
});

describe('the queue dashboard while Redis is away', () => {
  test('its API answers 503 QUEUE_UNAVAILABLE in the JSON shape, without a word of Redis', async () => {
    const down = await startTestRedis();
    const lines: CapturedLine[] = [];
    const { logger } = captureLogger(lines);
    // One app that never reads the list again (bull-board itself meets the outage), one that always does.
    const cached = await startApp(down.target, { prefix: PREFIX, logger, adminUi: true, adminRefreshMs: 3_600_000 });
    const fresh = await startApp(down.target, { prefix: PREFIX, logger, adminUi: true, adminRefreshMs: 0 });
    try {
      for (const served of [cached, fresh]) {
        assert.equal((await call(served.url, 'GET', '/admin/queues/api/queues')).status, 200);
      }
      await down.stopServer();
      await waitFor(() => cached.connection.status !== 'ready' && fresh.connection.status !== 'ready', {
        what: 'the apps to see Redis gone',
      });
      for (const served of [cached, fresh]) {
        const answer = await call(served.url, 'GET', '/admin/queues/api/queues');
        assertJsonError(answer, 503, 'QUEUE_UNAVAILABLE');
        assert.doesNotMatch(answer.text, /redis|stream|ECONN|writeable|closed/i);
      }
      // The page itself needs no Redis.
      assert.equal((await call(cached.url, 'GET', '/admin/queues')).status, 200);
      assert.ok(logged(lines, 'http.unavailable', { level: 40, code: 'QUEUE_UNAVAILABLE' }), 'logged at warn');
      assert.ok(
        lines.every((line) => line.level <= 40),
        'warn at most',
      );
    } finally {
      await cached.close();
      await fresh.close();
      await down.stop();
    }
  });
});

describe('ADMIN_UI=false', () => {
  test('the real service serves no dashboard: its paths are unknown like any other', { timeout: 120_000 }, async () => {
    assert.equal(loadConfig({ ADMIN_UI: 'false' }).adminUi, false);
    const server = await startTestRedis();
    const service = await startService({ ...server.serviceOptions, workers: 1, env: { ADMIN_UI: 'false' } });
    try {
      for (const [method, path] of [
        ['GET', '/admin/queues'],
        ['GET', '/admin/queues/api/queues'],
        ['HEAD', '/admin/queues'],
        ['OPTIONS', '/admin/queues'],
        ['DELETE', '/admin/queues/api/queues'],
      ] as const) {
        const answer = await service.request(method, path);
        assert.equal(answer.status, 404, `${method} ${path}`);
        if (method !== 'HEAD') assert.equal((answer.body as { code?: string }).code, 'NOT_FOUND');
      }
      assert.equal((await service.request('GET', '/workers')).status, 200, 'the rest is served');
    } finally {
      await service.stop();
      await server.stop();
    }
  });
});
