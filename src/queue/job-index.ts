/**
 * The index of every job by the time it was enqueued: one sorted set for the whole deployment, so
 * that `GET /jobs` pages newest first across every worker's queue with a bounded cost per page. Its
 * entry is written in the transaction that creates the job; a move keeps the job's id, so the entry
 * stays valid wherever the job goes. Entries outlive the jobs that retention removes: the listing
 * drops those it finds gone, and a bounded sweep drops the old ones nobody lists (`job-lister.ts`).
 */

/** zset: job id -> enqueue time (ms since the epoch). */
export function jobIndexKey(prefix: string): string {
  return `${prefix}:index:jobs`;
}
