/**
 * The bodies the API answers with, as zod schemas: the OpenAPI document is generated from them, so
 * they document what the routes send and are kept honest by the conformance test, which checks real
 * answers against the document. Request bodies are not here: the document takes those from
 * `../schemas.ts`, the very schemas the routes validate with.
 */
import { z } from 'zod';
import { STARTUP_WAITS } from '../../errors.js';
import { MISSED_TICK_POLICIES, OVERLAP_POLICIES } from '../../schedules/definition.js';
import { LISTED_STATES } from '../../jobs/lister.js';

/** Every state a job can be seen in (`GET /jobs/:id`'s `state`, and the `state` filter of `GET /jobs`). */
export const JOB_STATES = LISTED_STATES;

/** The most jobs one page of `GET /jobs` may hold, and how many it holds when `limit` is not given. */
export const LIST_LIMIT = { max: 500, default: 50 } as const;

/** A schedule that has run a while: `GET /schedules/{name}`'s example. */
export const SCHEDULE_EXAMPLE = {
  name: 'nightly-report',
  cron: '0 3 * * *',
  tz: 'Europe/Berlin',
  everyMs: null,
  jobName: 'videoProcessing',
  data: { videoId: 'abc123' },
  group: null,
  options: { attempts: 3 },
  startAt: null,
  endAt: null,
  limit: null,
  missedTicks: 'runOnce',
  overlap: 'skip',
  nextRunAt: '2026-12-08T02:00:00.000Z',
  lastRun: { tickAt: '2026-12-07T02:00:00.000Z', jobId: 'myhost-1~Qm9yZVRva2VuSGVyZQ' },
  runs: 12,
  skipped: 1,
  missed: 0,
  createdAt: '2026-11-24T09:30:00.000Z',
  updatedAt: '2026-11-24T09:30:00.000Z',
} as const;

/** A group held to 4 jobs at once while its flood waits its turn: `GET /groups/{group}`'s example. */
export const GROUP_EXAMPLE = {
  group: 'tenant-a',
  concurrency: 4,
  rateLimit: null,
  weight: null,
  paused: null,
  effectiveConcurrency: 4,
  waiting: 19_996,
  running: 4,
  inflight: 4,
} as const;

/** The answer bodies, built anew for each document so that no schema instance is shared between two. */
export function createAnswerSchemas() {
  const dateTime = () => z.string().meta({ format: 'date-time' });
  const count = () => z.int().min(0);

  const enqueueAnswer = z
    .object({
      message: z.string(),
      jobId: z.string().describe('Where to follow the job: `GET /jobs/{id}`.'),
      jobName: z.string(),
      jobData: z.record(z.string(), z.unknown()).describe("The task's `data` as accepted (`{}` when none was sent)."),
      assignedWorker: z
        .string()
        .nullable()
        .describe(
          'The worker chosen at enqueue, least-loaded; null for a delayed task, whose worker is chosen when it is ' +
            'due. A task that waits for its group turn (every worker busy) runs on the first worker with a free ' +
            'slot when its turn comes, which `GET /jobs/{id}` then shows.',
        ),
    })
    .meta({
      examples: [
        {
          message: 'Task enqueued successfully',
          jobId: 'myhost-2~6f0cY2xk3QvB1sZp0mWq8A',
          jobName: 'resize-image',
          jobData: { durationMs: 2000 },
          assignedWorker: 'myhost-2',
        },
      ],
    });

  const jobView = z
    .object({
      jobId: z.string(),
      jobName: z.string(),
      group: z.string().describe('Its tenant group; `default` for a task enqueued without one.'),
      state: z.enum(JOB_STATES),
      assignedWorker: z
        .string()
        .nullable()
        .describe('The worker whose queue holds the job now; null for a delayed job not yet routed.'),
      movedFrom: z.array(z.string()).describe('The workers the job moved away from, oldest first.'),
      data: z.record(z.string(), z.unknown()),
      progress: z
        .union([z.number(), z.record(z.string(), z.unknown())])
        .describe('The last progress the handler reported that has been saved (0 before any).'),
      result: z.unknown().describe("The handler's return value once completed; null before."),
      failedReason: z.string().nullable(),
      attemptsMade: count().describe('Finished attempts.'),
      attemptsStarted: count().describe('Starts, re-runs after a crash included.'),
      attempts: z.int().min(1),
      backoffMs: z.int().min(0).nullable().describe('The first retry delay; null without retries by back-off.'),
      timeoutMs: z.int().min(1).nullable().describe("Its `options.timeoutMs`; null under the service's limit."),
      expiresAt: dateTime()
        .nullable()
        .describe(
          'When it expires if it has not started by then (from `options.expiresInMs` or `expiresAt`); null ' +
            'without an expiry. An expired job is seen as `expired` and never runs.',
        ),
      priority: z.int().min(1).nullable().describe("The job's `options.priority`, or null."),
      schedule: z
        .object({ name: z.string(), tickAt: dateTime() })
        .nullable()
        .describe('The schedule that made the job and the tick it was made for; null for a job a client enqueued.'),
      timestamps: z.object({
        enqueuedAt: dateTime().nullable(),
        startedAt: dateTime().nullable(),
        finishedAt: dateTime().nullable(),
      }),
    })
    .meta({
      examples: [
        {
          jobId: 'myhost-2~6f0cY2xk3QvB1sZp0mWq8A',
          jobName: 'resize-image',
          group: 'tenant-a',
          state: 'completed',
          assignedWorker: 'myhost-2',
          movedFrom: [],
          data: { durationMs: 2000 },
          progress: 100,
          result: { jobName: 'resize-image', durationMs: 2000, elapsedMs: 2001, threadId: 3 },
          failedReason: null,
          attemptsMade: 1,
          attemptsStarted: 1,
          attempts: 3,
          backoffMs: 1000,
          timeoutMs: null,
          expiresAt: null,
          priority: null,
          schedule: null,
          timestamps: {
            enqueuedAt: '2026-11-28T10:00:00.000Z',
            startedAt: '2026-11-28T10:00:00.012Z',
            finishedAt: '2026-11-28T10:00:02.013Z',
          },
        },
      ],
    });

  const worker = z.object({
    id: z.string(),
    hostId: z.string(),
    pid: z.int(),
    alive: z.boolean(),
    active: z.int(),
    queued: z.int(),
    concurrency: z.int(),
    heartbeatAgeMs: z.number().nullable(),
    startedAt: dateTime().nullable(),
    lease: z
      .object({
        holderPid: z.int().nullable(),
        retiring: z.boolean(),
        expiresAt: dateTime(),
        expiresInMs: z.number(),
      })
      .nullable()
      .describe('Which process owns the worker id, and when its lease runs out; null when no lease is held.'),
  });

  const workers = z
    .object({
      workers: z.array(worker),
      totals: z.object({
        workers: count(),
        alive: count(),
        active: z.int(),
        queued: z.int(),
        capacity: count().describe('The concurrency of live workers only.'),
      }),
    })
    .meta({
      examples: [
        {
          workers: [
            {
              id: 'myhost-0',
              hostId: 'myhost',
              pid: 4242,
              alive: true,
              active: 8,
              queued: 3,
              concurrency: 8,
              heartbeatAgeMs: 312,
              startedAt: '2026-11-28T09:00:00.000Z',
              lease: { holderPid: 4242, retiring: false, expiresAt: '2026-11-28T10:00:04.688Z', expiresInMs: 4688 },
            },
          ],
          totals: { workers: 1, alive: 1, active: 8, queued: 3, capacity: 8 },
        },
      ],
    });

  const redisWhere = {
    redisMode: z
      .enum(['single', 'cluster', 'sentinel'])
      .optional()
      .describe('One Redis (`REDIS_URL`), a Redis Cluster, or a master found through Redis Sentinel.'),
    redisMaster: z
      .string()
      .optional()
      .describe('Through Redis Sentinel: `host:port` of the master this process reaches now.'),
  };
  const health = z
    .object({ status: z.literal('ok'), redis: z.boolean(), consumer: z.boolean(), ...redisWhere })
    .meta({ examples: [{ status: 'ok', redis: true, consumer: true, redisMode: 'single' }] });
  const healthUnavailable = z
    .object({
      status: z.literal('unavailable'),
      redis: z.boolean(),
      consumer: z.boolean(),
      ...redisWhere,
      error: z.string().describe('Why this process cannot serve, for people.'),
      code: z.enum(['NOT_READY', 'QUEUE_UNAVAILABLE', 'CONSUMER_STOPPED']),
      details: z
        .object({ waitingFor: z.enum(STARTUP_WAITS), retryAfterSeconds: z.int().min(0) })
        .optional()
        .describe('With `NOT_READY`: what the process still waits for.'),
    })
    .meta({
      examples: [
        {
          status: 'unavailable',
          redis: false,
          consumer: false,
          redisMode: 'single',
          error: 'This process is starting: waiting for Redis to answer; try again shortly',
          code: 'NOT_READY',
          details: { waitingFor: 'redis', retryAfterSeconds: 5 },
        },
      ],
    });

  const groupView = z
    .object({
      group: z.string(),
      concurrency: z.int().min(1).nullable().describe('Its own concurrency; null when not set.'),
      rateLimit: z
        .object({ max: z.int().min(1), durationMs: z.int().min(1) })
        .nullable()
        .describe('Its rate limit; null when not set.'),
      weight: z.int().min(1).nullable().describe('Its weight; null when not set (a weight of 1).'),
      paused: z.boolean().nullable().describe('Whether it is paused; null when not set (not paused).'),
      effectiveConcurrency: z
        .int()
        .min(1)
        .nullable()
        .describe('The concurrency that applies: its own, else `GROUP_CONCURRENCY`; null when neither limits it.'),
      waiting: count().describe('Jobs held for its turn (or while it is paused or at a limit).'),
      running: count().describe('Jobs running now, in the whole pool.'),
      inflight: count().describe('Jobs handed to a worker and not finished: queued there, or running.'),
    })
    .meta({ examples: [GROUP_EXAMPLE] });

  const scheduleView = z
    .object({
      name: z.string(),
      cron: z.string().nullable().describe('Its cron expression; null for an interval.'),
      tz: z.string().nullable().describe("The cron expression's time zone; null for an interval."),
      everyMs: z.int().min(1).nullable().describe('Its interval; null for a cron expression.'),
      jobName: z.string(),
      data: z.record(z.string(), z.unknown()),
      group: z.string().nullable().describe("Its jobs' tenant group; null: `default`."),
      options: z.record(z.string(), z.unknown()).describe("Its jobs' options, as `POST /enqueue-task` takes them."),
      startAt: dateTime().nullable(),
      endAt: dateTime().nullable(),
      limit: z.int().min(1).nullable().describe('The most jobs it makes; null: no limit.'),
      missedTicks: z.enum(MISSED_TICK_POLICIES),
      overlap: z.enum(OVERLAP_POLICIES),
      nextRunAt: dateTime().nullable().describe('Its next tick; null once it has ended (its `endAt` or `limit`).'),
      lastRun: z
        .object({ tickAt: dateTime(), jobId: z.string() })
        .nullable()
        .describe('The tick of the last job it made, and that job.'),
      runs: count().describe('Jobs made.'),
      skipped: count().describe('Ticks skipped while its previous job still waited or ran (`overlap: skip`).'),
      missed: count().describe('Ticks that fell while no process ran and made no job of their own.'),
      createdAt: dateTime(),
      updatedAt: dateTime(),
    })
    .meta({ examples: [SCHEDULE_EXAMPLE] });

  const cancelAnswer = (state: 'cancelled' | 'cancelling') =>
    z
      .object({ jobId: z.string(), state: z.literal(state) })
      .meta({ examples: [{ jobId: 'myhost-2~6f0cY2xk3QvB1sZp0mWq8A', state }] });

  return {
    EnqueueAnswer: enqueueAnswer,
    BulkEnqueueAnswer: z.object({ tasks: z.array(enqueueAnswer).describe('One answer per task, in request order.') }),
    RetryAnswer: enqueueAnswer.extend({ retryOf: z.string().describe('The id of the job this one retries.') }).meta({
      examples: [
        {
          message: 'Task enqueued successfully',
          jobId: 'myhost-1~Qm9yZVRva2VuSGVyZQ',
          jobName: 'resize-image',
          jobData: { durationMs: 2000 },
          assignedWorker: 'myhost-1',
          retryOf: 'myhost-2~6f0cY2xk3QvB1sZp0mWq8A',
        },
      ],
    }),
    JobView: jobView,
    JobPage: z
      .object({
        jobs: z.array(jobView),
        nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.'),
      })
      .meta({ examples: [{ jobs: [], nextCursor: null }] }),
    GroupView: groupView,
    GroupPage: z
      .object({
        groups: z.array(groupView).describe('Groups with work or settings, by name.'),
        nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.'),
      })
      .meta({ examples: [{ groups: [GROUP_EXAMPLE], nextCursor: null }] }),
    ScheduleView: scheduleView,
    SchedulePage: z
      .object({
        schedules: z.array(scheduleView).describe('Schedules, by name.'),
        nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page.'),
      })
      .meta({ examples: [{ schedules: [SCHEDULE_EXAMPLE], nextCursor: null }] }),
    CancelAnswer: cancelAnswer('cancelled'),
    CancelPending: cancelAnswer('cancelling'),
    Workers: workers,
    Live: z.object({ status: z.literal('ok') }).meta({ examples: [{ status: 'ok' }] }),
    Health: health,
    HealthUnavailable: healthUnavailable,
    /** `GET /openapi.json`: the shape every OpenAPI 3.1 document has, and more. */
    OpenApiDocument: z
      .looseObject({
        openapi: z.literal('3.1.0'),
        info: z.looseObject({ title: z.string(), version: z.string() }),
        paths: z.record(z.string(), z.unknown()),
        components: z.record(z.string(), z.unknown()),
      })
      .describe('An OpenAPI 3.1 document: https://spec.openapis.org/oas/v3.1.0'),
    /** The body of every OPTIONS answer. */
    Allowed: z.object({ allow: z.array(z.string()) }).meta({ examples: [{ allow: ['GET', 'HEAD', 'OPTIONS'] }] }),
  };
}

export type AnswerSchemas = ReturnType<typeof createAnswerSchemas>;
