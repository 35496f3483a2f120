/**
 * The index of every job by the time it was enqueued: one sorted set for the whole deployment, so
 * that `GET /jobs` pages newest first across every worker's queue with a bounded cost per page. Its
 * entry is written by the reservation of the job's slot (or, for a delayed job, with its add); a
 * move keeps the job's id, so the entry
 * stays valid wherever the job goes. Entries outlive the jobs that retention removes: the listing
 * drops those it finds gone, and a bounded sweep drops the old ones nobody lists (`job-lister.ts`).
 */
import { ledgerKeys } from '../ledger/keys.js';

/**
 * zset: job id -> enqueue time (ms since the epoch). Among the ledger's keys (in its slot, on a Redis
 * Cluster), because the reserve script writes it.
 */
export function jobIndexKey(prefix: string): string {
  return ledgerKeys(prefix).index;
}
