/**
 * The Redis keys of the scheduler, all under the deployment's prefix so that two deployments can
 * share one Redis, and all sharing the prefix's hash tag when it has one (Redis Cluster).
 */
export interface SchedulerKeys {
  readonly heartbeats: string;
  readonly capacity: string;
  readonly workers: string;
  /** Prefix of the per-worker reservation hashes: `${jobsPrefix}${workerId}`. */
  readonly jobsPrefix: string;
  jobs(workerId: string): string;
  readonly queued: string;
  readonly active: string;
  readonly cursor: string;
}

export function schedulerKeys(prefix: string): SchedulerKeys {
  const key = (name: string) => `${prefix}:sched:${name}`;
  return Object.freeze({
    heartbeats: key('heartbeats'),
    capacity: key('capacity'),
    workers: key('workers'),
    jobsPrefix: key('jobs:'),
    jobs: (workerId: string) => key(`jobs:${workerId}`),
    queued: key('queued'),
    active: key('active'),
    cursor: key('cursor'),
  });
}
