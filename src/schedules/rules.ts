/**
 * When a schedule's ticks fall, and what one claimed tick makes: pure functions of a definition and
 * times, so that the scheduler's decisions are tested without Redis or a clock. Cron expressions are
 * read by cron-parser (BullMQ's own choice), in the schedule's time zone.
 */
import { CronExpressionParser } from 'cron-parser';
import type { ScheduleDefinition, ScheduleRule } from './definition.js';

/** How many missed ticks are counted one by one at most; more are reported as this many. */
export const MAX_COUNTED_TICKS = 100_000;

/** Why a rule cannot be used, or undefined: a cron that does not parse, an unknown zone, too short an interval. */
export function ruleProblem(rule: ScheduleRule, minIntervalMs: number): { path: string; message: string } | undefined {
  if ('everyMs' in rule) {
    return rule.everyMs < minIntervalMs
      ? { path: 'everyMs', message: `must be at least ${minIntervalMs} ms (SCHEDULE_MIN_INTERVAL_MS)` }
      : undefined;
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: rule.tz });
  } catch {
    return { path: 'tz', message: 'must be an IANA time zone, such as Europe/Berlin or UTC' };
  }
  let first: number;
  let second: number;
  try {
    const ticks = CronExpressionParser.parse(rule.cron, { tz: rule.tz, currentDate: new Date() });
    first = ticks.next().getTime();
    second = ticks.next().getTime();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { path: 'cron', message: `must be a cron expression: ${reason}` };
  }
  return second - first < minIntervalMs
    ? { path: 'cron', message: `must not fire more often than every ${minIntervalMs} ms (SCHEDULE_MIN_INTERVAL_MS)` }
    : undefined;
}

/** The first tick after `after` (strictly), or null when the schedule has none (past its end). */
export function tickAfter(definition: ScheduleDefinition, after: number): number | null {
  const { rule, startAt, endAt, anchor } = definition;
  let tick: number;
  if ('everyMs' in rule) {
    tick = after < anchor ? anchor : anchor + (Math.floor((after - anchor) / rule.everyMs) + 1) * rule.everyMs;
  } else {
    const from = startAt !== null && startAt - 1 > after ? startAt - 1 : after;
    try {
      tick = CronExpressionParser.parse(rule.cron, { tz: rule.tz, currentDate: new Date(from) })
        .next()
        .getTime();
    } catch {
      return null; // No date matches any more (cron-parser gives up after a bounded search).
    }
  }
  return endAt !== null && tick > endAt ? null : tick;
}

/** The ticks from `from` to `to`, both included: how many, and the last of them. */
export function ticksWithin(
  definition: ScheduleDefinition,
  from: number,
  to: number,
): { readonly count: number; readonly last: number | null } {
  const { rule, anchor } = definition;
  const end = definition.endAt === null ? to : Math.min(to, definition.endAt);
  if ('everyMs' in rule) {
    const first = tickAfter(definition, from - 1);
    if (first === null || first > end) return { count: 0, last: null };
    const count = Math.floor((end - first) / rule.everyMs) + 1;
    return { count, last: anchor + Math.floor((end - anchor) / rule.everyMs) * rule.everyMs };
  }
  let count = 0;
  let last: number | null = null;
  for (let tick = tickAfter(definition, from - 1); tick !== null && tick <= end; tick = tickAfter(definition, tick)) {
    count += 1;
    last = tick;
    if (count === MAX_COUNTED_TICKS) break;
  }
  return { count, last };
}

/** A claimed tick, as the scheduler decides it. */
export interface TickPlan {
  /** The tick the job is made for (the last of missed ticks run once), or null: no job. */
  readonly jobTick: number | null;
  /** Ticks that made no job because no process ran at their time. */
  readonly missed: number;
  /** The tick after this one; null when the schedule ends. */
  readonly next: number | null;
}

export interface TickClaim {
  readonly tick: number;
  /** Jobs the schedule made before this tick. */
  readonly runs: number;
  /** The last time no process looked for due schedules, if ever. */
  readonly down: { readonly from: number; readonly to: number } | undefined;
}

/**
 * What a claimed tick makes. A tick that fell while no process ran (within the last down window)
 * starts a catch-up: every tick from it to now is missed, and `runOnce` makes one job for the last
 * of them, `skip` none; the schedule goes on from the first tick after now. Any other tick makes its
 * job, even late (a process died holding it): it was not missed, only delayed. The limit counts jobs.
 */
export function planTick(definition: ScheduleDefinition, { tick, runs, down }: TickClaim, now: number): TickPlan {
  const made = (jobTick: number | null, missed: number, after: number): TickPlan => {
    const ended = definition.limit !== null && runs + (jobTick === null ? 0 : 1) >= definition.limit;
    return { jobTick, missed, next: ended ? null : tickAfter(definition, after) };
  };
  if (down === undefined || tick < down.from || tick > down.to) return made(tick, 0, tick);
  const { count, last } = ticksWithin(definition, tick, now);
  if (definition.missedTicks === 'skip' || last === null) return made(null, count, Math.max(now, tick));
  return made(last, count - 1, now);
}
