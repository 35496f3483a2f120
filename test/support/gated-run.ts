/**
 * A service whose slots are held by gate jobs while more jobs wait, for tests that stop it in the
 * middle (a SIGTERM, a Ctrl-C, a second one) and then check what a next start on the same Redis state
 * makes of the jobs it left.
 */
import assert from 'node:assert/strict';
import { createGate, FIXTURE_HANDLERS, GATE_JOB, type Gate } from './gate.js';
import { enqueueMany, waitForRunning, type Enqueued } from './jobs.js';
import { startService, type Service, type ServiceOptions } from './service.js';
import type { ModeRedis } from './test-redis.js';

export interface GatedRunOptions {
  readonly workers: number;
  readonly concurrency: number;
  readonly shutdownTimeoutMs: number;
  /** How many gate jobs to enqueue; those beyond the slots wait. */
  readonly jobs: number;
}

export interface GatedRun {
  readonly service: Service;
  /** Holds every job until opened. */
  readonly gate: Gate;
  readonly jobs: readonly Enqueued[];
  /**
   * Starts the service again on this run's key prefix, and so on the jobs it left; runs `check` on it,
   * then stops it, asserting that it exits 0 once `check` has passed.
   */
  again<T>(check: (next: Service) => Promise<T>): Promise<T>;
}

/** Starts the service, enqueues the gate jobs, and returns once every slot runs one. */
export async function startGatedRun(redis: ModeRedis, options: GatedRunOptions): Promise<GatedRun> {
  const serviceOptions: ServiceOptions = {
    ...redis.serviceOptions,
    workers: options.workers,
    env: {
      WORKER_CONCURRENCY: String(options.concurrency),
      SHUTDOWN_TIMEOUT_MS: String(options.shutdownTimeoutMs),
      HANDLERS_DIR: FIXTURE_HANDLERS,
      // Per-job lines (started, completed) are debug.
      LOG_LEVEL: 'debug',
    },
  };
  const service = await startService(serviceOptions);
  const gate = createGate(redis.client, redis.nodeUrl);
  const jobs = await enqueueMany(service, options.jobs, GATE_JOB, gate.data());
  const slots = Math.min(options.jobs, options.workers * options.concurrency);
  await gate.waitStarted(slots);
  await waitForRunning(service, slots);
  return {
    service,
    gate,
    jobs,
    async again(check) {
      const next = await startService({ ...serviceOptions, prefix: service.prefix });
      const result = await check(next).catch(async (error: unknown) => {
        await next.stop();
        throw error;
      });
      assert.equal(await next.stop(), 0, 'the next start stops cleanly');
      return result;
    },
  };
}
