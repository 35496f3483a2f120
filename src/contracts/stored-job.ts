/**
 * What Bullpen stores on a BullMQ job beyond BullMQ's own fields, and how it reads it back: written by
 * the enqueue path and the canceller, read by the consumer, the delayed router and the job reader.
 */

/**
 * The failure reason of a job cancelled by `DELETE /jobs/:id`: BullMQ keeps it with its failed jobs,
 * and every reader shows it as state `cancelled`.
 */
export const CANCELLED_REASON = 'cancelled';

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
