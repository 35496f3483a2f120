/**
 * The `/groups` routes (issue 22) as the OpenAPI document describes them: beside `routes.ts`, which
 * holds the others and places these among them.
 */
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from '../../jobs/lister.js';
import { groupListQuerySchema } from '../routes/groups.js';
import type { ErrorCode } from './errors.js';
import type { RouteDoc } from './route-doc.js';
import { GROUP_EXAMPLE } from './schemas.js';

/** What every /groups route answers for the state of the store. */
const STORE_ERRORS: readonly ErrorCode[] = ['QUEUE_UNAVAILABLE', 'NOT_READY'];

const VIEWS = {
  limited: { summary: 'tenant-a held to 4 at once while its flood waits its turn', value: GROUP_EXAMPLE },
  unknown: {
    summary: 'a group with no work and no settings',
    value: {
      group: 'tenant-z',
      concurrency: null,
      rateLimit: null,
      weight: null,
      paused: null,
      effectiveConcurrency: null,
      waiting: 0,
      running: 0,
      inflight: 0,
    },
  },
};

export const GROUP_ROUTE_DOCS: readonly RouteDoc[] = [
  {
    method: 'get',
    path: '/groups',
    operationId: 'listGroups',
    tag: 'Groups',
    summary: 'List the groups with work or settings, by name, a page at a time',
    description: 'An unknown or repeated query parameter is refused.',
    query: {
      schema: groupListQuerySchema,
      descriptions: {
        limit: `The most groups on the page, an integer from 1 to ${MAX_LIST_LIMIT}; ${DEFAULT_LIST_LIMIT} when not given.`,
        cursor: 'The `nextCursor` of the page before: the page goes on with the names after it.',
      },
    },
    answers: [{ status: 200, description: 'One page of groups.', schema: 'GroupPage' }],
    errors: ['VALIDATION_FAILED', ...STORE_ERRORS],
  },
  {
    method: 'get',
    path: '/groups/{group}',
    operationId: 'getGroup',
    tag: 'Groups',
    summary: "A group's settings and how many of its jobs wait and run",
    description:
      'Groups are not created: any valid name has a view, with zero counts and null settings until it has ' +
      'work or settings.',
    parameters: ['Group'],
    answers: [{ status: 200, description: 'The group.', schema: 'GroupView', examples: VIEWS }],
    errors: ['VALIDATION_FAILED', ...STORE_ERRORS],
  },
  {
    method: 'put',
    path: '/groups/{group}',
    operationId: 'setGroup',
    tag: 'Groups',
    summary: "Change a group's settings; every process applies them at once",
    description:
      "The fields sent are merged into the group's settings: a field not sent is kept, and `null` removes " +
      'it. A refused body changes nothing; `details` names each field at fault. Held jobs the new settings ' +
      'let start are handed to workers at once.',
    parameters: ['Group'],
    body: {
      schema: 'GroupSettings',
      limit: 'body',
      example: { concurrency: 4, rateLimit: { max: 100, durationMs: 1000 } },
    },
    answers: [{ status: 200, description: 'The group with its new settings.', schema: 'GroupView' }],
    errors: [
      'MALFORMED_JSON',
      'BAD_REQUEST',
      'VALIDATION_FAILED',
      'PAYLOAD_TOO_LARGE',
      'UNSUPPORTED_MEDIA_TYPE',
      ...STORE_ERRORS,
    ],
  },
  {
    method: 'delete',
    path: '/groups/{group}',
    operationId: 'resetGroup',
    tag: 'Groups',
    summary: "Drop a group's settings: it runs by the defaults again",
    description: 'Its jobs are not touched. Held jobs the defaults let start are handed to workers at once.',
    parameters: ['Group'],
    answers: [{ status: 200, description: 'The group, without settings.', schema: 'GroupView' }],
    errors: ['VALIDATION_FAILED', ...STORE_ERRORS],
  },
];
