/**
 * The `/schedules` routes (issue 23) as the OpenAPI document describes them: beside `routes.ts`, which
 * holds the others and places these among them.
 */
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from '../../jobs/lister.js';
import { scheduleListQuerySchema } from '../routes/schedules.js';
import type { ErrorCode } from './errors.js';
import type { RouteDoc } from './route-doc.js';

/** What every /schedules route answers for the state of the store. */
const STORE_ERRORS: readonly ErrorCode[] = ['QUEUE_UNAVAILABLE', 'NOT_READY'];

export const SCHEDULE_ROUTE_DOCS: readonly RouteDoc[] = [
  {
    method: 'get',
    path: '/schedules',
    operationId: 'listSchedules',
    tag: 'Schedules',
    summary: 'List the schedules, by name, a page at a time',
    description: 'An unknown or repeated query parameter is refused.',
    query: {
      schema: scheduleListQuerySchema,
      descriptions: {
        limit: `The most schedules on the page, an integer from 1 to ${MAX_LIST_LIMIT}; ${DEFAULT_LIST_LIMIT} when not given.`,
        cursor: 'The `nextCursor` of the page before: the page goes on with the names after it.',
      },
    },
    answers: [{ status: 200, description: 'One page of schedules.', schema: 'SchedulePage' }],
    errors: ['VALIDATION_FAILED', ...STORE_ERRORS],
  },
  {
    method: 'get',
    path: '/schedules/{name}',
    operationId: 'getSchedule',
    tag: 'Schedules',
    summary: 'A schedule, its next run time, its last job and its counts',
    parameters: ['ScheduleName'],
    answers: [{ status: 200, description: 'The schedule.', schema: 'ScheduleView' }],
    errors: ['VALIDATION_FAILED', 'NOT_FOUND', ...STORE_ERRORS],
  },
  {
    method: 'put',
    path: '/schedules/{name}',
    operationId: 'putSchedule',
    tag: 'Schedules',
    summary: 'Create or replace a schedule; its next tick follows the rule at once',
    description:
      'A rule (`cron`, in `tz`, or `everyMs`) and the task each tick makes, as `POST /enqueue-task` takes it. ' +
      'Every tick makes exactly one job, pool-wide, placed like any task; the job carries the schedule and ' +
      'its tick (`schedule` in `GET /jobs/{id}`). An interval ticks from `startAt`, or one interval after ' +
      'the PUT. A replace keeps the counts and the last job. A body of the wrong shape is answered 400, a ' +
      'rule or bounds that cannot be used 422 `INVALID_SCHEDULE`; either way nothing is stored.',
    parameters: ['ScheduleName'],
    body: {
      schema: 'Schedule',
      limit: 'body',
      example: { everyMs: 60000, jobName: 'videoProcessing', data: { videoId: 'abc123' } },
    },
    answers: [
      { status: 201, description: 'Created.', schema: 'ScheduleView', headers: ['Location'] },
      { status: 200, description: 'Replaced.', schema: 'ScheduleView', headers: ['Location'] },
    ],
    errors: [
      'MALFORMED_JSON',
      'BAD_REQUEST',
      'VALIDATION_FAILED',
      'INVALID_SCHEDULE',
      'UNKNOWN_JOB_NAME',
      'PAYLOAD_TOO_LARGE',
      'UNSUPPORTED_MEDIA_TYPE',
      ...STORE_ERRORS,
    ],
  },
  {
    method: 'delete',
    path: '/schedules/{name}',
    operationId: 'deleteSchedule',
    tag: 'Schedules',
    summary: 'Delete a schedule: no tick after this',
    description: 'The jobs it made are not touched.',
    parameters: ['ScheduleName'],
    answers: [{ status: 204, description: 'Deleted: no body.', empty: true }],
    errors: ['VALIDATION_FAILED', 'NOT_FOUND', ...STORE_ERRORS],
  },
];
