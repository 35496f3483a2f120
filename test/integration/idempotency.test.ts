/**
 * Idempotency-Key on POST /enqueue-task, in-process against a real Redis (one server or a cluster,
 * test/support/test-redis.ts) with two live worker ids: a repeat replays the first answer and
 * enqueues nothing; another body is refused; a malformed key is refused before anything happens; a
 * claim left by a request that died is taken over once stale; and concurrent requests with one key
 * through two app instances create one job.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { bodyHash, idempotencyRecordKey } from '../../src/idempotency/store.js';
import { startApp, type InProcessApp } from '../support/in-process-app.js';
import { jobKeys, queuedTotal } from '../support/jobs.js';
import { joinWorkers } from '../support/ledger.js';
import { keysEverywhere } from '../support/redis-nodes.js';
import { startTestRedis, type ModeRedis } from '../support/test-redis.js';

const logger = pino({ level: 'silent' });
const config = loadConfig({ QUEUE_PREFIX: 'idem-test' });
/** Longer than a repeat waits for a busy key (2 s), so that a fresh claim is seen as busy first. */
const STALE_MS = 3_000;
const TASK = { jobName: 'once', data: { n: 1, nested: { a: 1, b: 2 } } };

interface Answer {
  readonly jobId: string;
  readonly assignedWorker: string;
  readonly code?: string;
}

let redis: ModeRedis;
let apps: InProcessApp[] = [];

async function post(app: InProcessApp, body: unknown, key?: string) {
  const response = await fetch(`${app.url}/enqueue-task`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Answer };
}

const jobs = () => jobKeys(redis.client, config.prefix);
const loads = () => queuedTotal(redis.client, config.prefix);

describe('Idempotency-Key', () => {
  before(async () => {
    redis = await startTestRedis();
    // Two app instances with connections of their own: two processes as far as Redis can tell.
    for (let i = 0; i < 2; i += 1) {
      apps.push(
        await startApp(redis.target, { prefix: config.prefix, logger, staleClaimMs: STALE_MS, workerTtlMs: 60_000 }),
      );
    }
    await joinWorkers(redis.client, config.prefix, ['idem-0', 'idem-1']);
  });

  after(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await redis?.stop();
    apps = [];
  });

  test('a repeat answers 200 with the first answer, marked replayed, and enqueues nothing', async () => {
    const [app] = apps as [InProcessApp];
    const first = await post(app, TASK, 'order-1001');
    assert.equal(first.status, 202);
    assert.equal(first.headers.get('idempotent-replayed'), null);
    const jobsAfterFirst = await jobs();
    const loadAfterFirst = await loads();

    // The same body with its keys in another order is the same request.
    const again = await post(app, { data: { nested: { b: 2, a: 1 }, n: 1 }, jobName: 'once' }, 'order-1001');
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(again.body, first.body);
    assert.equal(again.headers.get('location'), `/jobs/${encodeURIComponent(first.body.jobId)}`);
    assert.deepEqual(await jobs(), jobsAfterFirst, 'no second job');
    assert.equal(await loads(), loadAfterFirst, 'no second reservation');

    const other = await post(app, TASK, 'order-1002');
    assert.equal(other.status, 202, 'another key is another task');
    assert.notEqual(other.body.jobId, first.body.jobId);
  });

  test('the same key with another body is refused with 422 and enqueues nothing', async () => {
    const [app] = apps as [InProcessApp];
    assert.equal((await post(app, TASK, 'order-2001')).status, 202);
    const before = await jobs();
    const reused = await post(app, { ...TASK, data: { n: 2 } }, 'order-2001');
    assert.equal(reused.status, 422);
    assert.equal(reused.body.code, 'IDEMPOTENCY_KEY_REUSED');
    assert.deepEqual(await jobs(), before);
  });

  test('a malformed key is refused with 400 before anything is claimed or enqueued', async () => {
    const [app] = apps as [InProcessApp];
    const before = await jobs();
    for (const key of ['', 'x'.repeat(256), 'has space', 'tab\tinside', 'é']) {
      // fetch refuses to send some of these; send what it can.
      let response;
      try {
        response = await post(app, TASK, key);
      } catch {
        continue;
      }
      assert.equal(response.status, 400, JSON.stringify(key));
      assert.equal(response.body.code, 'INVALID_IDEMPOTENCY_KEY');
    }
    assert.equal((await post(app, TASK, 'x'.repeat(255))).status, 202, '255 visible characters are fine');
    assert.equal((await jobs()).length, before.length + 1);
    assert.equal(await redis.client.exists(idempotencyRecordKey(config.prefix, 'has space')), 0);
  });

  test('concurrent requests with one key through two instances create exactly one job', async () => {
    const before = (await jobs()).length;
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => post(apps[i % 2] as InProcessApp, TASK, 'order-3001')),
    );
    assert.deepEqual(
      answers.map((answer) => answer.status).sort(),
      [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 202],
    );
    assert.equal(new Set(answers.map((answer) => answer.body.jobId)).size, 1, 'one job id for all');
    assert.equal((await jobs()).length, before + 1);
  });

  test('a claim left by a request that died is taken over once stale, and the retry creates the job', async () => {
    const [app] = apps as [InProcessApp];
    // What a request that died after claiming its key, and before creating its job, leaves behind.
    const recordKey = idempotencyRecordKey(config.prefix, 'order-4001');
    const [seconds, micros] = await redis.client.time();
    const claimedAt = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const claim = { s: 'c', t: 'dead', h: bodyHash(TASK), at: claimedAt };
    await redis.client.set(recordKey, JSON.stringify(claim), 'EX', 60);
    const before = (await jobs()).length;

    const whileFresh = await post(app, TASK, 'order-4001');
    assert.equal(whileFresh.status, 409, 'a fresh claim may still be answered by its own request');
    assert.equal(whileFresh.body.code, 'IDEMPOTENCY_KEY_IN_USE');
    assert.ok(Number(whileFresh.headers.get('retry-after')) >= 1);
    assert.equal((await jobs()).length, before);

    const [nowSeconds] = await redis.client.time();
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, claimedAt + STALE_MS + 100 - Number(nowSeconds) * 1000)),
    );
    const retry = await post(app, TASK, 'order-4001');
    assert.equal(retry.status, 202);
    assert.equal((await jobs()).length, before + 1);
    const replay = await post(app, TASK, 'order-4001');
    assert.equal(replay.status, 200);
    assert.equal(replay.body.jobId, retry.body.jobId);
  });

  test('the answer is stored with the job, and the key expires with IDEMPOTENCY_TTL_SECONDS', async () => {
    const [app] = apps as [InProcessApp];
    const first = await post(app, TASK, 'order-5001');
    const recordKey = idempotencyRecordKey(config.prefix, 'order-5001');
    const record = JSON.parse((await redis.client.get(recordKey)) ?? '{}') as { s: string; a: Answer };
    assert.equal(record.s, 'd');
    assert.deepEqual(record.a, first.body);
    const ttl = await redis.client.ttl(recordKey);
    assert.ok(ttl > 86_400 - 60 && ttl <= 86_400, `ttl ${ttl}`);
  });

  test('a record is named by a digest of its key: braces in a key pick no slot', async () => {
    const [app] = apps as [InProcessApp];
    const keys = ['{a}order-6001', '{a}order-6002'];
    for (const key of keys) assert.equal((await post(app, { ...TASK, data: { key } }, key)).status, 202);
    const stored = await keysEverywhere(redis.client, `${config.prefix}:idempotency*`);
    for (const key of keys) assert.ok(stored.includes(idempotencyRecordKey(config.prefix, key)), key);
    assert.deepEqual(
      stored.filter((name) => name.includes('{')),
      [],
      'no record name holds a hash tag of the client',
    );
    assert.equal((await post(app, { ...TASK, data: { key: keys[0] } }, keys[0])).status, 200, 'still replayed');
  });

  test('an answer stored before keys were digested is still replayed, for its time to live', async () => {
    const [app] = apps as [InProcessApp];
    // As the earlier version left it: under the key itself.
    const answer = { message: 'Task enqueued successfully', jobId: 'idem-0~before-upgrade', assignedWorker: 'idem-0' };
    const legacy = JSON.stringify({ s: 'd', h: bodyHash(TASK), a: answer });
    await redis.client.set(`${config.prefix}:idempotency:order-7001`, legacy, 'EX', 60);
    const before = (await jobs()).length;
    const again = await post(app, TASK, 'order-7001');
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, answer);
    assert.equal((await post(app, { ...TASK, data: {} }, 'order-7001')).status, 422, 'another body is refused');
    assert.equal((await jobs()).length, before, 'nothing enqueued');
    assert.equal(await redis.client.exists(idempotencyRecordKey(config.prefix, 'order-7001')), 0, 'no claim left');
  });
});
