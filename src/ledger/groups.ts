/**
 * The ledger's side of fair scheduling between tenant groups (see lua/includes/groups.lua): holding a
 * job in its group's line, handing held jobs to workers with room in fair order, a group's settings,
 * and the counts `/groups` and `/metrics` show. All of it lives in the ledger's slot, so that a choice
 * reads and writes the workers' loads and the groups' lines in one step.
 */
import type { RedisClient } from '../redis/connections.js';
import { groupKeyList, groupKeys, ledgerKeys, type GroupKeys } from '../contracts/keys.js';
import { clockArgument, ledgerScripts, type Clock } from './scripts.js';
import { HELD_QUEUE } from '../contracts/names.js';

export interface RateLimit {
  readonly max: number;
  readonly durationMs: number;
}

export interface GroupSettings {
  readonly concurrency?: number | undefined;
  readonly rateLimit?: RateLimit | undefined;
  readonly weight?: number | undefined;
  readonly paused?: boolean | undefined;
}

/** A change of settings: a field given replaces the stored one; null removes it. */
export type GroupSettingsChange = { readonly [K in keyof GroupSettings]?: GroupSettings[K] | null };

export interface GroupCounts {
  /** Held jobs: waiting for the group's turn. */
  readonly waiting: number;
  /** Jobs handed to a worker and not finished: queued there, or running. */
  readonly inflight: number;
  readonly running: number;
}

export interface GroupView extends GroupCounts {
  readonly group: string;
  readonly settings: GroupSettings;
}

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

export interface GroupLedger {
  readonly keys: GroupKeys;
  /**
   * Queues the hold of a job added to the held queue on the same transaction, after its add: the
   * job and its place in its group's line exist together or not at all.
   */
  holdOn(pipeline: object, hold: { jobKey: string; jobId: string; group: string; priority?: number | undefined }): void;
  /** Hands up to `most` held jobs to workers with room, in fair order. */
  release(most: number): Promise<readonly Released[]>;
  /** Takes a cancelled held job out of its group's line. */
  unhold(jobKey: string): Promise<boolean>;
  /** Stores a group's settings (undefined drops them); they apply at once, everywhere. */
  setSettings(group: string, settings: GroupSettings | undefined): Promise<void>;
  /**
   * Changes a group's settings in one step: each field given replaces the stored one, null removes
   * it, a field not given is kept. Answers the settings stored now.
   */
  changeSettings(group: string, change: GroupSettingsChange): Promise<GroupSettings>;
  /** A group's settings and counts; a group never seen has no settings and zero counts. */
  view(group: string): Promise<GroupView>;
  /** Every group with held or unfinished jobs, or settings, with its counts, sorted by name. */
  all(): Promise<readonly GroupView[]>;
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
  const unholdScript = script('unhold');
  const setScript = script('group-set');
  const doneScript = script('release-done');
  const sequenceKey = keys.sequence;

  const counts = async (): Promise<Record<string, GroupCounts>> => {
    const [waiting, inflight, running] = await Promise.all([
      redis.hgetall(keys.waiting),
      redis.hgetall(keys.inflight),
      redis.hgetall(keys.running),
    ]);
    const all: Record<string, GroupCounts> = {};
    for (const group of new Set([...Object.keys(waiting), ...Object.keys(inflight), ...Object.keys(running)])) {
      all[group] = {
        waiting: Number(waiting[group] ?? 0),
        inflight: Number(inflight[group] ?? 0),
        running: Number(running[group] ?? 0),
      };
    }
    return all;
  };

  return {
    keys,
    holdOn(pipeline, { jobKey, jobId, group, priority }) {
      holdScript.on(pipeline)(
        [sequenceKey, jobKey, ...list],
        [jobId, group, priority ?? 0, options.groupConcurrency, clockArgument(clock)],
      );
    },
    async release(most) {
      for (let attempt = 0; attempt <= MAX_MEMBERSHIP_REFRESHES; attempt += 1) {
        const ids = options.members();
        const reply = await releaseScript(
          [
            ledger.heartbeats,
            ledger.capacity,
            ledger.queued,
            ledger.active,
            ledger.cursor,
            keys.releasing,
            ...list,
            ...ids.map((id) => ledger.jobs(id)),
            ...ids.map((id) => ledger.unconfirmed(id)),
          ],
          [
            options.workerTtlMs,
            ids.length,
            clockArgument(clock),
            options.prefetch,
            options.groupConcurrency,
            most,
            ...ids,
          ],
        );
        if (reply === -2) {
          await options.refreshMembers();
          continue;
        }
        const flat = Array.isArray(reply) ? reply.map(String) : [];
        const released: Released[] = [];
        for (let i = 0; i + 1 < flat.length; i += 2)
          released.push({ jobId: flat[i] ?? '', workerId: flat[i + 1] ?? '' });
        return released;
      }
      throw new Error('the set of live workers kept changing during release');
    },
    async unhold(jobKey) {
      return (await unholdScript([jobKey, ...list], [options.groupConcurrency, clockArgument(clock)])) === 1;
    },
    async setSettings(group, settings) {
      await setScript(list, [
        group,
        'replace',
        JSON.stringify(settings ?? {}),
        options.groupConcurrency,
        clockArgument(clock),
      ]);
    },
    async changeSettings(group, change) {
      const stored = await setScript(list, [
        group,
        'merge',
        JSON.stringify(change),
        options.groupConcurrency,
        clockArgument(clock),
      ]);
      return parseSettings(typeof stored === 'string' ? stored : null);
    },
    async view(group) {
      const [raw, waiting, inflight, running] = await Promise.all([
        redis.hget(keys.settings, group),
        redis.hget(keys.waiting, group),
        redis.hget(keys.inflight, group),
        redis.hget(keys.running, group),
      ]);
      return {
        group,
        settings: parseSettings(raw),
        waiting: Number(waiting ?? 0),
        inflight: Number(inflight ?? 0),
        running: Number(running ?? 0),
      };
    },
    async all() {
      const [settings, byGroup] = await Promise.all([redis.hgetall(keys.settings), counts()]);
      const names = [...new Set([...Object.keys(settings), ...Object.keys(byGroup)])].sort();
      return names.map((group) => ({
        group,
        settings: parseSettings(settings[group] ?? null),
        ...(byGroup[group] ?? { waiting: 0, inflight: 0, running: 0 }),
      }));
    },
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

function parseSettings(raw: string | null): GroupSettings {
  if (raw === null) return {};
  try {
    const parsed = JSON.parse(raw) as GroupSettings;
    return typeof parsed === 'object' && parsed !== null ? parsed : {};
  } catch {
    return {};
  }
}
