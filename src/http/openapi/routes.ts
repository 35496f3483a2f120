/**
 * The routes of the API as the OpenAPI document describes them, one small declaration each (of the
 * form in `route-doc.ts`): a new route is one more entry here, or in `group-routes.ts` or
 * `schedule-routes.ts` for the groups' and the schedules' (and in `../route-table.ts`; a test checks
 * that the two agree). The
 * builder in `document.ts` adds what every route shares: the 401 of the API key, the 400 of a
 * malformed path, the 500, and the security each access level needs.
 */
import { DEFAULT_LIST_LIMIT } from '../../jobs/lister.js';
import { jobListQuerySchema } from '../routes/job-list.js';
import type { ErrorCode } from './errors.js';
import { GROUP_ROUTE_DOCS } from './group-routes.js';
import { SCHEDULE_ROUTE_DOCS } from './schedule-routes.js';
import type { RouteDoc } from './route-doc.js';

const JOB_ID = 'myhost-2~6f0cY2xk3QvB1sZp0mWq8A';

/** What any enqueue refuses for its body, its key and the cluster's state. */
const ENQUEUE_ERRORS: readonly ErrorCode[] = [
  'MALFORMED_JSON',
  'BAD_REQUEST',
  'VALIDATION_FAILED',
  'INVALID_IDEMPOTENCY_KEY',
  'IDEMPOTENCY_KEY_IN_USE',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'IDEMPOTENCY_KEY_REUSED',
  'UNKNOWN_JOB_NAME',
  'INVALID_EXPIRY',
  'BACKLOG_FULL',
  'NO_LIVE_WORKER',
  'QUEUE_UNAVAILABLE',
  'NOT_DURABLE',
  'NOT_READY',
];

const DELAYED_ANSWER = {
  summary: 'a delayed task: its worker is chosen when it is due',
  value: {
    message: 'Task enqueued successfully',
    jobId: 'scheduled~6f0cY2xk3QvB1sZp0mWq8A',
    jobName: 'send-reminder',
    jobData: { user: 42 },
    assignedWorker: null,
  },
};

export const ROUTE_DOCS: readonly RouteDoc[] = [
  {
    method: 'post',
    path: '/enqueue-task',
    operationId: 'enqueueTask',
    tag: 'Tasks',
    summary: 'Enqueue one task on the least-loaded live worker',
    description:
      'The worker is chosen and a slot reserved on it in one atomic Redis step. With an `Idempotency-Key`, a ' +
      'repeat of the same body answers 200 with the first answer and enqueues nothing. A `jobName` needs a ' +
      'handler file, or must be one the built-in dummy runs (`videoProcessing`, and those of `DUMMY_JOB_NAMES`): ' +
      'any other answers 422 `UNKNOWN_JOB_NAME`. A refused request enqueues nothing and reserves nothing. ' +
      'With `options.expiresInMs` (or `expiresAt`) a job not started by then never runs: it ends as `expired` ' +
      'and gives its slot back at once; a delay that reaches the expiry is refused (422 `INVALID_EXPIRY`).',
    parameters: ['IdempotencyKey', 'Traceparent'],
    body: {
      schema: 'Task',
      limit: 'body',
      example: {
        jobName: 'resize-image',
        group: 'tenant-a',
        data: { durationMs: 2000 },
        options: { priority: 10, attempts: 5, expiresInMs: 600_000 },
      },
    },
    answers: [
      {
        status: 202,
        description: 'Accepted; `Location` points at the job.',
        schema: 'EnqueueAnswer',
        headers: ['Location', 'traceparent'],
        examples: {
          routed: {
            summary: 'routed to the least-loaded worker',
            value: {
              message: 'Task enqueued successfully',
              jobId: JOB_ID,
              jobName: 'resize-image',
              jobData: { durationMs: 2000 },
              assignedWorker: 'myhost-2',
            },
          },
          delayed: DELAYED_ANSWER,
        },
      },
      {
        status: 200,
        description: 'A repeat of an earlier request with the same `Idempotency-Key` and body: its answer again.',
        schema: 'EnqueueAnswer',
        headers: ['Location', 'Idempotent-Replayed'],
      },
    ],
    errors: ENQUEUE_ERRORS,
  },
  {
    method: 'post',
    path: '/enqueue-tasks',
    operationId: 'enqueueTasks',
    tag: 'Tasks',
    summary: 'Enqueue a batch of tasks, all or none',
    description:
      'Validated as a whole, placed least-loaded in one reservation call, and added in one Redis transaction. ' +
      'One bad item refuses the batch, its `details` naming the item (`tasks.5.jobName`), an unknown job name ' +
      'too (422 `UNKNOWN_JOB_NAME`). `MAX_BACKLOG` ' +
      'applies to the whole batch. An `Idempotency-Key` covers the whole batch.',
    parameters: ['IdempotencyKey', 'Traceparent'],
    body: {
      schema: 'BulkTasks',
      limit: 'bulk',
      example: {
        tasks: [
          { jobName: 'resize-image', data: { durationMs: 500 } },
          { jobName: 'send-receipt', data: { order: 1001 } },
        ],
      },
    },
    answers: [
      {
        status: 202,
        description: 'Every task accepted; the answers come in request order.',
        schema: 'BulkEnqueueAnswer',
      },
      {
        status: 200,
        description: 'A repeat of an earlier batch with the same `Idempotency-Key` and body: its whole answer again.',
        schema: 'BulkEnqueueAnswer',
        headers: ['Idempotent-Replayed'],
      },
    ],
    errors: ENQUEUE_ERRORS,
  },
  {
    method: 'get',
    path: '/jobs',
    operationId: 'listJobs',
    tag: 'Jobs',
    summary: 'List jobs, newest first, a page at a time',
    description: 'Filters combine. An unknown or repeated query parameter is refused.',
    query: {
      schema: jobListQuerySchema,
      descriptions: {
        state: 'Only jobs in this state.',
        worker: "Only jobs whose queue is this worker's now.",
        jobName: 'Only jobs of this name.',
        group: 'Only jobs of this tenant group (`default`: those enqueued without one).',
        schedule: 'Only jobs made by this schedule.',
        limit: `The most jobs on the page, an integer from 1 to 500; ${DEFAULT_LIST_LIMIT} when not given.`,
        cursor: 'The `nextCursor` of the page before.',
      },
    },
    answers: [{ status: 200, description: 'One page of jobs.', schema: 'JobPage' }],
    errors: ['VALIDATION_FAILED', 'QUEUE_UNAVAILABLE', 'NOT_READY'],
  },
  {
    method: 'get',
    path: '/jobs/{id}',
    operationId: 'getJob',
    tag: 'Jobs',
    summary: "A job's state, wherever in the cluster it runs",
    parameters: ['JobId'],
    answers: [{ status: 200, description: 'The job.', schema: 'JobView' }],
    errors: ['NOT_FOUND', 'QUEUE_UNAVAILABLE', 'NOT_READY'],
  },
  {
    method: 'delete',
    path: '/jobs/{id}',
    operationId: 'cancelJob',
    tag: 'Jobs',
    summary: 'Cancel a job that has not finished',
    description:
      'A waiting or delayed job never runs; a running one is stopped. It is then seen as `cancelled`. A job ' +
      'that completed, failed or expired answers 409 `JOB_FINISHED`.',
    parameters: ['JobId'],
    answers: [
      { status: 200, description: 'Cancelled (or it already was).', schema: 'CancelAnswer' },
      {
        status: 202,
        description: 'A running job whose stop has not been seen yet: it is stopped, and never runs again.',
        schema: 'CancelPending',
      },
    ],
    errors: ['NOT_FOUND', 'JOB_FINISHED', 'QUEUE_UNAVAILABLE', 'NOT_READY'],
  },
  {
    method: 'post',
    path: '/jobs/{id}/retry',
    operationId: 'retryJob',
    tag: 'Jobs',
    summary: 'Enqueue a failed, cancelled or expired job again, as a new job',
    description:
      'The new job has a new id and the same name, data and options but its expiry (it would have passed), and ' +
      'is routed like any enqueue; `retryOf` names the old job.',
    parameters: ['JobId'],
    answers: [
      { status: 202, description: 'The new job, accepted.', schema: 'RetryAnswer', headers: ['Location'] },
      {
        status: 200,
        description: "The same job retried again: the first retry's answer, and no new job.",
        schema: 'RetryAnswer',
        headers: ['Location', 'Idempotent-Replayed'],
      },
    ],
    errors: [
      'NOT_FOUND',
      'JOB_NOT_RETRYABLE',
      'UNKNOWN_JOB_NAME',
      'IDEMPOTENCY_KEY_IN_USE',
      'BACKLOG_FULL',
      'NO_LIVE_WORKER',
      'QUEUE_UNAVAILABLE',
      'NOT_DURABLE',
      'NOT_READY',
    ],
  },
  {
    method: 'get',
    path: '/jobs/{id}/events',
    operationId: 'jobEvents',
    tag: 'Jobs',
    summary: "A job's life as Server-Sent Events",
    description:
      '`state` when its state changes, `progress` when its saved progress changes, and a final `completed`, ' +
      "`failed`, `cancelled` or `expired` carrying the job as `GET /jobs/{id}` gives it; then the stream closes. Each names the job's `group`. A job that has already " +
      'ended gets its final event at once; a job removed by retention meanwhile ends the stream with `removed`. ' +
      'A comment line (`: heartbeat`) comes every 15 s. The server may end the stream first, and says why in a ' +
      'last event carrying `{ "jobId" }`: `shutdown` when the process stops, `reconnect` once the stream has been ' +
      'open `SSE_MAX_LIFETIME_MS`; open it again (any process may serve it). A process keeps at most ' +
      '`SSE_MAX_STREAMS` streams open.',
    parameters: ['JobId'],
    answers: [
      {
        status: 200,
        description: 'The event stream.',
        text: {
          mediaType: 'text/event-stream',
          example:
            `event: state\ndata: {"jobId":"${JOB_ID}","group":"default","state":"active"}\n\n` +
            `event: progress\ndata: {"jobId":"${JOB_ID}","group":"default","progress":40}\n\n` +
            `event: state\ndata: {"jobId":"${JOB_ID}","group":"default","state":"completed"}\n\n` +
            `event: completed\ndata: {"jobId":"${JOB_ID}","jobName":"resize-image","group":"default","state":"completed"}\n\n`,
        },
      },
    ],
    errors: ['NOT_FOUND', 'TOO_MANY_STREAMS', 'QUEUE_UNAVAILABLE', 'NOT_READY'],
  },
  ...GROUP_ROUTE_DOCS,
  ...SCHEDULE_ROUTE_DOCS,
  {
    method: 'get',
    path: '/workers',
    operationId: 'listWorkers',
    tag: 'Cluster',
    summary: 'Every registered worker of every host, with its load and lease',
    description:
      'A dead worker stays listed with `alive: false` until it is retired (`WORKER_RETIRE_MS` after its lease ' +
      'expired). `capacity` counts live workers only.',
    answers: [{ status: 200, description: 'The workers and their totals.', schema: 'Workers' }],
    errors: ['QUEUE_UNAVAILABLE', 'NOT_READY'],
  },
  {
    method: 'get',
    path: '/livez',
    operationId: 'liveness',
    tag: 'Cluster',
    summary: 'Whether this process is up: always 200 while it answers HTTP',
    description:
      'Liveness for an orchestrator: a process that waits for Redis is live (restarting it would not help), ' +
      'but not ready: see `/healthz`.',
    access: 'public',
    answers: [{ status: 200, description: 'The process is up.', schema: 'Live' }],
    errors: [],
  },
  {
    method: 'get',
    path: '/healthz',
    operationId: 'health',
    tag: 'Cluster',
    summary: 'Whether this process can serve: it reaches Redis and its consumer runs (readiness)',
    description:
      'A process listens as soon as it starts, before Redis answers: until it serves, this answers 503 ' +
      '`NOT_READY` saying what it waits for. Every 503 carries `error`, `code` and `Retry-After`.',
    access: 'public',
    answers: [
      { status: 200, description: 'Ready.', schema: 'Health' },
      {
        status: 503,
        description:
          'Still starting (`NOT_READY`), Redis is unreachable (`QUEUE_UNAVAILABLE`), or the consumer is not running (`CONSUMER_STOPPED`).',
        headers: ['Retry-After'],
        schema: 'HealthUnavailable',
      },
    ],
    errors: [],
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    tag: 'Cluster',
    summary: 'The whole cluster in the Prometheus text format',
    access: 'metrics',
    answers: [
      {
        status: 200,
        description: 'The exposition, whichever process takes the scrape.',
        text: {
          mediaType: 'text/plain',
          example:
            '# HELP bullpen_worker_active_jobs Jobs running on each worker\n# TYPE bullpen_worker_active_jobs gauge\n' +
            'bullpen_worker_active_jobs{worker="myhost-0"} 8\n',
        },
      },
    ],
    errors: ['METRICS_UNAVAILABLE', 'QUEUE_UNAVAILABLE', 'NOT_READY'],
  },
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'openapi',
    tag: 'Documentation',
    summary: 'This document',
    answers: [
      {
        status: 200,
        description: 'The OpenAPI 3.1 document of this deployment.',
        schema: 'OpenApiDocument',
      },
    ],
    errors: [],
  },
  {
    method: 'get',
    path: '/docs',
    operationId: 'docs',
    tag: 'Documentation',
    summary: 'This document as a readable page (Swagger UI, served locally)',
    description:
      'Its scripts and styles are served under `/docs/`, and the page reads this document from ' +
      '`/docs/openapi.json`, so that a browser given the key once (HTTP Basic) can load all of it.',
    access: 'browser',
    answers: [{ status: 200, description: 'The page.', text: { mediaType: 'text/html', example: '<!doctype html>…' } }],
    errors: [],
  },
  {
    method: 'get',
    path: '/admin/queues',
    operationId: 'queueDashboard',
    tag: 'Documentation',
    summary: 'The queue dashboard (bull-board), for people',
    description:
      'An HTML dashboard of every worker queue and its jobs, with the JSON API its page calls under ' +
      "`/admin/queues/`. It is not part of this API: its paths and answers are bull-board's own.",
    access: 'browser',
    answers: [
      {
        status: 200,
        description: 'The dashboard page.',
        text: { mediaType: 'text/html', example: '<!doctype html>…' },
      },
    ],
    errors: [],
  },
];
