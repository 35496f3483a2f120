/**
 * The bounds on `GET /jobs/:id/events`, in-process on port 0 against a real Redis: a process keeps
 * at most SSE_MAX_STREAMS streams open (past that a JSON 503 with Retry-After, and a place frees as
 * soon as a stream ends), and a stream lives at most SSE_MAX_LIFETIME_MS, ending with a `reconnect`
 * event. (How streams end when the process stops: test/faults/shutdown-streams.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { captureLogger, type CapturedLine } from '../support/capture-logger.js';
import { startApp, type StartedApp } from '../support/in-process-app.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { openEvents } from '../support/sse.js';
import { waitFor } from '../support/wait.js';

const PREFIX = 'streams';

let redis: TestRedis;
const apps: StartedApp[] = [];
const logs: CapturedLine[] = [];

async function serve(limits: { sseMaxStreams?: number; sseMaxLifetimeMs?: number }): Promise<StartedApp> {
  const app = await startApp(redis.url, { prefix: PREFIX, logger: captureLogger(logs).logger, ...limits });
  apps.push(app);
  return app;
}

/** A job that stays delayed for the whole test, so that its stream ends only when the server ends it. */
async function delayedJob(app: StartedApp): Promise<string> {
  const response = await fetch(`${app.url}/enqueue-task`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jobName: 'later', options: { delayMs: 3_600_000 } }),
  });
  assert.equal(response.status, 202);
  return ((await response.json()) as { jobId: string }).jobId;
}

before(async () => {
  redis = await startRedis();
});
after(async () => {
  for (const app of apps) await app.close();
  await redis?.stop();
});

test('past SSE_MAX_STREAMS a stream is refused with a JSON 503 TOO_MANY_STREAMS and Retry-After; a place frees when a stream ends', async () => {
  const app = await serve({ sseMaxStreams: 2 });
  const url = `${app.url}/jobs/${await delayedJob(app)}/events`;
  const leaving = new AbortController();
  const first = await fetch(url, { signal: leaving.signal });
  const second = await openEvents(url);
  assert.equal(first.status, 200);
  assert.equal(second.status, 200);

  const refused = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  assert.equal(refused.status, 503);
  assert.match(refused.headers.get('content-type') ?? '', /^application\/json/);
  const retryAfter = Number(refused.headers.get('retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter > 0, `Retry-After: ${refused.headers.get('retry-after')}`);
  const body = (await refused.json()) as { code: string; error: string; details: { retryAfterSeconds: number } };
  assert.equal(body.code, 'TOO_MANY_STREAMS');
  assert.match(body.error, /SSE_MAX_STREAMS/);
  assert.equal(body.details.retryAfterSeconds, retryAfter);

  // The first client leaves: its place is free for the next one.
  leaving.abort();
  const third = await waitFor(
    async () => {
      const response = await fetch(url, { signal: AbortSignal.timeout(60_000) });
      if (response.status === 200) return response;
      await response.body?.cancel();
      return undefined;
    },
    { what: 'a place to free once a client left' },
  );
  await third.body?.cancel();
});

test('a stream open for SSE_MAX_LIFETIME_MS ends with a reconnect event, and its place frees', async () => {
  const app = await serve({ sseMaxStreams: 1, sseMaxLifetimeMs: 1_000 });
  const jobId = await delayedJob(app);
  const url = `${app.url}/jobs/${jobId}/events`;
  const stream = await openEvents(url);
  assert.equal(stream.status, 200);
  const events = await stream.ended;
  assert.deepEqual(events[0], { event: 'state', data: { jobId, group: 'default', state: 'delayed' } });
  assert.deepEqual(events.at(-1), { event: 'reconnect', data: { jobId } }, 'the last event says to reconnect');

  const again = await openEvents(url);
  assert.equal(again.status, 200, 'the one place is free again');
  assert.equal((await again.ended).at(-1)?.event, 'reconnect');
});
