/**
 * The OpenAPI document against the real service: every row of CASES sends a real request to the
 * in-process app (real Redis, two worker ids made live, jobs completed and failed by a real BullMQ
 * worker) through Stoplight Prism in proxy mode, which checks the answer (status, headers, body) and
 * the request against the document the app serves, and reports in `sl-violations`. A row passes when
 * Prism matched it to an operation, found nothing wrong with the answer, and found the request wrong
 * exactly when the row breaks the document on purpose.
 *
 * The few answers Prism cannot carry or check (a body that is not JSON, a method or path the document
 * has no operation for) are sent straight to the app and checked with the zod schemas the document's
 * components are generated from; each such row says why.
 *
 * Rows for routes the app does not take yet are skipped with a TODO, so that the table can hold them
 * before they land: the app is asked with OPTIONS whether it takes the route.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Worker } from 'bullmq';
import { pino } from 'pino';
import type { z } from 'zod';
import { loadConfig } from '../../src/config/config.js';
import { bodyHash, idempotencyRecordKey } from '../../src/idempotency/store.js';
import { createErrorDocs, errorBodySchema } from '../../src/http/openapi/errors.js';
import { createAnswerSchemas } from '../../src/http/openapi/schemas.js';
import { queueNameFor } from '../../src/contracts/names.js';
import type { StartupWait } from '../../src/errors.js';
import { startApp, type StartedApp } from '../support/in-process-app.js';
import { joinWorkers } from '../support/ledger.js';
import { ROUTE_NOT_FOUND, startPrism, violationsOf, type PrismProxy, type Violation } from '../support/prism.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { waitFor } from '../support/wait.js';

const KEY = 'openapi-conformance-key-0123456789';
const config = loadConfig({ QUEUE_PREFIX: 'oas' });
const WORKERS = ['oas-0', 'oas-1'];
/** Small, so that one batch can overflow it; far above what the other rows enqueue. */
const MAX_BACKLOG = 40;
const UNKNOWN_JOB = 'oas-0~AAAAAAAAAAAAAAAAAAAAAA';
const BUSY_KEY = 'oas-busy';
const BUSY_TASK = { jobName: 'busy', data: { n: 1 } };
/** A job name with no handler file that the app's dummy is not set to run (DUMMY_JOB_NAMES). */
const NOBODY_RUNS = 'nobody-runs-this';
/** The fixtures' job names: the rows' own are found in their bodies. */
const FIXTURE_JOB_NAMES = ['done', 'broken', 'parked'];

/** Jobs made before the rows run, in the states the rows need. */
interface Fixtures {
  readonly waiting: string;
  readonly toCancel: string;
  readonly completed: string;
  readonly failed: string;
}

interface Case {
  readonly name: string;
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE' | 'OPTIONS';
  readonly path: string | ((jobs: Fixtures) => string);
  /** The API key as Bearer unless said otherwise. */
  readonly auth?: 'none';
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent as JSON; a string is sent as it is. */
  readonly body?: unknown;
  readonly status: number;
  /** The error code the answer must carry. */
  readonly code?: string;
  /** The request breaks the document on purpose: Prism must say so (and the service refuses it). */
  readonly badRequest?: true;
  /** Sent straight to the app, and checked with `schema`: Prism cannot carry or check it, for `reason`. */
  readonly direct?: { readonly reason: string; readonly schema: z.ZodType; readonly headers?: readonly string[] };
  /** The route the row needs; it is skipped while the app does not take it (work in progress). */
  readonly needs?: { readonly method: string; readonly path: string };
  /** The feature the row needs, checked in the document; it is skipped while it is not there. */
  readonly needsOption?: string;
  readonly setup?: () => Promise<void> | void;
  readonly teardown?: () => Promise<void> | void;
  /** More checks of the answer. */
  readonly check?: (answer: { headers: Headers; body: unknown }) => void;
}

/** For test names only: the fixtures are made in `before`, after the names are. */
const placeholderJobs: Fixtures = {
  waiting: '{waiting}',
  toCancel: '{toCancel}',
  completed: '{completed}',
  failed: '{failed}',
};

let redis: TestRedis;
let app: StartedApp;
let prism: PrismProxy;
let documentDir: string;
let document: { components: { schemas: Record<string, { properties?: Record<string, unknown> }> } };
let healthy = true;
/** What the app says it waits for, as a process that is starting; ready otherwise. */
let waitingFor: StartupWait | undefined;
const fixtures: { -readonly [K in keyof Fixtures]?: string } = {};

const errors = createErrorDocs({ bodyLimitBytes: config.bodyLimitBytes });
const answers = createAnswerSchemas();
const task = (jobName: string, data: Record<string, unknown> = {}, options?: Record<string, unknown>) => ({
  jobName,
  data,
  ...(options === undefined ? {} : { options }),
});

const CASES: readonly Case[] = [
  // POST /enqueue-task
  {
    name: 'enqueue a task',
    method: 'POST',
    path: '/enqueue-task',
    body: task('resize-image', { durationMs: 2000 }, { priority: 10, attempts: 5 }),
    status: 202,
  },
  {
    name: 'enqueue a task in a group',
    method: 'POST',
    path: '/enqueue-task',
    body: { ...task('resize-image', { durationMs: 0 }), group: 'tenant-a' },
    status: 202,
  },
  {
    name: 'a group that breaks the schema',
    method: 'POST',
    path: '/enqueue-task',
    body: { ...task('resize-image'), group: 'tenant/a' },
    status: 400,
    code: 'VALIDATION_FAILED',
    badRequest: true,
  },
  {
    name: 'enqueue with an Idempotency-Key',
    method: 'POST',
    path: '/enqueue-task',
    headers: { 'idempotency-key': 'oas-order-1' },
    body: task('send-receipt', { order: 1 }),
    status: 202,
  },
  {
    name: 'the same key and body again: replayed',
    method: 'POST',
    path: '/enqueue-task',
    headers: { 'idempotency-key': 'oas-order-1' },
    body: task('send-receipt', { order: 1 }),
    status: 200,
    check: ({ headers }) => assert.equal(headers.get('idempotent-replayed'), 'true'),
  },
  {
    name: 'the same key with another body',
    method: 'POST',
    path: '/enqueue-task',
    headers: { 'idempotency-key': 'oas-order-1' },
    body: task('send-receipt', { order: 2 }),
    status: 422,
    code: 'IDEMPOTENCY_KEY_REUSED',
  },
  {
    name: 'a key still held by another request',
    method: 'POST',
    path: '/enqueue-task',
    headers: { 'idempotency-key': BUSY_KEY },
    body: BUSY_TASK,
    status: 409,
    code: 'IDEMPOTENCY_KEY_IN_USE',
    // What a request that is still creating its job holds: a fresh claim of the key.
    setup: async () => {
      const [seconds, micros] = await redis.client.time();
      const at = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      const claim = { s: 'c', t: 'elsewhere', h: bodyHash(BUSY_TASK), at };
      await redis.client.set(idempotencyRecordKey(config.prefix, BUSY_KEY), JSON.stringify(claim), 'EX', 60);
    },
    check: ({ headers }) => assert.ok(Number(headers.get('retry-after')) >= 1),
  },
  {
    name: 'a malformed Idempotency-Key',
    method: 'POST',
    path: '/enqueue-task',
    headers: { 'idempotency-key': 'has space' },
    body: task('x'),
    status: 400,
    code: 'INVALID_IDEMPOTENCY_KEY',
    badRequest: true,
  },
  {
    name: 'a task that breaks the schema',
    method: 'POST',
    path: '/enqueue-task',
    body: task('-starts-with-a-dash'),
    status: 400,
    code: 'VALIDATION_FAILED',
    badRequest: true,
  },
  {
    name: 'no API key',
    method: 'POST',
    path: '/enqueue-task',
    auth: 'none',
    body: task('x'),
    status: 401,
    code: 'UNAUTHORIZED',
    badRequest: true,
    check: ({ headers }) => assert.equal(headers.get('www-authenticate'), 'Bearer'),
  },
  {
    name: 'a body that is not declared JSON',
    method: 'POST',
    path: '/enqueue-task',
    headers: { 'content-type': 'text/plain' },
    body: '{"jobName":"x"}',
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    badRequest: true,
  },
  {
    name: 'a body over BODY_LIMIT_BYTES',
    method: 'POST',
    path: '/enqueue-task',
    body: task('big', { pad: 'x'.repeat(150_000) }),
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    name: 'a body that is not JSON',
    method: 'POST',
    path: '/enqueue-task',
    body: '{"jobName": ',
    status: 400,
    code: 'MALFORMED_JSON',
    direct: {
      reason: 'Prism parses a JSON body itself, and never answers a request whose body it cannot parse',
      schema: errorBodySchema(errors.MALFORMED_JSON),
    },
  },
  {
    name: 'a body that does not inflate',
    method: 'POST',
    path: '/enqueue-task',
    headers: { 'content-encoding': 'gzip' },
    body: '{"jobName":"x"}',
    status: 400,
    code: 'BAD_REQUEST',
  },
  {
    name: 'a delayed task: routed when due',
    method: 'POST',
    path: '/enqueue-task',
    body: task('send-reminder', { user: 42 }, { delayMs: 60_000 }),
    status: 202,
    needsOption: 'delayMs',
    check: ({ body }) => assert.equal((body as { assignedWorker: unknown }).assignedWorker, null),
  },
  {
    name: 'a job name nothing here runs',
    method: 'POST',
    path: '/enqueue-task',
    body: task(NOBODY_RUNS),
    status: 422,
    code: 'UNKNOWN_JOB_NAME',
  },
  {
    name: 'enqueue a task with an expiry',
    method: 'POST',
    path: '/enqueue-task',
    body: task('resize-image', {}, { expiresAt: new Date(Date.now() + 3_600_000).toISOString() }),
    status: 202,
    needsOption: 'expiresAt',
  },
  {
    name: 'a delay that reaches its expiry',
    method: 'POST',
    path: '/enqueue-task',
    body: task('send-reminder', {}, { delayMs: 60_000, expiresInMs: 30_000 }),
    status: 422,
    code: 'INVALID_EXPIRY',
    needsOption: 'expiresInMs',
    check: ({ body }) =>
      assert.deepEqual(
        (body as { details: { path: string }[] }).details.map(({ path }) => path),
        ['options.delayMs'],
      ),
  },

  // POST /enqueue-tasks
  {
    name: 'enqueue a batch',
    method: 'POST',
    path: '/enqueue-tasks',
    body: { tasks: [task('resize-image', { durationMs: 500 }), task('send-receipt', { order: 1001 })] },
    status: 202,
  },
  {
    name: 'an empty batch',
    method: 'POST',
    path: '/enqueue-tasks',
    body: { tasks: [] },
    status: 400,
    code: 'VALIDATION_FAILED',
    badRequest: true,
  },
  {
    name: 'a batch with a job name nothing here runs',
    method: 'POST',
    path: '/enqueue-tasks',
    body: { tasks: [task('resize-image'), task(NOBODY_RUNS)] },
    status: 422,
    code: 'UNKNOWN_JOB_NAME',
    check: ({ body }) =>
      assert.deepEqual((body as { details: { unknownJobNames: unknown } }).details.unknownJobNames, [
        { path: 'tasks.1.jobName', jobName: NOBODY_RUNS },
      ]),
  },
  {
    name: 'a batch over MAX_BACKLOG',
    method: 'POST',
    path: '/enqueue-tasks',
    body: { tasks: Array.from({ length: MAX_BACKLOG + 1 }, (_, i) => task('flood', { i })) },
    status: 429,
    code: 'BACKLOG_FULL',
    check: ({ headers }) => assert.ok(Number(headers.get('retry-after')) >= 1),
  },

  // GET /jobs/{id}, its events
  { name: 'a waiting job', method: 'GET', path: (jobs) => `/jobs/${jobs.waiting}`, status: 200 },
  { name: 'a completed job', method: 'GET', path: (jobs) => `/jobs/${jobs.completed}`, status: 200 },
  { name: 'a failed job', method: 'GET', path: (jobs) => `/jobs/${jobs.failed}`, status: 200 },
  { name: 'an unknown job', method: 'GET', path: `/jobs/${UNKNOWN_JOB}`, status: 404, code: 'NOT_FOUND' },
  {
    name: 'a malformed path',
    method: 'GET',
    path: '/jobs/%zz',
    status: 400,
    code: 'MALFORMED_PATH',
    direct: {
      reason: 'Prism decodes the path itself, and drops the connection on percent-encoding that does not decode',
      schema: errorBodySchema(errors.MALFORMED_PATH),
    },
  },
  {
    name: 'the events of a completed job',
    method: 'GET',
    path: (jobs) => `/jobs/${jobs.completed}/events`,
    status: 200,
    check: ({ body }) => assert.match(String(body), /^event: state\n/),
  },
  { name: 'the events of an unknown job', method: 'GET', path: `/jobs/${UNKNOWN_JOB}/events`, status: 404 },

  // GET /jobs
  { name: 'list jobs', method: 'GET', path: '/jobs?limit=2', status: 200, needs: { method: 'GET', path: '/jobs' } },
  {
    name: 'list jobs by state',
    method: 'GET',
    path: '/jobs?state=completed',
    status: 200,
    needs: { method: 'GET', path: '/jobs' },
  },
  {
    name: 'list jobs by group',
    method: 'GET',
    path: '/jobs?group=default',
    status: 200,
    needs: { method: 'GET', path: '/jobs' },
  },
  {
    name: 'list jobs with a bad group',
    method: 'GET',
    path: '/jobs?group=a%20b',
    status: 400,
    code: 'VALIDATION_FAILED',
    badRequest: true,
    needs: { method: 'GET', path: '/jobs' },
  },
  {
    name: 'list jobs with a bad filter',
    method: 'GET',
    path: '/jobs?state=bogus',
    status: 400,
    code: 'VALIDATION_FAILED',
    badRequest: true,
    needs: { method: 'GET', path: '/jobs' },
  },

  // DELETE /jobs/{id}
  {
    name: 'cancel a waiting job',
    method: 'DELETE',
    path: (jobs) => `/jobs/${jobs.toCancel}`,
    status: 200,
    needs: { method: 'DELETE', path: '/jobs/x~y' },
  },
  {
    name: 'cancel a completed job',
    method: 'DELETE',
    path: (jobs) => `/jobs/${jobs.completed}`,
    status: 409,
    code: 'JOB_FINISHED',
    needs: { method: 'DELETE', path: '/jobs/x~y' },
  },
  {
    name: 'cancel an unknown job',
    method: 'DELETE',
    path: `/jobs/${UNKNOWN_JOB}`,
    status: 404,
    code: 'NOT_FOUND',
    needs: { method: 'DELETE', path: '/jobs/x~y' },
  },

  // POST /jobs/{id}/retry
  {
    name: 'retry a failed job',
    method: 'POST',
    path: (jobs) => `/jobs/${jobs.failed}/retry`,
    status: 202,
    needs: { method: 'POST', path: '/jobs/x~y/retry' },
  },
  {
    name: 'retry it again: the same new job',
    method: 'POST',
    path: (jobs) => `/jobs/${jobs.failed}/retry`,
    status: 200,
    needs: { method: 'POST', path: '/jobs/x~y/retry' },
  },
  {
    name: 'retry a waiting job',
    method: 'POST',
    path: (jobs) => `/jobs/${jobs.waiting}/retry`,
    status: 409,
    code: 'JOB_NOT_RETRYABLE',
    needs: { method: 'POST', path: '/jobs/x~y/retry' },
  },
  {
    name: 'retry an unknown job',
    method: 'POST',
    path: `/jobs/${UNKNOWN_JOB}/retry`,
    status: 404,
    code: 'NOT_FOUND',
    needs: { method: 'POST', path: '/jobs/x~y/retry' },
  },

  // /groups
  { name: 'limit a group', method: 'PUT', path: '/groups/tenant-a', body: { concurrency: 4 }, status: 200 },
  {
    name: 'add a rate limit and pause it: merged with its concurrency',
    method: 'PUT',
    path: '/groups/tenant-a',
    body: { rateLimit: { max: 100, durationMs: 1000 }, paused: true },
    status: 200,
    check: ({ body }) => assert.equal((body as { concurrency: unknown }).concurrency, 4),
  },
  {
    name: 'remove a setting with null',
    method: 'PUT',
    path: '/groups/tenant-a',
    body: { concurrency: null, paused: null, weight: 3 },
    status: 200,
    check: ({ body }) => assert.equal((body as { concurrency: unknown }).concurrency, null),
  },
  { name: 'a group', method: 'GET', path: '/groups/tenant-a', status: 200 },
  { name: 'a group with no work and no settings', method: 'GET', path: '/groups/tenant-z', status: 200 },
  { name: 'list groups', method: 'GET', path: '/groups?limit=1', status: 200 },
  { name: 'list groups after a cursor', method: 'GET', path: '/groups?cursor=default', status: 200 },
  {
    name: 'list groups with a limit that is no number',
    method: 'GET',
    path: '/groups?limit=ten',
    status: 400,
    code: 'VALIDATION_FAILED',
    badRequest: true,
  },
  {
    name: 'a group name over 64 characters',
    method: 'GET',
    path: `/groups/${'g'.repeat(65)}`,
    status: 400,
    code: 'VALIDATION_FAILED',
    badRequest: true,
  },
  {
    name: 'a concurrency out of bounds',
    method: 'PUT',
    path: '/groups/tenant-a',
    body: { concurrency: 0 },
    status: 400,
    code: 'VALIDATION_FAILED',
    badRequest: true,
  },
  {
    name: 'a rate limit over 1000 starts per window',
    method: 'PUT',
    path: '/groups/tenant-a',
    body: { rateLimit: { max: 1001, durationMs: 1000 } },
    status: 400,
    code: 'VALIDATION_FAILED',
    badRequest: true,
  },
  {
    name: 'an unknown setting',
    method: 'PUT',
    path: '/groups/tenant-a',
    body: { priority: 5 },
    status: 400,
    code: 'VALIDATION_FAILED',
    badRequest: true,
  },
  {
    name: 'settings that are not declared JSON',
    method: 'PUT',
    path: '/groups/tenant-a',
    headers: { 'content-type': 'text/plain' },
    body: '{"concurrency":4}',
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    badRequest: true,
  },
  {
    name: 'settings without the key',
    method: 'PUT',
    path: '/groups/tenant-a',
    auth: 'none',
    body: { concurrency: 4 },
    status: 401,
    code: 'UNAUTHORIZED',
    badRequest: true,
  },
  { name: "drop a group's settings", method: 'DELETE', path: '/groups/tenant-a', status: 200 },

  // /schedules
  {
    name: 'create a schedule',
    method: 'PUT',
    path: '/schedules/nightly-report',
    body: { cron: '0 3 * * *', tz: 'Europe/Berlin', jobName: 'videoProcessing', data: { videoId: 'abc123' } },
    status: 201,
  },
  {
    name: 'replace a schedule',
    method: 'PUT',
    path: '/schedules/nightly-report',
    body: { everyMs: 3_600_000, jobName: 'videoProcessing', options: { expiresInMs: 60_000 }, overlap: 'skip' },
    status: 200,
    check: ({ body }) => assert.equal((body as { everyMs: unknown }).everyMs, 3_600_000),
  },
  { name: 'a schedule', method: 'GET', path: '/schedules/nightly-report', status: 200 },
  { name: 'list schedules', method: 'GET', path: '/schedules?limit=1', status: 200 },
  { name: 'list schedules after a cursor', method: 'GET', path: '/schedules?cursor=a', status: 200 },
  { name: 'the jobs of a schedule', method: 'GET', path: '/jobs?schedule=nightly-report', status: 200 },
  {
    name: 'a cron expression that does not parse',
    method: 'PUT',
    path: '/schedules/nightly-report',
    body: { cron: '61 * * * *', jobName: 'videoProcessing' },
    status: 422,
    code: 'INVALID_SCHEDULE',
  },
  {
    name: 'a schedule of an unknown shape',
    method: 'PUT',
    path: '/schedules/nightly-report',
    body: { everyMs: 60_000, jobName: 'videoProcessing', when: 'often' },
    status: 400,
    code: 'VALIDATION_FAILED',
    badRequest: true,
  },
  { name: 'delete a schedule', method: 'DELETE', path: '/schedules/nightly-report', status: 204 },
  {
    name: 'a schedule that does not exist',
    method: 'GET',
    path: '/schedules/nightly-report',
    status: 404,
    code: 'NOT_FOUND',
  },

  // The cluster
  { name: 'the workers', method: 'GET', path: '/workers', status: 200 },
  { name: 'health, open without the key', method: 'GET', path: '/healthz', auth: 'none', status: 200 },
  {
    name: 'health when the consumer is down',
    method: 'GET',
    path: '/healthz',
    auth: 'none',
    status: 503,
    setup: () => {
      healthy = false;
    },
    teardown: () => {
      healthy = true;
    },
  },
  { name: 'liveness, open without the key', method: 'GET', path: '/livez', auth: 'none', status: 200 },
  {
    name: 'health while the process waits for Redis',
    method: 'GET',
    path: '/healthz',
    auth: 'none',
    status: 503,
    setup: () => {
      waitingFor = 'redis';
    },
    teardown: () => {
      waitingFor = undefined;
    },
  },
  {
    name: 'an enqueue while the process waits for Redis',
    method: 'POST',
    path: '/enqueue-task',
    body: task('too-early'),
    status: 503,
    code: 'NOT_READY',
    setup: () => {
      waitingFor = 'redis';
    },
    teardown: () => {
      waitingFor = undefined;
    },
  },
  { name: 'the metrics', method: 'GET', path: '/metrics', status: 200 },
  {
    name: 'the metrics without the key',
    method: 'GET',
    path: '/metrics',
    auth: 'none',
    status: 401,
    code: 'UNAUTHORIZED',
    badRequest: true,
  },

  // The documentation
  { name: 'this document', method: 'GET', path: '/openapi.json', status: 200 },
  { name: 'the docs page', method: 'GET', path: '/docs', status: 200 },
  {
    name: 'the queue dashboard',
    method: 'GET',
    path: '/admin/queues',
    status: 200,
    needs: { method: 'GET', path: '/admin/queues' },
  },

  // What no operation describes: any path, any method
  {
    name: 'a method a known path does not take',
    method: 'DELETE',
    path: '/workers',
    status: 405,
    code: 'METHOD_NOT_ALLOWED',
    direct: {
      reason: 'the document has no operation for a method a path does not take (components.responses.MethodNotAllowed)',
      schema: errorBodySchema(errors.METHOD_NOT_ALLOWED),
      headers: ['allow'],
    },
  },
  {
    name: 'a path no route serves',
    method: 'GET',
    path: '/no-such-route',
    status: 404,
    code: 'NOT_FOUND',
    direct: {
      reason: 'the document has no operation for a path no route serves (components.responses.UnknownRoute)',
      schema: errorBodySchema(errors.NOT_FOUND),
    },
  },
  {
    name: 'OPTIONS on a known path',
    method: 'OPTIONS',
    path: '/workers',
    status: 200,
    direct: {
      reason: 'OPTIONS is described once for every path (components.responses.Options), not per operation',
      schema: answers.Allowed,
      headers: ['allow'],
    },
  },
];

async function send(
  base: string,
  row: Case,
  path: string,
): Promise<{ status: number; headers: Headers; text: string }> {
  const body = row.body === undefined ? undefined : typeof row.body === 'string' ? row.body : JSON.stringify(row.body);
  const response = await fetch(`${base}${path}`, {
    method: row.method,
    headers: {
      ...(row.auth === 'none' ? {} : { authorization: `Bearer ${KEY}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...row.headers,
    },
    body,
    signal: AbortSignal.timeout(30_000),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** The job names of a row's body: a task's, or a batch's. */
function jobNamesIn(body: unknown): string[] {
  if (typeof body !== 'object' || body === null) return [];
  const { jobName, tasks } = body as { jobName?: unknown; tasks?: unknown };
  return [
    ...(typeof jobName === 'string' ? [jobName] : []),
    ...(Array.isArray(tasks) ? tasks.flatMap((item) => jobNamesIn(item)) : []),
  ];
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Whether the app takes `method` on `path`, as its OPTIONS answer says. */
async function takes(method: string, path: string): Promise<boolean> {
  const response = await fetch(`${app.url}${path}`, {
    method: 'OPTIONS',
    headers: { authorization: `Bearer ${KEY}` },
    signal: AbortSignal.timeout(10_000),
  });
  if (response.status !== 200) return false;
  const allow = response.headers.get('allow') ?? '';
  return allow.split(/,\s*/).includes(method);
}

async function enqueue(body: unknown): Promise<string> {
  const response = await send(
    app.url,
    { name: 'fixture', method: 'POST', path: '/enqueue-task', body, status: 202 },
    '/enqueue-task',
  );
  assert.equal(response.status, 202, response.text);
  return (JSON.parse(response.text) as { jobId: string }).jobId;
}

async function stateOf(jobId: string): Promise<string> {
  const response = await send(app.url, { name: 'fixture', method: 'GET', path: '', status: 200 }, `/jobs/${jobId}`);
  return (JSON.parse(response.text) as { state: string }).state;
}

describe('the OpenAPI document against the live service', { timeout: 240_000 }, () => {
  before(async () => {
    redis = await startRedis();
    app = await startApp(redis.url, {
      prefix: config.prefix,
      logger: pino({ level: 'silent' }),
      apiKey: KEY,
      workerTtlMs: 60_000,
      maxBacklog: MAX_BACKLOG,
      adminUi: true,
      // Every name the rows and fixtures enqueue, and no other: the rows of unknown names are refused.
      dummyJobNames: [...FIXTURE_JOB_NAMES, ...CASES.flatMap((row) => jobNamesIn(row.body))].filter(
        (name) => name !== NOBODY_RUNS,
      ),
      health: () => Promise.resolve({ redis: true, consumer: healthy }),
      waitingFor: () => waitingFor,
    });
    await joinWorkers(redis.client, config.prefix, WORKERS, 4);

    // A job that completes and one that fails, run by a real BullMQ worker on each queue; the worker
    // is closed before the jobs that must stay waiting are enqueued.
    fixtures.completed = await enqueue(task('done', { n: 1 }));
    fixtures.failed = await enqueue(task('broken', { n: 2 }, { attempts: 1 }));
    const runners = WORKERS.map(
      (id) =>
        new Worker(
          queueNameFor(id),
          (job) =>
            job.name === 'broken' ? Promise.reject(new Error('broken on purpose')) : Promise.resolve({ ok: true }),
          { connection: { host: '127.0.0.1', port: redis.port }, prefix: config.prefix },
        ),
    );
    try {
      await waitFor(
        async () =>
          (await stateOf(fixtures.completed as string)) === 'completed' &&
          (await stateOf(fixtures.failed as string)) === 'failed',
        { timeoutMs: 30_000, what: 'the fixture jobs to complete and fail' },
      );
    } finally {
      await Promise.all(runners.map((runner) => runner.close()));
    }
    fixtures.waiting = await enqueue(task('parked', { n: 3 }, { expiresInMs: 86_400_000 }));
    fixtures.toCancel = await enqueue(task('parked', { n: 4 }));

    // The document as the app serves it, which is what clients get.
    const served = await send(app.url, { name: 'document', method: 'GET', path: '', status: 200 }, '/openapi.json');
    assert.equal(served.status, 200, served.text);
    document = JSON.parse(served.text) as typeof document;
    documentDir = mkdtempSync(join(tmpdir(), 'bullpen-openapi-'));
    const documentPath = join(documentDir, 'openapi.json');
    writeFileSync(documentPath, served.text);
    prism = await startPrism(documentPath, app.url);
  });

  after(async () => {
    await prism?.stop();
    await app?.close();
    await redis?.stop();
    if (documentDir !== undefined) rmSync(documentDir, { recursive: true, force: true });
  });

  for (const row of CASES) {
    test(`${row.method} ${typeof row.path === 'string' ? row.path : row.path(placeholderJobs)}: ${row.name} → ${row.status}`, async (t) => {
      if (row.needs !== undefined && !(await takes(row.needs.method, row.needs.path))) {
        t.skip(`TODO: ${row.needs.method} ${row.needs.path} is not served yet; this row runs once it is`);
        return;
      }
      const taskOptions = document.components.schemas.Task?.properties?.options as
        { properties?: Record<string, unknown> } | undefined;
      if (row.needsOption !== undefined && taskOptions?.properties?.[row.needsOption] === undefined) {
        t.skip(`TODO: options.${row.needsOption} is not accepted yet; this row runs once it is`);
        return;
      }
      const path = typeof row.path === 'string' ? row.path : row.path(fixtures as Fixtures);
      await row.setup?.();
      let answer: Awaited<ReturnType<typeof send>>;
      try {
        answer = await send(row.direct === undefined ? prism.url : app.url, row, path);
      } finally {
        await row.teardown?.();
      }
      const body = parse(answer.text);
      assert.equal(answer.status, row.status, answer.text.slice(0, 500));
      if (row.code !== undefined) assert.equal((body as { code?: unknown }).code, row.code);
      row.check?.({ headers: answer.headers, body });

      if (row.direct !== undefined) {
        const checked = row.direct.schema.safeParse(body);
        assert.ok(checked.success, `${row.direct.reason}; the answer does not match: ${checked.error?.message}`);
        for (const header of row.direct.headers ?? []) assert.ok(answer.headers.get(header), `${header} is missing`);
        return;
      }
      const violations = violationsOf(answer.headers);
      const explain = (list: readonly Violation[]) =>
        list.map((v) => `${v.severity} ${v.location.join('.')}: ${v.message}`).join('\n');
      assert.ok(
        !violations.some((violation) => violation.message === ROUTE_NOT_FOUND),
        `Prism found no operation for ${row.method} ${path}, so it checked nothing`,
      );
      const response = violations.filter((violation) => violation.location[0] === 'response');
      assert.deepEqual(
        response,
        [],
        `the answer breaks the document:\n${explain(response)}\n${answer.text.slice(0, 300)}`,
      );
      const request = violations.filter((violation) => violation.location[0] === 'request');
      if (row.badRequest) assert.notDeepEqual(request, [], 'the document should refuse this request too');
      else assert.deepEqual(request, [], `the request breaks the document:\n${explain(request)}`);
    });
  }
});
