/**
 * Starting before Redis answers (issue 20, item 5), as an orchestrator starts a service and its Redis
 * in any order: the port answers at once, `/livez` 200 and `/healthz` and everything that needs Redis
 * 503 `NOT_READY` with `Retry-After`; each process logs one `redis.waiting` line per interval naming
 * the Redis (password hidden) and why it does not answer; once Redis answers, the same processes take
 * their leases and serve, and a task completes.
 *
 * Both modes (test/support/test-redis.ts): on a Redis Cluster every node is away, and the nodes carry
 * no password (the single Redis requires one, so that its URL holds one to hide).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { OUTAGE_LOG_INTERVAL_MS } from '../../src/logging/outage.js';
import { enqueueOne, jobKeys, waitForJobs } from '../support/jobs.js';
import { lineOf, linesOf } from '../support/log-lines.js';
import { startService, type HttpResult, type LogLine } from '../support/service.js';
import { redisMode, startTestRedis } from '../support/test-redis.js';
import { waitFor } from '../support/wait.js';

const PASSWORD = 'late-riser-secret';
const WORKERS = 2;
/** Waiting lines each process logs before Redis is started: the first at once, then one per interval. */
const LINES_BEFORE_REDIS = 2;

interface ErrorBody {
  readonly error?: string;
  readonly code?: string;
  readonly details?: { readonly waitingFor?: string; readonly retryAfterSeconds?: number };
}

interface HealthBody extends ErrorBody {
  readonly status: string;
  readonly redis: boolean;
  readonly consumer: boolean;
}

function assertNotReady(answer: HttpResult<ErrorBody>, what: string): void {
  assert.equal(answer.status, 503, `${what}: ${answer.text}`);
  assert.equal(answer.body.code, 'NOT_READY', what);
  assert.equal(answer.body.details?.waitingFor, 'redis', `${what} says what it waits for`);
  assert.match(answer.body.error ?? '', /\S/, `${what} says why in words`);
  assert.match(answer.headers.get('retry-after') ?? '', /^[1-9]\d*$/, `${what} says when to ask again`);
}

/** The pid of each forked process, from the primary's `process.forked` lines. */
function forkedPids(logs: readonly LogLine[]): number[] {
  return linesOf(logs, 'process.forked').map((line) => Number(line.childPid));
}

describe('starting before Redis answers', () => {
  test('503 NOT_READY at once, one waiting line per interval, then it serves without a restart', async () => {
    const redis = await startTestRedis({ password: PASSWORD });
    await redis.stopServer();
    const service = await startService({ ...redis.serviceOptions, workers: WORKERS, waitUntilReady: false });
    try {
      const health = await waitFor(() => service.request<HealthBody>('GET', '/healthz').catch(() => undefined), {
        what: 'the port to answer',
      });
      assertNotReady(health, '/healthz');
      assert.equal(health.body.status, 'unavailable');
      assert.equal(health.body.redis, false);
      assert.equal(health.body.consumer, false);
      assert.equal((await service.request('GET', '/livez')).status, 200, '/livez: the process is up');
      assertNotReady(
        await service.enqueue<ErrorBody>({ jobName: 'too-early', data: { durationMs: 10 } }),
        'POST /enqueue-task',
      );
      assertNotReady(await service.request<ErrorBody>('GET', '/workers'), 'GET /workers');

      const pids = await waitFor(
        () => {
          const forked = forkedPids(service.logs);
          const waited = forked.every(
            (pid) => linesOf(service.logs, 'redis.waiting', { pid }).length >= LINES_BEFORE_REDIS,
          );
          return forked.length === WORKERS && waited ? forked : undefined;
        },
        { timeoutMs: 60_000, what: `${LINES_BEFORE_REDIS} waiting lines from each process` },
      );
      assert.equal(service.child.exitCode, null, 'the service waits; it does not give up');
      assert.deepEqual(linesOf(service.logs, 'process.ready'), [], 'no process serves without Redis');

      await redis.startServer();
      await service.waitForAlive(WORKERS);
      const ready = await waitFor(
        async () => {
          const answer = await service.request<HealthBody>('GET', '/healthz', { headers: { connection: 'close' } });
          return answer.status === 200 ? answer : undefined;
        },
        { what: '/healthz to answer 200' },
      );
      assert.deepEqual(
        ready.body,
        { status: 'ok', redis: true, consumer: true, redisMode: redisMode() },
        'a healthy answer as ever, naming the mode',
      );
      assert.deepEqual(await jobKeys(redis.client, service.prefix), [], 'nothing was enqueued while not ready');
      const job = await enqueueOne(service, 'after-redis', { durationMs: 50 });
      await waitForJobs(service, [job]);

      // The same processes: none died, none was forked again, each serves under its first pid.
      assert.deepEqual(forkedPids(service.logs), pids, 'no process was forked again');
      assert.deepEqual(linesOf(service.logs, 'process.died'), []);
      const listed = (await service.workers()).workers.filter((worker) => worker.id.startsWith(`${service.hostId}-`));
      assert.deepEqual(
        listed.map((worker) => worker.pid).sort(),
        [...pids].sort(),
        'the workers run in the first pids',
      );

      for (const pid of pids) {
        const waiting = linesOf(service.logs, 'redis.waiting', { pid });
        const connected = lineOf(service.logs, 'redis.connected', { pid });
        assert.ok(connected, `process ${pid} said when Redis answered`);
        const served = lineOf(service.logs, 'process.ready', { pid });
        assert.ok(served, `process ${pid} serves`);
        assert.ok(service.logs.indexOf(connected) < service.logs.indexOf(served), 'only once Redis answered');
        for (const line of waiting) {
          assert.equal(line.level, 40);
          assert.match(String(line.reason), /^[^\n]+$/, 'the error as a one-line reason');
          assert.equal(line.err, undefined, 'no stack');
          if (redis.mode === 'single') {
            assert.equal(line.code, 'ECONNREFUSED', 'and by its code');
            assert.equal(
              line.redis,
              redis.serviceOptions.redisUrl.replace(PASSWORD, '***'),
              'the URL, password hidden',
            );
          } else {
            // ioredis's cluster client keeps no code: a seed's refused connection reaches it as "Connection is closed."
            assert.match(String(line.redis), /^cluster /, 'the cluster by its seed nodes');
          }
        }
        // The first at once, then at most one per interval until Redis answered.
        const waitedMs = Number(connected.time) - Number(waiting[0]?.time);
        const bound = Math.floor(waitedMs / OUTAGE_LOG_INTERVAL_MS) + 1;
        assert.ok(waiting.length <= bound, `${waiting.length} waiting lines in ${waitedMs} ms from process ${pid}`);
      }
      assert.deepEqual(
        linesOf(service.logs, 'redis.connection-error'),
        [],
        "the connections' own lines stay quiet until they were first ready",
      );
      assert.doesNotMatch(JSON.stringify(service.logs), new RegExp(PASSWORD), 'the password is never logged');
      assert.equal(service.stderr(), '', 'nothing bypassed the log');
    } finally {
      await service.stop();
      await redis.stop();
    }
  });
});
