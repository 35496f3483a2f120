/**
 * Polling with a generous deadline: tests wait for behaviour instead of sleeping a fixed time. The
 * few that assert on elapsed time do so only where the time is the behaviour under test (a back-off
 * that must be waited out, a request or a forced stop that must not hang), with a wide margin.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  {
    timeoutMs = 30_000,
    intervalMs = 100,
    what = 'condition',
    stopOn = () => false,
  }: {
    timeoutMs?: number;
    intervalMs?: number;
    what?: string;
    /** An error the probe throws that no later probe can mend (a process that exited): thrown at once. */
    stopOn?: (error: unknown) => boolean;
  } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      if (stopOn(error)) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    await sleep(intervalMs);
  }
}
