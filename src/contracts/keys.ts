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
  /**
   * zset: job id -> when it expires (ms), for each job with an expiry that has not started; written
   * with the job's add, dropped when it starts or expires (see expiry/expirer.ts).
   */
  readonly expiries: string;
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
    expiries: key('expiries'),
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

/**
 * The keys of fair scheduling between tenant groups, in the ledger's slot: the scripts that choose a
 * worker for a job (reserve, release) and those that end a job's run (transition) read and write them
 * together with the workers' loads, in one step. Jobs that must wait for their group's turn are held
 * in the held queue (`HELD_QUEUE`, contracts/names.ts), whose BullMQ keys share this slot too.
 */
export interface GroupKeys {
  /**
   * zset, every score 0, ordered by member: one member per held job, "<group>|<band>|<seq>|<job id>",
   * so that one group's jobs are a range of members, highest priority (band) first, then in arrival
   * order (seq).
   */
  readonly held: string;
  /** hash: group -> held jobs. */
  readonly waiting: string;
  /** hash: group -> jobs handed to a worker and not finished (queued there, or running). */
  readonly inflight: string;
  /** hash: group -> jobs running. */
  readonly running: string;
  /** hash: token -> group, for each job handed to a worker and not finished. */
  readonly groupOf: string;
  /** hash: group -> settings JSON ({concurrency, rateLimit: {max, durationMs}, weight, paused}). */
  readonly settings: string;
  /**
   * zset, every score 0, ordered by member: one member per group whose held jobs may start now,
   * "<band>|<pass>|<group>": the group of the best band, then of the least pass, is next.
   */
  readonly ready: string;
  /** hash: group -> its member in `ready`. */
  readonly readyAt: string;
  /** hash: group -> its pass (virtual time, in units of PASS_SCALE / weight per turn). */
  readonly pass: string;
  /** hash: band -> the pass of the last group that had a turn in it. */
  readonly virtualTime: string;
  /** zset: group -> when its rate limit lets it start a job again (ms). */
  readonly sleeping: string;
  /** hash: group -> the times (ms) of its starts within its rate limit's window, space separated. */
  readonly starts: string;
  /** string: the arrival counter of held jobs. */
  readonly sequence: string;
  /** hash: token -> "<worker>|<job id>|<ms>", a held job handed to a worker whose move is under way. */
  readonly releasing: string;
}

export function groupKeys(prefix: string): GroupKeys {
  const key = (name: string) => `${prefix}:${LEDGER_TAG}:groups:${name}`;
  return Object.freeze({
    held: key('held'),
    waiting: key('waiting'),
    inflight: key('inflight'),
    running: key('running'),
    groupOf: key('of'),
    settings: key('settings'),
    ready: key('ready'),
    readyAt: key('ready-at'),
    pass: key('pass'),
    virtualTime: key('virtual-time'),
    sleeping: key('sleeping'),
    starts: key('starts'),
    sequence: key('sequence'),
    releasing: key('releasing'),
  });
}

/** The order in which scripts take the group keys in KEYS, from their first group key on. */
export function groupKeyList(keys: GroupKeys): string[] {
  return [
    keys.held,
    keys.waiting,
    keys.inflight,
    keys.running,
    keys.groupOf,
    keys.settings,
    keys.ready,
    keys.readyAt,
    keys.pass,
    keys.virtualTime,
    keys.sleeping,
    keys.starts,
  ];
}

/**
 * The keys of recurring schedules (issue 23), in the ledger's slot: a tick is claimed, and its
 * outcome recorded, by scripts that read and write a schedule's definition, its state and the set of
 * due schedules in one step.
 */
export interface ScheduleKeys {
  /** hash: name -> the schedule's definition (JSON, see schedules/definition.ts). */
  readonly definitions: string;
  /** hash: name -> its state (JSON): the next tick, its counts, its last job, a claim's lease. */
  readonly states: string;
  /**
   * zset: name -> when a process should look at it next (ms): its next tick, or the end of the lease
   * of a claim under way. A schedule without a next tick (ended) has no member.
   */
  readonly due: string;
  /** string: when a process last looked for due schedules (ms): the scheduler's sign of life. */
  readonly seen: string;
  /** hash {from, to}: the last time no process looked for longer than the scheduler's down threshold. */
  readonly down: string;
}

export function scheduleKeys(prefix: string): ScheduleKeys {
  const key = (name: string) => `${prefix}:${LEDGER_TAG}:schedules:${name}`;
  return Object.freeze({
    definitions: key('definitions'),
    states: key('states'),
    due: key('due'),
    seen: key('seen'),
    down: key('down'),
  });
}
