/**
 * Bench handler: waits `data.durationMs` like the dummy, and reports when it really started and
 * ended inside its thread, on the wall clock shared by every process, so the bench can measure
 * dispatch latency, concurrency and idle slots from the job results themselves.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { threadId } from 'node:worker_threads';
import type { Handler } from '../../workers/handler.js';

const now = () => performance.timeOrigin + performance.now();

const stamp: Handler = async ({ data }) => {
  const startedAt = now();
  const durationMs = typeof data.durationMs === 'number' ? data.durationMs : 0;
  if (durationMs > 0) await sleep(durationMs);
  return { startedAt, finishedAt: now(), threadId, pid: process.pid };
};

export default stamp;
