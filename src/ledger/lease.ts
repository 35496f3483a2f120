/**
 * Ownership of worker ids. A worker id owns one BullMQ queue; the lease makes sure that exactly one
 * live process consumes it and may recover what its predecessors left running. The holder renews the
 * lease with its heartbeat and releases it when it shuts down cleanly. A lease that expired and
 * stayed expired for the retirement delay marks a dead id, which one live process then claims (a
 * lease held as "retire:<owner>") to move its jobs elsewhere and retire it.
 *
 * Holders are named "<instance>/<pid>": the instance is the primary's, so a re-forked process takes
 * over from its dead predecessor at once, while a second instance with the same HOST_ID is refused.
 */
import type { RedisClient } from '../redis/connections.js';
import { ledgerKeys } from '../contracts/keys.js';
import { clockArgument, ledgerScripts, type Clock } from './scripts.js';

export interface LeaseView {
  /** Who holds it: a process, or a process retiring the id. */
  readonly holder: string;
  readonly holderPid: number | undefined;
  readonly retiring: boolean;
  readonly expiresAt: number;
  /** Below zero once expired. */
  readonly expiresInMs: number;
}

export type AcquireOutcome =
  | { readonly taken: true; readonly previousHolder: string }
  | { readonly taken: false; readonly holder: string; readonly expiresInMs: number; readonly retiring: boolean };

export type RenewOutcome =
  | { readonly held: true; readonly lapsed: boolean; readonly dueForRetirement: readonly string[] }
  | { readonly held: false };

export type RetireOutcome = 'retired' | 'reservations-left' | 'claim-lost';

export interface Leases {
  acquire(workerId: string): Promise<AcquireOutcome>;
  /** `routable`: the worker takes new jobs (false while it drains). */
  renew(workerId: string, concurrency: number, routable: boolean): Promise<RenewOutcome>;
  release(workerId: string): Promise<boolean>;
  /** Claims a dead id for retirement, or extends this process's claim. */
  claimRetirement(workerId: string): Promise<boolean>;
  finishRetirement(workerId: string): Promise<RetireOutcome>;
  /** Ids retired and not started again, with when. */
  retired(): Promise<ReadonlyMap<string, number>>;
  forgetRetired(workerId: string): Promise<void>;
}

export interface LeaseOptions {
  readonly redis: RedisClient;
  readonly prefix: string;
  /** The primary's instance id: processes it forks take over from each other. */
  readonly instance: string;
  /** This process's holder name, `<instance>/<pid>`. */
  readonly owner: string;
  readonly ttlMs: number;
  readonly retireMs: number;
  /** Tests only: the time the scripts judge by, instead of Redis's (see `Clock`). */
  readonly clock?: Clock;
}

export const RETIRE_CLAIM_PREFIX = 'retire:';

export function holderName(instance: string, pid: number): string {
  return `${instance}/${pid}`;
}

export function createLeases({ redis, prefix, instance, owner, ttlMs, retireMs, clock }: LeaseOptions): Leases {
  const keys = ledgerKeys(prefix);
  const script = ledgerScripts(redis);
  const acquireScript = script('lease-acquire');
  const renewScript = script('lease-renew');
  const releaseScript = script('lease-release');
  const claimScript = script('retire-claim');
  const finishScript = script('retire-finish');
  const claimer = `${RETIRE_CLAIM_PREFIX}${owner}`;
  const now = () => clockArgument(clock);

  return {
    async acquire(workerId) {
      const reply = (await acquireScript(
        [keys.leases, keys.retired],
        [workerId, owner, `${instance}/`, ttlMs, now()],
      )) as [number, string, number?];
      if (reply[0] === 1) return { taken: true, previousHolder: reply[1] };
      return {
        taken: false,
        holder: reply[1],
        expiresInMs: Number(reply[2] ?? 0),
        retiring: reply[1].startsWith(RETIRE_CLAIM_PREFIX),
      };
    },
    async renew(workerId, concurrency, routable) {
      const reply = (await renewScript(
        [keys.leases, keys.heartbeats, keys.capacity],
        [workerId, owner, ttlMs, concurrency, routable ? 1 : 0, retireMs, now()],
      )) as (number | string)[];
      if (reply[0] !== 1) return { held: false };
      return { held: true, lapsed: reply[1] === 1, dueForRetirement: reply.slice(2).map(String) };
    },
    async release(workerId) {
      return (await releaseScript([keys.leases, keys.heartbeats], [workerId, owner, now()])) === 1;
    },
    async claimRetirement(workerId) {
      return (await claimScript([keys.leases], [workerId, claimer, retireMs, ttlMs, now()])) === 1;
    },
    async finishRetirement(workerId) {
      const reply = await finishScript(
        [
          keys.leases,
          keys.heartbeats,
          keys.capacity,
          keys.queued,
          keys.active,
          keys.workers,
          keys.retired,
          keys.jobs(workerId),
          keys.running(workerId),
          keys.unconfirmed(workerId),
        ],
        [workerId, claimer, now()],
      );
      return reply === 1 ? 'retired' : reply === 0 ? 'reservations-left' : 'claim-lost';
    },
    async retired() {
      const all = await redis.hgetall(keys.retired);
      return new Map(Object.entries(all).map(([id, at]) => [id, Number(at)]));
    },
    async forgetRetired(workerId) {
      await redis.hdel(keys.retired, workerId);
    },
  };
}

export function parseLease(value: string, now: number): LeaseView | undefined {
  const match = /^(?<holder>.*)\|(?<expires>\d+)$/.exec(value);
  if (!match?.groups) return undefined;
  const { holder, expires } = match.groups as { holder: string; expires: string };
  const pid = /\/(?<pid>\d+)$/.exec(holder)?.groups?.pid;
  const expiresAt = Number(expires);
  return {
    holder,
    holderPid: pid === undefined ? undefined : Number(pid),
    retiring: holder.startsWith(RETIRE_CLAIM_PREFIX),
    expiresAt,
    expiresInMs: expiresAt - now,
  };
}
