/**
 * The ledger's side of fair scheduling between tenant groups (see lua/includes/groups.lua): holding a
 * job in its group's line and handing held jobs to workers with room in fair order (a group's
 * settings and counts come from group-settings.ts). All of it lives in the ledger's slot, so that a
 * choice reads and writes the workers' loads and the groups' lines in one step.
 */
import type { RedisClient } from '../redis/connections.js';
import { groupKeyList, groupKeys, ledgerKeys, type GroupKeys } from '../contracts/keys.js';
import { clockArgument, ledgerScripts, type Clock } from './scripts.js';
import { HELD_QUEUE } from '../contracts/names.js';
import { createGroupSettingsStore, type GroupSettingsStore } from './group-settings.js';

export type { GroupCounts, GroupSettings, GroupSettingsChange, GroupView, RateLimit } from './group-settings.js';

/** A held job handed to a worker: the caller moves it there from the held queue. */
export interface Released {
  readonly jobId: string;
  readonly workerId: string;
}

/** Where a moved job went, for readers: its location record, written with the end of the move. */
export interface MovedTo {
  readonly key: string;
  readonly value: string;
  readonly ttlMs: number;
}

/** A held job's move to its worker that has not been seen to finish. */
export interface Releasing extends Released {
  readonly token: string;
  readonly since: number;
}

export interface GroupLedger extends GroupSettingsStore {
  readonly keys: GroupKeys;
  /**
   * Queues the hold of a job added to the held queue on the same transaction, after its add: the
   * job and its place in its group's line exist together or not at all.
   */
  holdOn(pipeline: object, hold: { jobKey: string; jobId: string; group: string; priority?: number | undefined }): void;
  /** Hands up to `most` held jobs to workers with room, in fair order. */
  release(most: number): Promise<readonly Released[]>;
  /**
   * Ends a job's reservation on `workerId` for good, and hands up to `most` held jobs to workers with
   * room in the same step: the slot it frees goes on at once, with no release call of its own.
   */
  finishAndRelease(workerId: string, token: string, most: number): Promise<readonly Released[]>;
  /** Takes a cancelled held job out of its group's line. */
  unhold(jobKey: string): Promise<boolean>;
  /** The held jobs whose move is under way (a handful): the recovery finishes those cut short. */
  releasing(): Promise<readonly Releasing[]>;
  /** A held job's move is done, or was not needed: its token leaves the releasing hash. */
  released(token: string): Promise<void>;
  /**
   * A held job's move is done: its location is written (unless a steal wrote a newer one), its copy
   * leaves the held queue, and its token the releasing hash, in one step.
   */
  moved(
    token: string,
    jobId: string,
    held: { readonly jobKey: string; readonly delayedKey: string },
    location: MovedTo,
  ): Promise<void>;
  /** Which of these tokens belong to held jobs whose move is under way. */
  releasingAmong(tokens: readonly string[]): Promise<ReadonlySet<string>>;
}

export interface GroupLedgerOptions {
  readonly redis: RedisClient;
  readonly prefix: string;
  readonly workerTtlMs: number;
  readonly prefetch: number;
  readonly groupConcurrency: number;
  /** The worker ids to pass to the release script, and how to read them again (the ledger's). */
  readonly members: () => readonly string[];
  readonly refreshMembers: () => Promise<void>;
  readonly clock?: Clock | undefined;
}

const MAX_MEMBERSHIP_REFRESHES = 3;

export function createGroupLedger(options: GroupLedgerOptions): GroupLedger {
  const { redis, prefix, clock } = options;
  const keys = groupKeys(prefix);
  const ledger = ledgerKeys(prefix);
  const list = groupKeyList(keys);
  const script = ledgerScripts(redis);
  const holdScript = script('hold');
  const releaseScript = script('release');
  const finishReleaseScript = script('finish-release');
  const unholdScript = script('unhold');
  const doneScript = script('release-done');
  const sequenceKey = keys.sequence;
  const releaseKeys = [
    ledger.heartbeats,
    ledger.capacity,
    ledger.queued,
    ledger.active,
    ledger.cursor,
    keys.releasing,
    ...list,
  ];

  // Every job's end sends these keys: made again only when the ledger reads a new list of workers.
  let keyedIds: readonly string[] | undefined;
  let keyed: readonly string[] = [];
  const workerKeysOf = (ids: readonly string[]): readonly string[] => {
    if (ids !== keyedIds) {
      keyed = [...ids.map((id) => ledger.jobs(id)), ...ids.map((id) => ledger.unconfirmed(id))];
      keyedIds = ids;
    }
    return keyed;
  };

  /**
   * Hands out up to `most` held jobs (release-n.lua), or ends `finishing`'s reservation and then
   * hands them out, in one step (finish-release-n.lua). A live worker the call did not name makes the
   * script answer -2: the worker list is read again and the call sent again (an end is not done twice).
   */
  const handOut = async (
    most: number,
    finishing: { readonly workerId: string; readonly token: string } | undefined,
  ): Promise<readonly Released[]> => {
    for (let attempt = 0; attempt <= MAX_MEMBERSHIP_REFRESHES; attempt += 1) {
      const ids = options.members();
      const workerKeys = workerKeysOf(ids);
      const settings = [
        options.workerTtlMs,
        ids.length,
        clockArgument(clock),
        options.prefetch,
        options.groupConcurrency,
        most,
      ];
      const reply =
        finishing === undefined
          ? await releaseScript([...releaseKeys, ...workerKeys], [...settings, ...ids])
          : await finishReleaseScript(
              [
                ...releaseKeys,
                ledger.jobs(finishing.workerId),
                ledger.running(finishing.workerId),
                ledger.unconfirmed(finishing.workerId),
                ...workerKeys,
              ],
              [...settings, finishing.workerId, finishing.token, ...ids],
            );
      if (reply === -2) {
        await options.refreshMembers();
        continue;
      }
      const flat = Array.isArray(reply) ? reply.map(String) : [];
      const released: Released[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) released.push({ jobId: flat[i] ?? '', workerId: flat[i + 1] ?? '' });
      return released;
    }
    throw new Error('the set of live workers kept changing during release');
  };

  return {
    keys,
    holdOn(pipeline, { jobKey, jobId, group, priority }) {
      holdScript.on(pipeline)(
        [sequenceKey, jobKey, ...list],
        [jobId, group, priority ?? 0, options.groupConcurrency, clockArgument(clock)],
      );
    },
    release: (most) => handOut(most, undefined),
    finishAndRelease: (workerId, token, most) => handOut(most, { workerId, token }),
    async unhold(jobKey) {
      return (await unholdScript([jobKey, ...list], [options.groupConcurrency, clockArgument(clock)])) === 1;
    },
    ...createGroupSettingsStore({ redis, scripts: script, prefix, groupConcurrency: options.groupConcurrency, clock }),
    async releasing() {
      const flat = await redis.hgetall(keys.releasing);
      return Object.entries(flat).flatMap(([token, value]) => {
        const [workerId = '', jobId = '', since = '0'] = value.split('|');
        return workerId === '' || jobId === '' ? [] : [{ token, workerId, jobId, since: Number(since) }];
      });
    },
    async released(token) {
      await redis.hdel(keys.releasing, token);
    },
    async moved(token, jobId, { jobKey, delayedKey }, location) {
      await doneScript(
        [keys.releasing, jobKey, delayedKey, location.key],
        [token, jobId, location.value, location.ttlMs, HELD_QUEUE],
      );
    },
    async releasingAmong(tokens) {
      if (tokens.length === 0) return new Set();
      const values = await redis.hmget(keys.releasing, ...tokens);
      return new Set(tokens.filter((_, i) => values[i] !== null));
    },
  };
}
