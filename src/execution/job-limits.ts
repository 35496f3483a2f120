/**
 * How long one attempt of a job may run, and how long the dummy handler should take: both come from
 * the job itself (its options or data), which any client wrote, so each is checked and bounded here
 * before the consumer trusts it.
 */

/**
 * The time-out a job asked for (`options.timeoutMs`, or the older `data.timeoutMs`) when it is a
 * usable number below the limit; the limit otherwise.
 */
export function timeoutFor(asked: unknown, limitMs: number): number {
  if (typeof asked !== 'number' || !Number.isInteger(asked) || asked < 1) return limitMs;
  return Math.min(asked, limitMs);
}

/** `data.durationMs` when it is a usable number, bounded by the maximum; the default otherwise. */
export function durationFor(data: Readonly<Record<string, unknown>>, defaultMs: number, maxMs: number): number {
  const asked = data.durationMs;
  if (typeof asked !== 'number' || !Number.isFinite(asked) || asked < 0) return defaultMs;
  return Math.min(Math.floor(asked), maxMs);
}
