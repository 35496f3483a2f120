/**
 * Bounded soak: `npm run soak` (not part of `npm test`).
 *
 * Starts a private redis-server (AOF on, loopback, free port) and the real cluster (4 workers,
 * concurrency 8), enqueues SOAK_JOBS short jobs (10,000 by default) with a bounded number of requests
 * in flight while a random live worker is SIGKILLed every SOAK_KILL_INTERVAL_MS (3 s), then waits
 * until every accepted job is finished and the load counters are back to 0, and reports:
 *
 * - accepted, completed, failed and lost jobs (Redis is the judge: each worker queue's `completed`
 *   and `failed` sets), and a sample read back through `GET /jobs/:id`;
 * - jobs that ran more than once, which at-least-once allows after a crash, counted both from the
 *   service's `job started` log lines and from BullMQ's own start counter (`ats`);
 * - jobs completed more than once (never allowed), jobs that exist without an acknowledged 202 (the
 *   answer was lost to a kill), refused and failed requests, kills, restarts and final counters.
 *
 * Exit code: 0 when nothing was lost, failed or completed twice, the API agrees with Redis and the
 * counters are 0; 1 when a check fails; 2 when the soak could not run; 3 when the hard deadline hit.
 * Everything it starts is stopped on every path, and the run ends by itself within SOAK_DEADLINE_MS
 * (plus a short clean-up allowance).
 *
 * Settings: environment variables or `--name=value` arguments (arguments win), e.g.
 *   SOAK_JOBS=1000 npm run soak        npm run soak -- --jobs=1000 --kill-interval-ms=2000
 */
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { jobIdFor, parseJobId, queueNameFor } from '../src/contracts/names.js';
import { ledgerKeys } from '../src/contracts/keys.js';
import { startRedis, type TestRedis } from '../test/support/redis-server.js';
import { startService, type LogLine, type Service, type WorkersResponse } from '../test/support/service.js';

// ---------------------------------------------------------------------------------------------
// Settings

interface Settings {
  readonly jobs: number;
  readonly killIntervalMs: number;
  /** How long kills go on after the last job was enqueued. */
  readonly killTailMs: number;
  readonly inFlight: number;
  readonly workers: number;
  readonly concurrency: number;
  readonly minDurationMs: number;
  readonly maxDurationMs: number;
  /** Tries per job, counting the first; non-202 answers and network errors are retried. */
  readonly enqueueTries: number;
  readonly drainTimeoutMs: number;
  /** Hard deadline for the soak itself; clean-up gets CLEANUP_ALLOWANCE_MS on top. */
  readonly deadlineMs: number;
  readonly apiSample: number;
}

const SETTINGS: Record<keyof Settings, { env: string; arg: string; fallback: number; min: number; max: number }> = {
  jobs: { env: 'SOAK_JOBS', arg: 'jobs', fallback: 10_000, min: 1, max: 1_000_000 },
  killIntervalMs: { env: 'SOAK_KILL_INTERVAL_MS', arg: 'kill-interval-ms', fallback: 3_000, min: 0, max: 600_000 },
  killTailMs: { env: 'SOAK_KILL_TAIL_MS', arg: 'kill-tail-ms', fallback: 6_000, min: 0, max: 600_000 },
  inFlight: { env: 'SOAK_IN_FLIGHT', arg: 'in-flight', fallback: 50, min: 1, max: 1_000 },
  workers: { env: 'SOAK_WORKERS', arg: 'workers', fallback: 4, min: 2, max: 64 },
  concurrency: { env: 'SOAK_CONCURRENCY', arg: 'concurrency', fallback: 8, min: 1, max: 1_024 },
  minDurationMs: { env: 'SOAK_MIN_DURATION_MS', arg: 'min-duration-ms', fallback: 20, min: 0, max: 60_000 },
  maxDurationMs: { env: 'SOAK_MAX_DURATION_MS', arg: 'max-duration-ms', fallback: 100, min: 0, max: 60_000 },
  enqueueTries: { env: 'SOAK_ENQUEUE_TRIES', arg: 'enqueue-tries', fallback: 5, min: 1, max: 100 },
  drainTimeoutMs: {
    env: 'SOAK_DRAIN_TIMEOUT_MS',
    arg: 'drain-timeout-ms',
    fallback: 300_000,
    min: 1_000,
    max: 3_600_000,
  },
  deadlineMs: { env: 'SOAK_DEADLINE_MS', arg: 'deadline-ms', fallback: 570_000, min: 10_000, max: 3_600_000 },
  apiSample: { env: 'SOAK_API_SAMPLE', arg: 'api-sample', fallback: 200, min: 0, max: 1_000_000 },
};

/** Time given to stopping the service and Redis after the deadline, before a forced exit. */
const CLEANUP_ALLOWANCE_MS = 45_000;
const SERVICE_STOP_TIMEOUT_MS = 25_000;
const PROGRESS_INTERVAL_MS = 5_000;
const DRAIN_POLL_MS = 1_000;
const REDIS_BATCH = 1_000;

const EXIT_PASS = 0;
const EXIT_CHECK_FAILED = 1;
const EXIT_ERROR = 2;
const EXIT_DEADLINE = 3;

class UsageError extends Error {
  override readonly name = 'UsageError';
}

function readSettings(argv: readonly string[], env: NodeJS.ProcessEnv): Settings {
  const args = new Map<string, string>();
  for (const arg of argv) {
    const match = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (!match?.[1] || match[2] === undefined) throw new UsageError(`unrecognised argument ${arg}; use --name=value`);
    args.set(match[1], match[2]);
  }
  const known = new Set(Object.values(SETTINGS).map((setting) => setting.arg));
  for (const name of args.keys()) if (!known.has(name)) throw new UsageError(`unknown setting --${name}`);

  const result: Partial<Record<keyof Settings, number>> = {};
  for (const [key, setting] of Object.entries(SETTINGS) as [keyof Settings, (typeof SETTINGS)[keyof Settings]][]) {
    const raw = args.get(setting.arg) ?? env[setting.env];
    if (raw === undefined || raw === '') {
      result[key] = setting.fallback;
      continue;
    }
    if (!/^\d+$/.test(raw.trim()))
      throw new UsageError(`${setting.env} / --${setting.arg} must be a whole number, got ${raw}`);
    const value = Number(raw.trim());
    if (value < setting.min || value > setting.max) {
      throw new UsageError(
        `${setting.env} / --${setting.arg} must be between ${setting.min} and ${setting.max}, got ${value}`,
      );
    }
    result[key] = value;
  }
  const settings = result as Settings;
  if (settings.maxDurationMs < settings.minDurationMs)
    throw new UsageError('SOAK_MAX_DURATION_MS must not be below SOAK_MIN_DURATION_MS');
  return settings;
}

// ---------------------------------------------------------------------------------------------
// Output

const out = (line = '') => {
  process.stdout.write(`${line}\n`);
};
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const stamp = (startedAt: number) => `[${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)} s]`;

// ---------------------------------------------------------------------------------------------
// State gathered while the soak runs

interface Accepted {
  readonly jobId: string;
  readonly assignedWorker: string;
}

interface Kill {
  readonly at: number;
  readonly workerId: string;
  readonly pid: number;
}

interface RunState {
  readonly startedAt: number;
  readonly accepted: Map<string, Accepted>;
  /** Answers other than 202, by status. */
  readonly refusals: Map<number, number>;
  /** Requests that got no answer at all (connection reset by a kill, time-out). */
  networkErrors: number;
  /** Jobs given up on after every try. */
  givenUp: number;
  /** Jobs that needed more than one try. */
  retriedJobs: number;
  readonly kills: Kill[];
  killErrors: number;
  enqueueFinishedAt: number | undefined;
  /** When every accepted job was finished in Redis and no queue held anything. */
  jobsDoneAt: number | undefined;
  /** When, in addition, the load counters were 0 and every worker alive. */
  drainedAt: number | undefined;
  /** What the drain is waiting for, for the progress line. */
  drainStatus: string | undefined;
}

// ---------------------------------------------------------------------------------------------
// Phases

function randomDuration(settings: Settings): number {
  return settings.minDurationMs + Math.floor(Math.random() * (settings.maxDurationMs - settings.minDurationMs + 1));
}

/** Enqueues `settings.jobs` jobs with at most `settings.inFlight` requests open at once. */
async function enqueueAll(service: Service, settings: Settings, state: RunState, signal: AbortSignal): Promise<void> {
  let next = 0;
  const runner = async () => {
    for (;;) {
      if (signal.aborted) return;
      const index = next;
      next += 1;
      if (index >= settings.jobs) return;
      const task = { jobName: 'soak', data: { i: index, durationMs: randomDuration(settings) } };
      let done = false;
      for (let attempt = 1; attempt <= settings.enqueueTries && !done && !signal.aborted; attempt += 1) {
        if (attempt === 2) state.retriedJobs += 1;
        try {
          const response = await service.enqueue<Accepted>(task);
          if (response.status === 202 && typeof response.body?.jobId === 'string') {
            state.accepted.set(response.body.jobId, {
              jobId: response.body.jobId,
              assignedWorker: response.body.assignedWorker,
            });
            done = true;
            break;
          }
          state.refusals.set(response.status, (state.refusals.get(response.status) ?? 0) + 1);
        } catch {
          state.networkErrors += 1;
        }
        await sleep(100 * attempt, undefined, { signal }).catch(() => undefined);
      }
      if (!done) state.givenUp += 1;
    }
  };
  await Promise.all(Array.from({ length: settings.inFlight }, runner));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Every `killIntervalMs`, SIGKILLs one random live worker process until `stop` aborts. */
async function killLoop(service: Service, settings: Settings, state: RunState, stop: AbortSignal): Promise<void> {
  if (settings.killIntervalMs === 0) return;
  const killed = new Set<number>();
  for (;;) {
    try {
      await sleep(settings.killIntervalMs, undefined, { signal: stop });
    } catch {
      return;
    }
    try {
      const { workers } = await service.workers();
      // A killed worker's heartbeat stays fresh for up to WORKER_TTL_MS: skip pids already killed.
      const candidates = workers.filter((worker) => worker.alive && !killed.has(worker.pid) && isAlive(worker.pid));
      const victim = candidates[Math.floor(Math.random() * candidates.length)];
      if (victim === undefined) continue;
      process.kill(victim.pid, 'SIGKILL');
      killed.add(victim.pid);
      state.kills.push({ at: Date.now(), workerId: victim.id, pid: victim.pid });
    } catch {
      // GET /workers can land on the process being killed; the next round tries again.
      state.killErrors += 1;
    }
  }
}

function logCounts(logs: readonly LogLine[]) {
  const started = new Map<string, number>();
  const completed = new Map<string, number>();
  const enqueued = new Set<string>();
  let attemptFailures = 0;
  let finalFailures = 0;
  let orphansRequeued = 0;
  let restarts = 0;
  let ledgerRequeued = 0;
  let ledgerReleased = 0;
  let unparsed = 0;
  for (const line of logs) {
    if (line.level === undefined) unparsed += 1;
    const jobId = typeof line.jobId === 'string' ? line.jobId : undefined;
    switch (line.event) {
      case 'job.started':
        if (jobId) started.set(jobId, (started.get(jobId) ?? 0) + 1);
        break;
      case 'job.completed':
        if (jobId) completed.set(jobId, (completed.get(jobId) ?? 0) + 1);
        break;
      case 'task.enqueued':
        if (jobId) enqueued.add(jobId);
        break;
      case 'job.attempt-failed':
        attemptFailures += 1;
        break;
      case 'job.failed':
        finalFailures += 1;
        break;
      case 'recovery.requeued':
        orphansRequeued += typeof line.count === 'number' ? line.count : 0;
        break;
      case 'process.died':
        restarts += 1;
        break;
      case 'ledger.corrected':
        ledgerRequeued += typeof line.requeued === 'number' ? line.requeued : 0;
        ledgerReleased += typeof line.released === 'number' ? line.released : 0;
        break;
      default:
        break;
    }
  }
  return {
    started,
    completed,
    enqueued,
    attemptFailures,
    finalFailures,
    orphansRequeued,
    restarts,
    ledgerRequeued,
    ledgerReleased,
    unparsed,
  };
}

interface RedisView {
  /** Job id → 'completed' | 'failed', for every job in any worker queue's finished sets. */
  readonly finished: Map<string, 'completed' | 'failed'>;
  /** Jobs still waiting, delayed, prioritized or active, over every worker queue. */
  readonly unfinished: number;
  /** Job id → BullMQ's start counter, for the jobs asked about. */
  readonly attemptsStarted: Map<string, number>;
  readonly reservations: number;
}

async function readFinished(
  client: Redis,
  prefix: string,
  workerIds: readonly string[],
): Promise<Pick<RedisView, 'finished' | 'unfinished'>> {
  const finished = new Map<string, 'completed' | 'failed'>();
  let unfinished = 0;
  for (const workerId of workerIds) {
    const base = `${prefix}:${queueNameFor(workerId)}`;
    const [completed, failed, waiting, active, delayed, prioritized, paused] = await Promise.all([
      client.zrange(`${base}:completed`, 0, -1),
      client.zrange(`${base}:failed`, 0, -1),
      client.llen(`${base}:wait`),
      client.llen(`${base}:active`),
      client.zcard(`${base}:delayed`),
      client.zcard(`${base}:prioritized`),
      client.llen(`${base}:paused`),
    ]);
    for (const jobId of completed) finished.set(jobId, 'completed');
    for (const jobId of failed) finished.set(jobId, 'failed');
    unfinished += waiting + active + delayed + prioritized + paused;
  }
  return { finished, unfinished };
}

async function readAttemptsStarted(
  client: Redis,
  prefix: string,
  jobIds: readonly string[],
): Promise<Map<string, number>> {
  const result = new Map<string, number>();
  for (let i = 0; i < jobIds.length; i += REDIS_BATCH) {
    const batch = jobIds.slice(i, i + REDIS_BATCH);
    const pipeline = client.pipeline();
    for (const jobId of batch) {
      const workerId = parseJobId(jobId)?.workerId ?? '';
      pipeline.hget(`${prefix}:${queueNameFor(workerId)}:${jobId}`, 'ats');
    }
    const replies = (await pipeline.exec()) ?? [];
    replies.forEach(([error, value], index) => {
      const jobId = batch[index];
      if (!error && jobId !== undefined && typeof value === 'string') result.set(jobId, Number(value));
    });
  }
  return result;
}

async function reservationsLeft(client: Redis, prefix: string): Promise<number> {
  const keys = await client.keys(`${ledgerKeys(prefix).jobs('')}*`);
  const sizes = await Promise.all(keys.map((key) => client.hlen(key)));
  return sizes.reduce((sum, size) => sum + size, 0);
}

/**
 * The ledger's reservations, each with what BullMQ knows of its job: for the report when the jobs are
 * all done but the counters are not yet 0.
 */
async function describeReservations(client: Redis, prefix: string, limit: number): Promise<string[]> {
  const keys = ledgerKeys(prefix);
  const now = Date.now();
  const lines: string[] = [];
  const jobsPrefix = keys.jobs('');
  for (const key of await client.keys(`${jobsPrefix}*`)) {
    const workerId = key.slice(jobsPrefix.length);
    for (const [token, value] of Object.entries(await client.hgetall(key))) {
      if (lines.length >= limit) return lines;
      const [state = '?', since = '0', first = workerId] = value.split('|');
      const jobId = jobIdFor(first, token);
      const [timestamp, finishedOn] = await client.hmget(
        `${prefix}:${queueNameFor(workerId)}:${jobId}`,
        'timestamp',
        'finishedOn',
      );
      const job =
        timestamp === null ? 'no such job (never added)' : finishedOn === null ? 'job not finished' : 'job finished';
      lines.push(`${jobId} ${state === 'a' ? 'active' : 'queued'} for ${seconds(now - Number(since))}: ${job}`);
    }
  }
  return lines;
}

/** Reads `GET /jobs/:id` for a random sample of accepted jobs; returns those not 'completed'. */
async function apiSample(service: Service, jobIds: readonly string[], size: number, signal: AbortSignal) {
  const pool = [...jobIds];
  const sample: string[] = [];
  while (sample.length < size && pool.length > 0) {
    const index = Math.floor(Math.random() * pool.length);
    sample.push(pool[index] ?? '');
    pool[index] = pool[pool.length - 1] ?? '';
    pool.pop();
  }
  const mismatches: string[] = [];
  let next = 0;
  const runner = async () => {
    while (next < sample.length && !signal.aborted) {
      const jobId = sample[next] ?? '';
      next += 1;
      try {
        const response = await service.request<{ state?: string }>('GET', `/jobs/${encodeURIComponent(jobId)}`);
        if (response.status !== 200 || response.body?.state !== 'completed') {
          mismatches.push(`${jobId}: ${response.status} ${response.body?.state ?? response.text.slice(0, 80)}`);
        }
      } catch (error) {
        mismatches.push(`${jobId}: ${String(error)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 10 }, runner));
  return { checked: sample.length, mismatches };
}

// ---------------------------------------------------------------------------------------------
// The soak

async function soak(
  settings: Settings,
  state: RunState,
  deadline: AbortSignal,
  resources: { redis?: TestRedis; service?: Service },
): Promise<number> {
  const { startedAt } = state;
  out(
    `${stamp(startedAt)} starting redis-server (AOF) and the cluster: ${settings.workers} workers × concurrency ${settings.concurrency}`,
  );
  const redis = await startRedis({ appendOnly: true });
  resources.redis = redis;
  const service = await startService({
    redisUrl: redis.url,
    workers: settings.workers,
    env: {
      WORKER_CONCURRENCY: String(settings.concurrency),
      TASK_DURATION_MS: '50',
      LOG_LEVEL: 'info',
      // Keep every finished job so that the final check can find each one.
      COMPLETED_RETENTION_COUNT: '1000000',
      COMPLETED_RETENTION_SECONDS: '86400',
      SHUTDOWN_TIMEOUT_MS: '10000',
    },
  });
  resources.service = service;
  const workerIds = (await service.workers()).workers.map((worker) => worker.id);
  out(`${stamp(startedAt)} cluster up on ${service.url}, prefix ${service.prefix}, workers ${workerIds.join(', ')}`);
  out(
    `${stamp(startedAt)} enqueueing ${settings.jobs} jobs (${settings.inFlight} in flight, ${settings.minDurationMs}–${settings.maxDurationMs} ms each), ` +
      (settings.killIntervalMs > 0
        ? `SIGKILL of a random worker every ${seconds(settings.killIntervalMs)}`
        : 'no kills'),
  );

  const stopKilling = new AbortController();
  deadline.addEventListener('abort', () => stopKilling.abort(), { once: true });
  const killing = killLoop(service, settings, state, stopKilling.signal);
  const progress = setInterval(() => {
    const counts = logCounts(service.logs);
    out(
      `${stamp(startedAt)} accepted ${state.accepted.size}/${settings.jobs}, completed (log) ${counts.completed.size}, ` +
        `kills ${state.kills.length}, refused ${[...state.refusals.values()].reduce((a, b) => a + b, 0)}, network errors ${state.networkErrors}` +
        (state.drainStatus !== undefined ? `; ${state.drainStatus}` : ''),
    );
  }, PROGRESS_INTERVAL_MS);

  try {
    await enqueueAll(service, settings, state, deadline);
    state.enqueueFinishedAt = Date.now();
    out(
      `${stamp(startedAt)} enqueue finished: ${state.accepted.size} accepted; kills go on for ${seconds(settings.killTailMs)}`,
    );
    await sleep(settings.killTailMs, undefined, { signal: deadline }).catch(() => undefined);
    stopKilling.abort();
    await killing;
    out(
      `${stamp(startedAt)} kills stopped after ${state.kills.length}; waiting for the jobs to finish (at most ${seconds(settings.drainTimeoutMs)})`,
    );

    // Drain: every accepted job finished in Redis, nothing left in any queue, counters at 0.
    const drainDeadline = Date.now() + settings.drainTimeoutMs;
    let last: { finished: number; unfinished: number; totals?: WorkersResponse['totals'] } = {
      finished: 0,
      unfinished: -1,
    };
    for (;;) {
      if (deadline.aborted) break;
      try {
        const view = await readFinished(redis.client, service.prefix, workerIds);
        const finished = [...state.accepted.keys()].filter((jobId) => view.finished.has(jobId)).length;
        const { totals } = await service.workers();
        last = { finished, unfinished: view.unfinished, totals };
        const jobsDone = finished === state.accepted.size && view.unfinished === 0;
        if (jobsDone && state.jobsDoneAt === undefined) {
          state.jobsDoneAt = Date.now();
          const left = await describeReservations(redis.client, service.prefix, 10);
          out(
            `${stamp(startedAt)} every accepted job is finished; ${left.length === 0 ? 'no reservation is left in the ledger' : 'reservations still in the ledger (first 10):'}`,
          );
          for (const line of left) out(`             ${line}`);
        }
        state.drainStatus =
          `finished in Redis ${finished}/${state.accepted.size}, unfinished in queues ${view.unfinished}, ` +
          `counters active ${totals.active} queued ${totals.queued}, alive ${totals.alive}/${settings.workers}, ` +
          `reservations ${await reservationsLeft(redis.client, service.prefix)}`;
        if (jobsDone && totals.active === 0 && totals.queued === 0 && totals.alive === settings.workers) {
          state.drainedAt = Date.now();
          break;
        }
      } catch {
        // A read can fail while the cluster settles; the deadline bounds the retries.
      }
      if (Date.now() > drainDeadline) break;
      await sleep(DRAIN_POLL_MS, undefined, { signal: deadline }).catch(() => undefined);
    }
    if (state.drainedAt === undefined) {
      out(
        `${stamp(startedAt)} NOT drained: ${last.finished}/${state.accepted.size} accepted jobs finished, ${last.unfinished} jobs unfinished in Redis, ` +
          `counters ${JSON.stringify(last.totals ?? null)}`,
      );
    } else {
      out(`${stamp(startedAt)} drained`);
    }
  } finally {
    clearInterval(progress);
    stopKilling.abort();
    await killing;
  }

  // Final figures. The reads below are bounded by the deadline too (the caller races it).
  const counts = logCounts(service.logs);
  const view = await readFinished(redis.client, service.prefix, workerIds);
  const acceptedIds = [...state.accepted.keys()];
  const attemptsStarted = await readAttemptsStarted(redis.client, service.prefix, acceptedIds);
  const workersView = await service.workers();
  const reservations = await reservationsLeft(redis.client, service.prefix);
  const api = await apiSample(
    service,
    acceptedIds.filter((jobId) => view.finished.get(jobId) === 'completed'),
    settings.apiSample,
    deadline,
  );

  const completedIds = acceptedIds.filter((jobId) => view.finished.get(jobId) === 'completed');
  const failedIds = acceptedIds.filter((jobId) => view.finished.get(jobId) === 'failed');
  const lostIds = acceptedIds.filter((jobId) => !view.finished.has(jobId));
  const unacknowledged = [...view.finished.keys()].filter((jobId) => !state.accepted.has(jobId));
  const unacknowledgedFailed = unacknowledged.filter((jobId) => view.finished.get(jobId) === 'failed').length;

  const rerunStats = (starts: ReadonlyMap<string, number>) => {
    let jobs = 0;
    let extra = 0;
    let most = 0;
    let never = 0;
    for (const jobId of completedIds) {
      const count = starts.get(jobId) ?? 0;
      if (count === 0) never += 1;
      if (count > 1) {
        jobs += 1;
        extra += count - 1;
      }
      most = Math.max(most, count);
    }
    return { jobs, extra, most, never };
  };
  const byLog = rerunStats(counts.started);
  const byBull = rerunStats(attemptsStarted);
  const completedTwice = [...counts.completed.entries()].filter(([, count]) => count > 1);
  const completedNoLog = completedIds.filter((jobId) => !counts.completed.has(jobId)).length;
  const restartsByWorker = new Map<string, number>();
  for (const kill of state.kills) restartsByWorker.set(kill.workerId, (restartsByWorker.get(kill.workerId) ?? 0) + 1);

  const end = Date.now();
  const refused = [...state.refusals.entries()].map(([status, count]) => `${status}×${count}`).join(', ') || 'none';
  const { totals } = workersView;
  out();
  out('================ soak report ================');
  out(`jobs requested            ${settings.jobs}`);
  out(`jobs accepted (202)       ${state.accepted.size}`);
  out(`  given up after ${settings.enqueueTries} tries  ${state.givenUp}`);
  out(
    `  jobs that needed a retry ${state.retriedJobs}  (non-202 answers: ${refused}; requests with no answer: ${state.networkErrors})`,
  );
  out(`completed                 ${completedIds.length}`);
  out(
    `failed                    ${failedIds.length}${failedIds.length > 0 ? `  e.g. ${failedIds.slice(0, 5).join(', ')}` : ''}`,
  );
  out(
    `lost (accepted, not finished) ${lostIds.length}${lostIds.length > 0 ? `  e.g. ${lostIds.slice(0, 5).join(', ')}` : ''}`,
  );
  out(
    `completed more than once (log) ${completedTwice.length}${
      completedTwice.length > 0
        ? `  e.g. ${completedTwice
            .slice(0, 5)
            .map(([id, n]) => `${id}×${n}`)
            .join(', ')}`
        : ''
    }`,
  );
  out(`re-ran (at-least-once), from 'job started' log lines:`);
  out(`  jobs started more than once ${byLog.jobs}, extra runs ${byLog.extra}, most starts of one job ${byLog.most}`);
  out(`re-ran, from BullMQ's start counter (ats):`);
  out(
    `  jobs started more than once ${byBull.jobs}, extra runs ${byBull.extra}, most starts of one job ${byBull.most}`,
  );
  const enqueuedUnanswered = [...counts.enqueued].filter((jobId) => !state.accepted.has(jobId)).length;
  out(
    `unacknowledged jobs (in Redis, 202 lost to a kill) ${unacknowledged.length} (${unacknowledged.length - unacknowledgedFailed} completed, ` +
      `${unacknowledgedFailed} failed; ${enqueuedUnanswered} with a 'task enqueued' line)`,
  );
  out(
    `kills (SIGKILL)           ${state.kills.length}  by worker: ${[...restartsByWorker.entries()].map(([id, n]) => `${id}×${n}`).join(', ') || 'none'}`,
  );
  out(
    `  primary saw deaths      ${counts.restarts}; jobs requeued at restart ${counts.orphansRequeued}; kill rounds skipped on error ${state.killErrors}`,
  );
  out(`attempt failures (log)    ${counts.attemptFailures} retried, ${counts.finalFailures} final`);
  out(
    `ledger corrections (log)  ${counts.ledgerRequeued} requeued, ${counts.ledgerReleased} reservations released by the reconciler`,
  );
  out(
    `log lines                 ${service.logs.length} (${counts.unparsed} unparsed; ${completedNoLog} completed jobs without a 'job completed' line)`,
  );
  out(
    `API sample GET /jobs/:id  ${api.checked} checked, ${api.mismatches.length} not 'completed'${api.mismatches.length > 0 ? `: ${api.mismatches.slice(0, 5).join('; ')}` : ''}`,
  );
  out(
    `final counters            active ${totals.active}, queued ${totals.queued}, alive ${totals.alive}/${totals.workers}, capacity ${totals.capacity}; reservations in ledger ${reservations}; unfinished in queues ${view.unfinished}`,
  );
  out(
    `elapsed                   ${seconds(end - startedAt)} total` +
      (state.enqueueFinishedAt !== undefined ? `; enqueue ${seconds(state.enqueueFinishedAt - startedAt)}` : '') +
      (state.jobsDoneAt !== undefined
        ? `; every job finished at ${seconds(state.jobsDoneAt - startedAt)}`
        : '; jobs never all finished') +
      (state.drainedAt !== undefined
        ? `; counters 0 at ${seconds(state.drainedAt - startedAt)}`
        : '; counters never 0'),
  );

  const problems: string[] = [];
  if (deadline.aborted) problems.push('hard deadline reached');
  if (state.drainedAt === undefined) problems.push('did not drain in time');
  if (lostIds.length > 0) problems.push(`${lostIds.length} lost`);
  if (failedIds.length > 0 || unacknowledgedFailed > 0)
    problems.push(`${failedIds.length + unacknowledgedFailed} failed`);
  if (completedTwice.length > 0) problems.push(`${completedTwice.length} completed more than once`);
  if (totals.active !== 0 || totals.queued !== 0)
    problems.push(`counters not 0 (active ${totals.active}, queued ${totals.queued})`);
  if (reservations !== 0) problems.push(`${reservations} reservations left in the ledger`);
  if (view.unfinished !== 0) problems.push(`${view.unfinished} jobs unfinished in the queues`);
  if (api.mismatches.length > 0) problems.push(`${api.mismatches.length} API answers disagree with Redis`);
  if (state.accepted.size === 0) problems.push('nothing was accepted');
  out(problems.length === 0 ? 'RESULT: PASS' : `RESULT: FAIL — ${problems.join('; ')}`);
  out('=============================================');
  if (deadline.aborted) return EXIT_DEADLINE;
  return problems.length === 0 ? EXIT_PASS : EXIT_CHECK_FAILED;
}

async function main(): Promise<number> {
  let settings: Settings;
  try {
    settings = readSettings(process.argv.slice(2), process.env);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_ERROR;
  }
  const startedAt = Date.now();
  const state: RunState = {
    startedAt,
    accepted: new Map(),
    refusals: new Map(),
    networkErrors: 0,
    givenUp: 0,
    retriedJobs: 0,
    kills: [],
    killErrors: 0,
    enqueueFinishedAt: undefined,
    jobsDoneAt: undefined,
    drainedAt: undefined,
    drainStatus: undefined,
  };
  const deadline = new AbortController();
  // Every enqueue runner may be sleeping on it between tries.
  setMaxListeners(settings.inFlight + 20, deadline.signal);
  const resources: { redis?: TestRedis; service?: Service } = {};

  // Last resort: whatever hangs, the process ends.
  const forcedExit = setTimeout(() => {
    process.stderr.write(
      `soak: clean-up did not finish ${seconds(CLEANUP_ALLOWANCE_MS)} after the deadline; exiting\n`,
    );
    try {
      resources.service?.child.kill('SIGKILL');
    } catch {
      // already gone
    }
    process.exit(EXIT_DEADLINE);
  }, settings.deadlineMs + CLEANUP_ALLOWANCE_MS);
  forcedExit.unref();

  const deadlineReached = new Promise<number>((resolve) => {
    const timer = setTimeout(() => {
      out(
        `${stamp(startedAt)} hard deadline of ${seconds(settings.deadlineMs)} reached: aborting with ${state.accepted.size} accepted, ` +
          `${state.kills.length} kills, drained: ${state.drainedAt !== undefined}`,
      );
      deadline.abort();
      resolve(EXIT_DEADLINE);
    }, settings.deadlineMs);
    timer.unref();
  });
  const interrupted = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      out(`${stamp(startedAt)} ${signal}: aborting`);
      deadline.abort();
      resolve(EXIT_ERROR);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });

  const run = soak(settings, state, deadline.signal, resources).catch((error: unknown) => {
    // After an abort the service is being torn down under the soak: its errors say nothing new.
    if (deadline.signal.aborted) return EXIT_DEADLINE;
    process.stderr.write(`soak failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return EXIT_ERROR;
  });
  let code: number;
  try {
    code = await Promise.race([run, deadlineReached, interrupted]);
  } finally {
    deadline.abort();
    if (resources.service) {
      const exitCode = await resources.service.stop('SIGTERM', SERVICE_STOP_TIMEOUT_MS).catch(() => null);
      out(`service stopped (exit code ${String(exitCode)})`);
    }
    if (resources.redis) {
      await resources.redis.stop().catch(() => undefined);
      out('redis-server stopped');
    }
  }
  return code;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`soak failed: ${String(error)}\n`);
    process.exit(EXIT_ERROR);
  },
);
