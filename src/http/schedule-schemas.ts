/**
 * What a client may send to `PUT /schedules/:name` (issue 23): a rule (`cron` with an optional `tz`,
 * or `everyMs`), the task each tick makes as `POST /enqueue-task` takes it, and the schedule's bounds
 * and policies. Checked whole before anything is stored; each refusal names its field: a body of the
 * wrong shape is answered 400, a rule or bounds that cannot be used 422 (`scheduleProblems`).
 */
import { z } from 'zod';
import { MISSED_TICK_POLICIES, OVERLAP_POLICIES } from '../schedules/definition.js';
import { ruleProblem } from '../schedules/rules.js';
import { expiryProblems, safeBody, taskSchema, type TaskLimits, type ValidationIssue } from './schemas.js';

/** The most jobs a schedule may be limited to. */
export const MAX_SCHEDULE_LIMIT = 1_000_000_000;
/** The longest interval: a year. */
export const MAX_EVERY_MS = 366 * 24 * 3_600_000;
/** A cron expression's most characters. */
const MAX_CRON_LENGTH = 256;

export interface ScheduleLimits extends TaskLimits {
  /** SCHEDULE_MIN_INTERVAL_MS: the shortest interval between two ticks. */
  readonly minIntervalMs: number;
}

const instant = () =>
  z.iso.datetime({ offset: true }).describe('An ISO 8601 date and time with its offset, such as 2027-01-01T00:00:00Z.');

/** The body without the raw-body checks: what the OpenAPI document describes. */
export function scheduleSchema(limits: ScheduleLimits) {
  return z
    .object({
      ...taskSchema(limits).shape,
      cron: z
        .string()
        .min(1)
        .max(MAX_CRON_LENGTH)
        .optional()
        .describe('A cron expression: five fields (minute to day of week), or six with seconds first.'),
      tz: z.string().min(1).max(64).optional().describe('The IANA time zone of `cron` (UTC when not given).'),
      everyMs: z
        .int()
        .min(1)
        .max(MAX_EVERY_MS)
        .optional()
        .describe(`A tick every this many ms; at least SCHEDULE_MIN_INTERVAL_MS (${limits.minIntervalMs}).`),
      startAt: instant().optional().describe('No tick before this; `everyMs` ticks count from it.'),
      endAt: instant().optional().describe('No tick after this.'),
      limit: z.int().min(1).max(MAX_SCHEDULE_LIMIT).optional().describe('The most jobs the schedule makes.'),
      missedTicks: z
        .enum(MISSED_TICK_POLICIES)
        .default('runOnce')
        .describe('Ticks that fell while no process ran: `runOnce` makes one job for them all, `skip` none.'),
      overlap: z
        .enum(OVERLAP_POLICIES)
        .default('allow')
        .describe('`skip`: a tick makes no job while the previous job still waits or runs (counted as skipped).'),
    })
    .strict();
}

export type ScheduleBody = z.infer<ReturnType<typeof scheduleSchema>>;

/**
 * What makes a well-formed schedule unusable, each naming its field: answered 422, where a body of
 * the wrong shape is answered 400 like any other.
 */
export function scheduleProblems(body: ScheduleBody, minIntervalMs: number, now: number): ValidationIssue[] {
  const problems: ValidationIssue[] = [];
  const problem = (path: string, message: string) => problems.push({ path, message });
  if ((body.cron === undefined) === (body.everyMs === undefined)) {
    problem(body.cron === undefined ? 'everyMs' : 'cron', 'give exactly one of cron and everyMs');
    return problems;
  }
  if (body.tz !== undefined && body.cron === undefined) problem('tz', 'applies to cron only');
  const rule = body.cron === undefined ? { everyMs: body.everyMs ?? 0 } : { cron: body.cron, tz: body.tz ?? 'UTC' };
  const wrong = ruleProblem(rule, minIntervalMs);
  if (wrong) problem(wrong.path, wrong.message);
  const startAt = body.startAt === undefined ? undefined : Date.parse(body.startAt);
  const endAt = body.endAt === undefined ? undefined : Date.parse(body.endAt);
  if (endAt !== undefined && startAt !== undefined && endAt <= startAt) problem('endAt', 'must be after startAt');
  else if (endAt !== undefined && endAt <= now) problem('endAt', 'must be in the future');
  // Each tick's job counts its expiry from when it is made: a time would pass for every job after it.
  if (body.options?.expiresAt !== undefined) problem('options.expiresAt', 'use expiresInMs in a schedule');
  else if (body.options !== undefined) {
    for (const { path, message } of expiryProblems(body.options, now)) problem(`options.${path}`, message);
  }
  return problems;
}

export function createScheduleSchema(limits: ScheduleLimits) {
  return safeBody(scheduleSchema(limits), 0);
}
