/**
 * Stopping a redis-server that may not be our child, by pid: SIGTERM, so that it flushes its AOF and
 * no accepted job is lost, then wait for it to be gone, and SIGKILL only when it will not go. Used by
 * the watchdog process, and by the primary when the watchdog is not there to do it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Long enough to write out a large AOF; a server that takes longer is stuck. */
export const TERMINATE_TIMEOUT_MS = 30_000;
const POLL_MS = 50;
/** After SIGKILL the kernel needs only a moment; waiting longer would not help. */
const KILL_GRACE_MS = 5_000;

/**
 * Whether the pid runs. A zombie (exited, not yet reaped by a parent that does not reap) counts as
 * gone: it holds no port and no file any more.
 */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // Linux: the state is the field after the parenthesised command name.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    // Gone in between, on Linux; without /proc (macOS) kill(0) is all there is.
    return !existsSync('/proc/self/stat');
  }
}

async function waitUntilGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isRunning(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(POLL_MS);
  }
  return true;
}

export type Termination = 'already gone' | 'stopped' | 'killed' | 'would not die';

export async function terminate(pid: number, timeoutMs = TERMINATE_TIMEOUT_MS): Promise<Termination> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'already gone';
  }
  if (await waitUntilGone(pid, timeoutMs)) return 'stopped';
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return 'stopped';
  }
  return (await waitUntilGone(pid, KILL_GRACE_MS)) ? 'killed' : 'would not die';
}
