/**
 * `/schedules` (issue 23): recurring jobs, kept in Redis and run by whichever processes are alive.
 * - `PUT /schedules/:name`: creates (201) or replaces (200) a schedule; the next tick follows the new
 *   rule at once. Its counts and last job stay across a replace.
 * - `GET /schedules/:name`: the schedule, its next run time, its last job and its counts.
 * - `GET /schedules`: every schedule, by name, a page at a time; the cursor is the last name of the
 *   page before.
 * - `DELETE /schedules/:name`: no tick after this; jobs it made stay.
 */
import { Router, type Request } from 'express';
import { z } from 'zod';
import { fromStore, InvalidScheduleError, NotFoundError, UnknownJobNameError, ValidationError } from '../../errors.js';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from '../../jobs/lister.js';
import type { ScheduleDefinition, ScheduledOptions } from '../../schedules/definition.js';
import { tickAfter } from '../../schedules/rules.js';
import type { ScheduleStore, StoredSchedule } from '../../schedules/store.js';
import { echo } from '../errors.js';
import { requireJsonBody } from '../json-body.js';
import { createScheduleSchema, scheduleProblems, type ScheduleBody } from '../schedule-schemas.js';
import { describeIssues, pageLimitSchema, scheduleNameSchema, type TaskLimits } from '../schemas.js';
import type { JobNames } from './tasks.js';

export interface ScheduleRouteOptions {
  readonly store: Pick<ScheduleStore, 'put' | 'get' | 'list' | 'delete'>;
  /** SCHEDULE_MIN_INTERVAL_MS. */
  readonly minIntervalMs: number;
  readonly limits: TaskLimits;
  readonly jobNames: JobNames;
}

export const scheduleListQuerySchema = z
  .object({
    limit: pageLimitSchema(MAX_LIST_LIMIT).optional(),
    cursor: scheduleNameSchema().optional(),
  })
  .strict();

const schedulePathSchema = z.object({ name: scheduleNameSchema() });

/** A schedule as the API answers it. */
export interface ScheduleAnswer {
  readonly name: string;
  readonly cron: string | null;
  readonly tz: string | null;
  readonly everyMs: number | null;
  readonly jobName: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly group: string | null;
  readonly options: ScheduledOptions;
  readonly startAt: string | null;
  readonly endAt: string | null;
  readonly limit: number | null;
  readonly missedTicks: ScheduleDefinition['missedTicks'];
  readonly overlap: ScheduleDefinition['overlap'];
  /** The next tick; null once the schedule has ended. */
  readonly nextRunAt: string | null;
  readonly lastRun: { readonly tickAt: string; readonly jobId: string } | null;
  readonly runs: number;
  readonly skipped: number;
  readonly missed: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export function answerOf({ name, definition, state }: StoredSchedule): ScheduleAnswer {
  const { rule, task } = definition;
  return {
    name,
    cron: 'cron' in rule ? rule.cron : null,
    tz: 'cron' in rule ? rule.tz : null,
    everyMs: 'everyMs' in rule ? rule.everyMs : null,
    jobName: task.jobName,
    data: task.data,
    group: task.group ?? null,
    options: task.options ?? {},
    startAt: iso(definition.startAt),
    endAt: iso(definition.endAt),
    limit: definition.limit,
    missedTicks: definition.missedTicks,
    overlap: definition.overlap,
    nextRunAt: iso(state.next),
    lastRun:
      state.lastTick === null || state.lastJobId === null
        ? null
        : { tickAt: new Date(state.lastTick).toISOString(), jobId: state.lastJobId },
    runs: state.runs,
    skipped: state.skipped,
    missed: state.missed,
    createdAt: new Date(definition.createdAt).toISOString(),
    updatedAt: new Date(definition.updatedAt).toISOString(),
  };
}

/** The definition a body describes, written at `now`; `before` is the schedule it replaces. */
export function definitionOf(body: ScheduleBody, now: number, before?: ScheduleDefinition): ScheduleDefinition {
  const startAt = body.startAt === undefined ? null : Date.parse(body.startAt);
  const everyMs = body.everyMs;
  return {
    rule: everyMs === undefined ? { cron: body.cron ?? '', tz: body.tz ?? 'UTC' } : { everyMs },
    task: {
      jobName: body.jobName,
      data: body.data,
      ...(body.group === undefined ? {} : { group: body.group }),
      ...(body.options === undefined ? {} : { options: withoutExpiryTime(body.options) }),
    },
    startAt,
    endAt: body.endAt === undefined ? null : Date.parse(body.endAt),
    limit: body.limit ?? null,
    missedTicks: body.missedTicks,
    overlap: body.overlap,
    anchor: startAt ?? now + (everyMs ?? 0),
    createdAt: before?.createdAt ?? now,
    updatedAt: now,
  };
}

function nameOf(req: Request): string {
  const parsed = schedulePathSchema.safeParse(req.params);
  if (!parsed.success) throw new ValidationError('Invalid schedule name', { details: describeIssues(parsed.error) });
  return parsed.data.name;
}

export function schedulesRouter({ store, minIntervalMs, limits, jobNames }: ScheduleRouteOptions): Router {
  const schema = createScheduleSchema({ ...limits, minIntervalMs });
  const router = Router();
  const found = async (name: string): Promise<StoredSchedule> => {
    const schedule = await fromStore(() => store.get(name));
    if (schedule === undefined) throw new NotFoundError(`No schedule named ${echo(name)}`);
    return schedule;
  };

  router.get('/schedules', async (req, res) => {
    const parsed = scheduleListQuerySchema.safeParse(req.query);
    if (!parsed.success) throw new ValidationError('Invalid query', { details: describeIssues(parsed.error) });
    const { limit = DEFAULT_LIST_LIMIT, cursor } = parsed.data;
    const page = await fromStore(() => store.list(cursor, limit));
    res.json({ schedules: page.schedules.map(answerOf), nextCursor: page.nextCursor });
  });

  router.get('/schedules/:name', async (req, res) => {
    res.json(answerOf(await found(nameOf(req))));
  });

  router.put('/schedules/:name', async (req, res) => {
    const name = nameOf(req);
    requireJsonBody(req);
    const parsed = schema.safeParse(req.body);
    if (!parsed.success) throw new ValidationError('Invalid schedule', { details: describeIssues(parsed.error) });
    const body = parsed.data;
    const now = Date.now();
    const problems = scheduleProblems(body, minIntervalMs, now);
    if (problems.length > 0) throw new InvalidScheduleError(problems);
    if (!jobNames.accepts(body.jobName)) {
      throw new UnknownJobNameError([{ path: 'jobName', jobName: body.jobName }], jobNames.accepted);
    }
    const before = await fromStore(() => store.get(name));
    const definition = definitionOf(body, now, before?.definition);
    const ended = definition.limit !== null && (before?.state.runs ?? 0) >= definition.limit;
    const first = ended ? null : tickAfter(definition, now - 1);
    const created = await fromStore(() => store.put(name, definition, first));
    res
      .status(created ? 201 : 200)
      .location(`/schedules/${encodeURIComponent(name)}`)
      .json(answerOf(await found(name)));
  });

  router.delete('/schedules/:name', async (req, res) => {
    const name = nameOf(req);
    if (!(await fromStore(() => store.delete(name)))) throw new NotFoundError(`No schedule named ${echo(name)}`);
    res.status(204).end();
  });
  return router;
}

/** A schedule's options: an absolute `expiresAt` was refused (see `scheduleProblems`). */
function withoutExpiryTime(options: NonNullable<ScheduleBody['options']>): ScheduledOptions {
  const kept: ScheduledOptions & { expiresAt?: unknown } = { ...options };
  delete kept.expiresAt;
  return kept;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
