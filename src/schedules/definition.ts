/**
 * What a schedule is (issue 23): its rule, the task it makes at each tick, its bounds and its
 * policies, as stored in Redis and shown by the API; and what is kept of its runs. Shared by the
 * store, the scheduler and the routes.
 */
import { overridesAt, type ClientOverrides, type DispatchRequest } from '../contracts/dispatch.js';

/** A cron expression (five fields, or six with seconds) in a time zone, or a fixed interval. */
export type ScheduleRule = { readonly cron: string; readonly tz: string } | { readonly everyMs: number };

/** What happens to ticks that fell while no process was running: one job for them all, or none. */
export const MISSED_TICK_POLICIES = ['runOnce', 'skip'] as const;
export type MissedTickPolicy = (typeof MISSED_TICK_POLICIES)[number];

/** Whether a tick makes a job while the previous job of the schedule still waits or runs. */
export const OVERLAP_POLICIES = ['allow', 'skip'] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

/**
 * The options of a tick's job: a task's, with its expiry relative (`expiresInMs`), counted from each
 * tick's job as it is made; an absolute time would pass for every job after it.
 */
export type ScheduledOptions = Omit<ClientOverrides, 'expiresAt'>;

/** The task a tick makes: what `POST /enqueue-task` takes. */
export type ScheduledTask = Pick<DispatchRequest, 'jobName' | 'data' | 'group'> & {
  readonly options?: ScheduledOptions | undefined;
};

/** The request that makes a tick's job at `now`: its expiry counted from then. */
export function tickRequest(task: ScheduledTask, now: number): Omit<DispatchRequest, 'schedule'> {
  return { ...task, options: overridesAt(task.options ?? {}, now) };
}

export interface ScheduleDefinition {
  readonly rule: ScheduleRule;
  readonly task: ScheduledTask;
  /** No tick before this (ms since the epoch); an interval's ticks count from it. */
  readonly startAt: number | null;
  /** No tick after this. */
  readonly endAt: number | null;
  /** The most jobs the schedule makes; it ends after the last. */
  readonly limit: number | null;
  readonly missedTicks: MissedTickPolicy;
  readonly overlap: OverlapPolicy;
  /**
   * The first tick of an interval rule, from which the others follow every `everyMs`: `startAt`, or
   * one interval after the schedule was written (so that a PUT's first job is not made at once).
   */
  readonly anchor: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** What is kept of a schedule's runs, beside its definition. */
export interface ScheduleState {
  /** The next tick; null once the schedule has ended (its end, or its limit, was reached). */
  readonly next: number | null;
  /** Jobs made. */
  readonly runs: number;
  /** Ticks skipped because the previous job still waited or ran (`overlap: skip`). */
  readonly skipped: number;
  /** Ticks that fell while no process was running and made no job of their own. */
  readonly missed: number;
  /** The tick of the last job made, and that job. */
  readonly lastTick: number | null;
  readonly lastJobId: string | null;
}
