/**
 * The Redis keys of the load ledger, all under the deployment's prefix so that two deployments can
 * share one Redis. Scripts never build key names themselves: every key they touch is made here and
 * passed to them in KEYS.
 */
export interface LedgerKeys {
  /** zset: worker id -> last heartbeat of a worker that takes new jobs (ms, Redis clock). */
  readonly heartbeats: string;
  /** hash: worker id -> "holder|expiresAtMs", the lease that makes one process the id's owner. */
  readonly leases: string;
  /** hash: worker id -> concurrency. */
  readonly capacity: string;
  /** hash: worker id -> registration JSON (pid, host, concurrency, start time). */
  readonly workers: string;
  /** hash: worker id -> retiredAtMs, for ids retired and not started again. */
  readonly retired: string;
  /** hash: worker id -> jobs assigned and not started. */
  readonly queued: string;
  /** hash: worker id -> jobs running. */
  readonly active: string;
  /** string: tie-break rotation of selection. */
  readonly cursor: string;
  /** zset: the job index (`jobIndexKey` below), written by reserve for each job it places. */
  readonly index: string;
  /** hash: job token -> intent JSON of a move under way. */
  readonly moves: string;
  /** hash per worker: job token -> "state|sinceMs" (state q: assigned, a: running). */
  jobs(workerId: string): string;
  /**
   * set per worker: the tokens of its entries marked running (a), so that the reconcile pass reads
   * those without reading the waiting ones.
   */
  running(workerId: string): string;
  /**
   * zset per worker: job token -> reservedAtMs, for the reservations whose job has not yet been seen
   * in the worker's queue; the reconcile pass checks each once, past its grace period.
   */
  unconfirmed(workerId: string): string;
  /** string per moved job: "current worker|from,from,...". */
  location(token: string): string;
}

/**
 * The hash tag of every ledger key: on a Redis Cluster they all share one slot, so that a script may
 * touch any of them (choosing a worker reads every worker's load), while each worker's queue has a
 * tag of its own (`names.ts`).
 */
export const LEDGER_TAG = '{sched}';

export function ledgerKeys(prefix: string): LedgerKeys {
  const key = (name: string) => `${prefix}:${LEDGER_TAG}:${name}`;
  return Object.freeze({
    heartbeats: key('heartbeats'),
    leases: key('leases'),
    capacity: key('capacity'),
    workers: key('workers'),
    retired: key('retired'),
    queued: key('queued'),
    active: key('active'),
    cursor: key('cursor'),
    index: key('index'),
    moves: key('moves'),
    jobs: (workerId: string) => key(`jobs:${workerId}`),
    running: (workerId: string) => key(`running:${workerId}`),
    unconfirmed: (workerId: string) => key(`unconfirmed:${workerId}`),
    location: (token: string) => key(`moved:${token}`),
  });
}

/**
 * The index of every job by the time it was enqueued (zset: job id -> ms since the epoch): one sorted
 * set for the whole deployment, so that `GET /jobs` pages newest first across every worker's queue
 * with a bounded cost per page. Among the ledger's keys (in its slot, on a Redis Cluster), because the
 * reserve script writes a job's entry with its reservation; a delayed job's is written with its add. A
 * move keeps the job's id, so the entry stays valid wherever the job goes. Entries outlive the jobs
 * that retention removes: the listing drops those it finds gone, and a bounded sweep drops the old
 * ones nobody lists (`jobs/lister.ts`).
 */
export function jobIndexKey(prefix: string): string {
  return ledgerKeys(prefix).index;
}
