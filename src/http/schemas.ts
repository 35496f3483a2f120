/**
 * What a client may send. Built from the config because one bound (the longest duration a task may
 * ask for) is a setting.
 */
import { z } from 'zod';
import { expiryOf, type ClientOverrides } from '../contracts/dispatch.js';

export const JOB_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;
export const JOB_NAME_MAX_LENGTH = 128;

/** A tenant group (issue 22): `default` when a task has none, and a client may name it too. */
export const GROUP_PATTERN = /^[A-Za-z0-9_.:-]+$/;
export const GROUP_MAX_LENGTH = 64;

export function groupSchema() {
  return z.string().min(1).max(GROUP_MAX_LENGTH).regex(GROUP_PATTERN, 'must contain only letters, digits and _ . : -');
}

/** A schedule's name (issue 23): it is part of the path of its routes and of the jobs it makes. */
export const SCHEDULE_NAME_PATTERN = /^[A-Za-z0-9_.:-]+$/;
export const SCHEDULE_NAME_MAX_LENGTH = 128;

export function scheduleNameSchema() {
  return z
    .string()
    .min(1)
    .max(SCHEDULE_NAME_MAX_LENGTH)
    .regex(SCHEDULE_NAME_PATTERN, 'must contain only letters, digits and _ . : -');
}

/** Keys that would reach an object's prototype if a handler ever merged `data` into another object. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Deeper data is refused: it serves no real task and would make every later copy recursive work. */
export const MAX_DATA_DEPTH = 32;

interface BodyProblem {
  readonly path: (string | number)[];
  readonly message: string;
}

/**
 * Walks the parsed body without recursion, so no nesting can overflow the stack. `above` is how
 * deep a task sits in the body (0 for one task, 2 for an item of a bulk request's `tasks`).
 */
function findBodyProblem(body: unknown, above: number): BodyProblem | undefined {
  const pending: { value: unknown; path: (string | number)[] }[] = [{ value: body, path: [] }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { value, path } = next;
    if (typeof value !== 'object' || value === null) continue;
    if (path.length > MAX_DATA_DEPTH + above)
      return { path, message: `nesting deeper than ${MAX_DATA_DEPTH} levels is not allowed` };
    for (const [key, child] of Object.entries(value)) {
      const childPath = [...path, Array.isArray(value) ? Number(key) : key];
      if (FORBIDDEN_KEYS.has(key)) return { path: childPath, message: 'this key is not allowed' };
      pending.push({ value: child, path: childPath });
    }
  }
  return undefined;
}

export interface TaskLimits {
  /** Largest `data.durationMs` (MAX_TASK_DURATION_MS). */
  readonly maxDurationMs: number;
  /** Largest `options.timeoutMs` (and the older `data.timeoutMs`): JOB_TIMEOUT_MS. */
  readonly maxTimeoutMs: number;
}

/** BullMQ's bound: priorities are stored in 21 bits beside a job counter. */
export const MAX_PRIORITY = 2_097_152;

/** The longest a job may be delayed: 30 days. */
export const MAX_DELAY_MS = 30 * 24 * 3_600_000;

/** The longest a job may wait before it expires: 30 days, as for a delay. */
export const MAX_EXPIRY_MS = 30 * 24 * 3_600_000;

/** Per-job settings that override the service's defaults. */
function optionsSchema({ maxTimeoutMs }: TaskLimits) {
  return z
    .object({
      priority: z.int().min(1).max(MAX_PRIORITY).optional(),
      delayMs: z.int().min(0).max(MAX_DELAY_MS).optional(),
      attempts: z.int().min(1).max(100).optional(),
      backoffMs: z.int().min(0).max(86_400_000).optional(),
      timeoutMs: z.int().min(1).max(maxTimeoutMs).optional(),
      expiresInMs: z
        .int()
        .min(1)
        .max(MAX_EXPIRY_MS)
        .optional()
        .describe('A job not started within this many ms of its enqueue never runs: it ends as `expired`.'),
      expiresAt: z.iso
        .datetime({ offset: true })
        .optional()
        .describe(
          'The same as a time (ISO 8601, with `Z` or an offset), in the future and at most 30 days ahead; ' +
            'not with `expiresInMs`.',
        ),
    })
    .strict();
}

/** What of a task's options its expiry is judged with. */
type ExpiryOptions = Pick<ClientOverrides, 'delayMs' | 'expiresInMs' | 'expiresAt'>;

/**
 * What is wrong with a task's expiry at `now`, by field of its `options`: both forms given, a time not
 * in the future or too far ahead, or a delay that reaches it (a delayed job that would expire before
 * it is due). Checked after the schema, and answered 422 `INVALID_EXPIRY`: each field alone is valid.
 */
export function expiryProblems(options: ExpiryOptions, now: number): { path: string; message: string }[] {
  if (options.expiresInMs !== undefined && options.expiresAt !== undefined) {
    return [{ path: 'expiresAt', message: 'give expiresInMs or expiresAt, not both' }];
  }
  const expiresAt = expiryOf(options, now);
  if (expiresAt === undefined) return [];
  if (options.expiresAt !== undefined && expiresAt <= now)
    return [{ path: 'expiresAt', message: 'must be in the future' }];
  if (options.expiresAt !== undefined && expiresAt > now + MAX_EXPIRY_MS) {
    return [{ path: 'expiresAt', message: 'must be at most 30 days ahead' }];
  }
  if (options.delayMs !== undefined && options.delayMs > 0 && now + options.delayMs >= expiresAt) {
    return [{ path: 'delayMs', message: 'must end before the job expires (expiresInMs or expiresAt)' }];
  }
  return [];
}

/** One task, without the raw-body checks of `safeBody`: what the OpenAPI document describes. */
export function taskSchema(limits: TaskLimits) {
  const { maxDurationMs, maxTimeoutMs } = limits;
  return z
    .object({
      options: optionsSchema(limits).optional(),
      jobName: z
        .string()
        .min(1)
        .max(JOB_NAME_MAX_LENGTH)
        .regex(JOB_NAME_PATTERN, 'must start with a letter or digit and contain only letters, digits and _ . : -'),
      group: groupSchema()
        .optional()
        .describe(
          `Its tenant group, up to ${GROUP_MAX_LENGTH} letters, digits and \`_ . : -\`; \`default\` when not given.`,
        ),
      data: z
        .record(z.string(), z.unknown())
        .default({})
        .superRefine((data, context) => {
          const bounds: readonly [string, number, number][] = [
            ['durationMs', 0, maxDurationMs],
            ['timeoutMs', 1, maxTimeoutMs],
          ];
          for (const [key, min, max] of bounds) {
            if (!(key in data)) continue;
            const value = data[key];
            if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
              context.addIssue({ code: 'custom', path: [key], message: `must be an integer from ${min} to ${max}` });
            }
          }
          // The dummy fails on `true` or a message; anything else (0, 1, null, "") would be a guess.
          if (
            'fail' in data &&
            typeof data.fail !== 'boolean' &&
            !(typeof data.fail === 'string' && data.fail.length > 0)
          ) {
            context.addIssue({ code: 'custom', path: ['fail'], message: 'must be true, false or a non-empty message' });
          }
        }),
    })
    .strict();
}

/**
 * Checked on the raw parsed JSON, before zod copies objects: a copy could turn an own `__proto__`
 * key into a prototype change and hide it, and copying deep nesting is the work being refused.
 */
export function safeBody<T extends z.ZodType>(schema: T, above: number) {
  return z
    .unknown()
    .superRefine((body, context) => {
      const problem = findBodyProblem(body, above);
      if (problem) context.addIssue({ code: 'custom', path: problem.path, message: problem.message });
    })
    .pipe(schema);
}

export function createEnqueueSchema(limits: TaskLimits) {
  return safeBody(taskSchema(limits), 0);
}

/** `POST /enqueue-tasks`: `{ tasks: [...] }`, 1 to `maxTasks` tasks, each as for one task. */
export function createBulkEnqueueSchema(limits: TaskLimits, maxTasks: number) {
  return safeBody(bulkTasksSchema(limits, maxTasks), 2);
}

/** The `POST /enqueue-tasks` body without the raw-body checks; `task` lets the OpenAPI document share one. */
export function bulkTasksSchema(limits: TaskLimits, maxTasks: number, task = taskSchema(limits)) {
  return z.object({ tasks: z.array(task).min(1).max(maxTasks) }).strict();
}

/** A page's `limit` in a query string: the digits of an integer from 1 to `max`. */
export function pageLimitSchema(max: number) {
  return z
    .string()
    .regex(/^[0-9]{1,6}$/, `must be an integer from 1 to ${max}`)
    .transform(Number)
    .pipe(z.int().min(1).max(max));
}

/** The bounds of a group's settings (`PUT /groups/:group`). */
export const GROUP_SETTING_BOUNDS = {
  concurrency: 1_000_000,
  /** The ledger keeps the time of each start within the window in one hash field: it must stay short. */
  rateMax: 1000,
  /** One day. */
  rateDurationMs: 86_400_000,
  weight: 100,
} as const;

/**
 * A change to a group's settings, merged into those it has: a field not sent is kept, `null` removes
 * it. What the OpenAPI document describes; the route checks the raw body first (`createGroupSettingsSchema`).
 */
export function groupSettingsSchema() {
  const { concurrency, rateMax, rateDurationMs, weight } = GROUP_SETTING_BOUNDS;
  return z
    .object({
      concurrency: z
        .int()
        .min(1)
        .max(concurrency)
        .nullable()
        .optional()
        .describe('The most jobs of the group running or about to start at once, in the whole pool; null removes it.'),
      rateLimit: z
        .object({
          max: z.int().min(1).max(rateMax).describe('Starts allowed within the window.'),
          durationMs: z.int().min(1).max(rateDurationMs).describe('The sliding window, in ms.'),
        })
        .strict()
        .nullable()
        .optional()
        .describe('At most `max` starts of the group per `durationMs`, pool-wide; null removes it.'),
      weight: z
        .int()
        .min(1)
        .max(weight)
        .nullable()
        .optional()
        .describe('Turns the group gets per round among groups with work (1 when not set); null removes it.'),
      paused: z
        .boolean()
        .nullable()
        .optional()
        .describe("`true`: the group's jobs are accepted but none starts; null removes it (not paused)."),
    })
    .strict();
}

/** `PUT /groups/:group`'s body, with the raw-body checks of every body. */
export function createGroupSettingsSchema() {
  return safeBody(groupSettingsSchema(), 0);
}

export interface ValidationIssue {
  readonly path: string;
  readonly message: string;
}

export function describeIssues(error: z.ZodError): ValidationIssue[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }));
}
