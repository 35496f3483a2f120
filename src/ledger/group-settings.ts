/**
 * A group's settings and the counts `/groups` and `/metrics` show, kept in the ledger's slot beside the
 * groups' lines (see lua/includes/groups.lua): settings are read by every release, so a change applies
 * at once, everywhere, and may let held jobs start (group-set-12.lua).
 */
import type { RedisClient } from '../redis/connections.js';
import { groupKeyList, groupKeys } from '../contracts/keys.js';
import { clockArgument, type Clock, type LedgerScripts } from './scripts.js';

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

export interface GroupSettingsStore {
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
}

export interface GroupSettingsOptions {
  readonly redis: RedisClient;
  /** The ledger's scripts, registered on `redis` by the group ledger that owns this store. */
  readonly scripts: LedgerScripts;
  readonly prefix: string;
  /** The concurrency of a group without its own (0: no limit). */
  readonly groupConcurrency: number;
  readonly clock?: Clock | undefined;
}

export function createGroupSettingsStore({
  redis,
  scripts,
  prefix,
  groupConcurrency,
  clock,
}: GroupSettingsOptions): GroupSettingsStore {
  const keys = groupKeys(prefix);
  const list = groupKeyList(keys);
  const setScript = scripts('group-set');

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
    async setSettings(group, settings) {
      await setScript(list, [group, 'replace', JSON.stringify(settings ?? {}), groupConcurrency, clockArgument(clock)]);
    },
    async changeSettings(group, change) {
      const stored = await setScript(list, [
        group,
        'merge',
        JSON.stringify(change),
        groupConcurrency,
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
