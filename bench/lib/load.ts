/**
 * A bounded client for the scenarios that need each answer's body: sends the given tasks with at
 * most `concurrency` requests in flight, and records when each answer arrived.
 */
export interface Sent<T> {
  readonly status: number;
  readonly body: T;
  readonly sentAt: number;
  readonly answeredAt: number;
}

export const wallClock = () => performance.timeOrigin + performance.now();

export async function sendAll<T>(
  url: string,
  tasks: readonly unknown[],
  concurrency: number,
  timeoutMs = 120_000,
): Promise<Sent<T>[]> {
  const results: Sent<T>[] = new Array<Sent<T>>(tasks.length);
  const deadline = Date.now() + timeoutMs;
  let next = 0;
  const lane = async () => {
    while (next < tasks.length) {
      if (Date.now() > deadline) throw new Error('load did not finish in time');
      const index = next;
      next += 1;
      const sentAt = wallClock();
      const response = await fetch(`${url}/enqueue-task`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(tasks[index]),
      });
      const body = (await response.json()) as T;
      results[index] = { status: response.status, body, sentAt, answeredAt: wallClock() };
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, lane));
  return results;
}

/** Polls `GET /jobs/:id` until every job is completed; returns their results. */
export async function waitForResults<R>(url: string, jobIds: readonly string[], timeoutMs: number): Promise<R[]> {
  const deadline = Date.now() + timeoutMs;
  const results = new Map<string, R>();
  while (results.size < jobIds.length) {
    if (Date.now() > deadline) throw new Error(`only ${results.size} of ${jobIds.length} jobs completed in time`);
    const pending = jobIds.filter((id) => !results.has(id));
    for (let i = 0; i < pending.length; i += 50) {
      await Promise.all(
        pending.slice(i, i + 50).map(async (id) => {
          const response = await fetch(`${url}/jobs/${encodeURIComponent(id)}`);
          if (response.status !== 200) return;
          const view = (await response.json()) as { state: string; result: R };
          if (view.state === 'completed') results.set(id, view.result);
        }),
      );
    }
    if (results.size < jobIds.length) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return jobIds.map((id) => results.get(id) as R);
}
