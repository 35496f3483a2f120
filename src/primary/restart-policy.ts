/**
 * How soon a dead process is forked again. The first crash in a while is answered at once; crashes in
 * quick succession back off exponentially, so a process that dies on start-up (Redis gone, bad
 * handler) does not turn the primary into a fork loop.
 */
export interface RestartPolicy {
  readonly windowMs: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = Object.freeze({
  windowMs: 60_000,
  baseDelayMs: 250,
  maxDelayMs: 30_000,
});

/**
 * `crashes` are the times of the earlier crashes of this worker index's processes, oldest first;
 * `now` is the new one.
 */
export function restartDelay(
  crashes: readonly number[],
  now: number,
  policy: RestartPolicy = DEFAULT_RESTART_POLICY,
): number {
  const recent = crashes.filter((time) => now - time < policy.windowMs).length;
  if (recent === 0) return 0;
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (recent - 1));
}
