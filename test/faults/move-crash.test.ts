/**
 * kill -9 at every step of a move, with real processes: a worker steals a waiting job and is killed
 * right after one step of the move (BULLPEN_KILL_HOOK: the test arms the step in Redis, and the
 * first process to reach it dies). The primary forks it again, another process finds the move's
 * intent and finishes it, and the stolen job completes exactly once; nothing is lost, no intent or
 * reservation is left, and the counters return to 0. Until the job is attached to the thief's queue
 * it cannot have started anywhere, so it runs exactly once; from then on it belongs to the thief,
 * which may have started it before it was killed: that run is re-run after the crash (at-least-once
 * for crashes), and by nobody else.
 *
 * One service serves every step in turn; each scenario starts and ends with the service idle, no move
 * under way and no reservation left.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { enqueueOne, readJob, reservationsLeft, waitForIdle, waitForJobs } from '../support/jobs.js';
import { lineOf, linesOf } from '../support/log-lines.js';
import { parseMetrics, total } from '../support/prom-text.js';
import { startTestRedis } from '../support/test-redis.js';
import type { Service } from '../support/service.js';
import { serviceSuite } from '../support/service-suite.js';
import { MOVE_STEPS } from '../../src/ownership/move-steps.js';
import { waitFor } from '../support/wait.js';
import { ledgerKeys } from '../../src/contracts/keys.js';

/** Every step after which a move is still under way (after the commit there is nothing to finish). */
const STEPS = MOVE_STEPS.filter((step) => step !== 'committed');

const enqueue = (service: Service, durationMs: number) => enqueueOne(service, 'steal-me', { durationMs });

describe('kill -9 during a move', () => {
  const suite = serviceSuite(startTestRedis, (redis) => ({
    ...redis.serviceOptions,
    workers: 2,
    env: {
      WORKER_CONCURRENCY: '1',
      // A job waits behind a busy worker's long one only as its prefetch (else in the held queue).
      PREFETCH: '10',
      HEARTBEAT_INTERVAL_MS: '250',
      WORKER_TTL_MS: '1500',
      WORKER_RETIRE_MS: '30000',
      RECONCILE_INTERVAL_MS: '500',
      BULLPEN_KILL_HOOK: 'true',
      LOG_LEVEL: 'debug',
    },
  }));

  for (const step of STEPS) {
    test(`after "${step}": another process finishes the move, and the job completes once`, async () => {
      const { redis, service } = suite;
      await service.waitForAlive(2);
      const logsBefore = service.logs.length;
      const linesSince = () => service.logs.slice(logsBefore);
      await redis.client.set(`${service.prefix}:test:kill-after-move-step`, step);

      // One worker gets a long job with a short one waiting behind it; the other runs its short
      // ones, then steals the waiting one and dies in the middle of the move.
      const long = await enqueue(service, 3_000);
      const shorts = [await enqueue(service, 200), await enqueue(service, 200), await enqueue(service, 200)];
      const behindLong = shorts.filter((job) => job.assignedWorker === long.assignedWorker);
      assert.equal(behindLong.length, 1, JSON.stringify(shorts));
      const thief = shorts.find((job) => job.assignedWorker !== long.assignedWorker)?.assignedWorker;

      const death = await waitFor(() => lineOf(linesSince(), 'process.died', { signal: 'SIGKILL' }), {
        what: `the thief to be killed after "${step}"`,
      });
      assert.equal(death.workerId, thief);
      assert.equal(await redis.client.exists(`${service.prefix}:test:kill-after-move-step`), 0, 'the arming was used');
      const done = await waitForJobs(service, [long, ...shorts]);
      const stolen = done.find((job) => job.jobId === behindLong[0]?.jobId);
      assert.equal(stolen?.failedReason, null);
      const about = (event: string) => linesOf(linesSince(), event, { jobId: stolen?.jobId });
      // The line is written after BullMQ has stored the completion, which the wait above saw.
      await waitFor(() => about('job.completed').length > 0, { what: "the stolen job's completion line" });
      assert.equal(about('job.completed').length, 1, 'the stolen job completed exactly once');
      // BullMQ's own count of starts is the truth: a process killed by SIGKILL may die before its
      // last log line is written.
      const starts = about('job.started');
      const started = stolen?.attemptsStarted ?? 0;
      assert.ok(starts.length >= 1 && starts.length <= started, `${starts.length} logged starts, ${started} counted`);
      if (step === 'begun' || step === 'detached' || step === 'shifted') {
        assert.equal(started, 1, 'the stolen job ran exactly once');
      } else {
        assert.ok(started <= 2, `${started} starts`);
        for (const start of starts.slice(0, -1))
          assert.equal(start.pid, death.childPid, "an earlier start was the killed thief's own");
      }
      assert.equal(stolen?.assignedWorker, thief, 'it ran where it was moved');
      assert.deepEqual(stolen?.movedFrom, [long.assignedWorker]);
      assert.equal((await readJob(service, long.jobId)).attemptsStarted, 1, 'the long job was never interrupted');

      await waitFor(async () => (await redis.client.hlen(ledgerKeys(service.prefix).moves)) === 0, {
        what: 'no move left under way',
      });
      await waitForIdle(service);
      await waitFor(async () => (await reservationsLeft(redis.client, service.prefix)) === 0, {
        what: 'no reservation left',
      });
      const samples = parseMetrics((await service.request('GET', '/metrics')).text);
      assert.ok(total(samples, 'bullpen_jobs_moved_total', { reason: 'stolen' }) >= 1, 'the finished move was counted');
    });
  }
});
