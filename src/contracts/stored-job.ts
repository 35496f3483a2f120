/**
 * What Bullpen stores on a BullMQ job beyond BullMQ's own fields, and how it reads it back: written by
 * the enqueue path and the canceller, read by the consumer, the delayed router and the job reader.
 */

/**
 * The job option that holds a job's tenant group. Kept in the options, as the time-out is, so that
 * the handler's `data` stays the client's, moves copy it with the rest (queue/transfer.ts), and the
 * admin UI shows it with the job's options. Not `group`: BullMQ Pro keeps its own groups there (as
 * `{ id }`), and bull-board already reads `opts.group.id`.
 */
export const GROUP_OPTION = 'bullpenGroup';

/** The group of a task sent without one; a client may also name it. */
export const DEFAULT_GROUP = 'default';

/** The options that store a job's group (spread into its BullMQ options, which do not know the field). */
export function groupOptions(group: string | undefined): Readonly<Record<string, string>> {
  return { [GROUP_OPTION]: group ?? DEFAULT_GROUP };
}

/** The group a job was enqueued in; DEFAULT_GROUP for a job stored without one. */
export function groupOption(opts: Readonly<Record<string, unknown>>): string {
  const value = opts[GROUP_OPTION];
  return typeof value === 'string' && value.length > 0 ? value : DEFAULT_GROUP;
}

/**
 * The job option that names the schedule that made a job and the tick it was made for (issue 23):
 * `{ name, tickAt }`, `tickAt` in ms since the epoch. Kept in the options, like the group, so that
 * moves carry it and the handler's `data` stays the schedule's.
 */
export const SCHEDULE_OPTION = 'bullpenSchedule';

export interface ScheduleMark {
  readonly name: string;
  readonly tickAt: number;
}

/** The option that marks a job made by a schedule; none for any other job. */
export function scheduleOptions(mark: ScheduleMark | undefined): Readonly<Record<string, ScheduleMark>> {
  return mark === undefined ? {} : { [SCHEDULE_OPTION]: { name: mark.name, tickAt: mark.tickAt } };
}

/** The schedule and tick a job was made for; undefined for a job enqueued by a client. */
export function scheduleOption(opts: Readonly<Record<string, unknown>>): ScheduleMark | undefined {
  const value = opts[SCHEDULE_OPTION] as { name?: unknown; tickAt?: unknown } | undefined;
  if (typeof value !== 'object' || value === null) return undefined;
  const { name, tickAt } = value;
  return typeof name === 'string' && typeof tickAt === 'number' ? { name, tickAt } : undefined;
}

/**
 * The job option that holds the trace context of the step that enqueued a job (issue 24), in W3C
 * form, so that the span of each attempt, in whichever process runs it, continues that trace. Only
 * written with tracing on. Moves carry it with the rest of the options.
 */
export const TRACE_OPTION = 'bullpenTrace';

/** A trace context as a job stores it: the `traceparent` and `tracestate` headers' values. */
export interface StoredTrace {
  readonly traceparent: string;
  readonly tracestate?: string | undefined;
}

/** The option that stores a job's trace context; none without one. */
export function traceOptions(trace: StoredTrace | undefined): Readonly<Record<string, StoredTrace>> {
  return trace === undefined ? {} : { [TRACE_OPTION]: trace };
}

/** The trace context a job was enqueued in, if tracing was on. */
export function traceOption(opts: Readonly<Record<string, unknown>>): StoredTrace | undefined {
  const value = opts[TRACE_OPTION] as { traceparent?: unknown; tracestate?: unknown } | undefined;
  if (typeof value !== 'object' || value === null || typeof value.traceparent !== 'string') return undefined;
  return typeof value.tracestate === 'string'
    ? { traceparent: value.traceparent, tracestate: value.tracestate }
    : { traceparent: value.traceparent };
}

/**
 * The failure reason of a job cancelled by `DELETE /jobs/:id`: BullMQ keeps it with its failed jobs,
 * and every reader shows it as state `cancelled`.
 */
export const CANCELLED_REASON = 'cancelled';

/**
 * The job option that holds when a job expires (ms since the epoch): past it, a job that has not
 * started never runs, and is filed as failed with EXPIRED_REASON. In the options, as the time-out is,
 * so that moves and routings carry it with the rest.
 */
export const EXPIRES_OPTION = 'bullpenExpiresAt';

/** When a job expires (ms since the epoch), if it was enqueued with an expiry. */
export function expiresOption(opts: Readonly<Record<string, unknown>>): number | undefined {
  const value = opts[EXPIRES_OPTION];
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

/** Whether a job enqueued with an expiry has reached it at `now` (ms since the epoch). */
export function pastExpiry(opts: Readonly<Record<string, unknown>>, now: number): boolean {
  const expiresAt = expiresOption(opts);
  return expiresAt !== undefined && now >= expiresAt;
}

/**
 * The failure reason of a job that reached its expiry before it started: kept with BullMQ's failed
 * jobs, and shown by every reader as state `expired`.
 */
export const EXPIRED_REASON = 'expired';

/**
 * The job option that bounds one attempt. BullMQ has no per-job time-out, but it stores options it
 * does not know with the job and gives them back, so the consumer reads it from there.
 */
export const TIMEOUT_OPTION = 'timeoutMs';

/** The attempt time-out a job was enqueued with, if any. */
export function timeoutOption(opts: Readonly<Record<string, unknown>>): number | undefined {
  const value = opts[TIMEOUT_OPTION];
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 ? value : undefined;
}

/**
 * The delay a job is added to the held queue with. Nothing promotes it there (no consumer reads that
 * queue): it only puts the job in BullMQ's delayed set, a sorted set, from which its release takes it
 * in O(log n). In the waiting list, the oldest job, which most releases take, sits at the far end of
 * a list BullMQ searches from the other, and each release would read the whole backlog.
 */
export const HELD_DELAY_MS = 10 * 365 * 24 * 3_600_000;
