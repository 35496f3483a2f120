/**
 * Where schedules live: their definitions and states in the ledger's slot (`scheduleKeys`), written
 * and claimed by the scripts beside this file, so that every process of every host sees one set of
 * schedules and one tick is claimed by one process at a time.
 */
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '../redis/connections.js';
import { scriptsIn } from '../redis/scripts.js';
import { scheduleKeys } from '../contracts/keys.js';
import type { ScheduleDefinition, ScheduleState } from './definition.js';

const LUA_DIRECTORY = fileURLToPath(new URL('./lua/', import.meta.url));

/** A schedule as stored: its definition and what is kept of its runs. */
export interface StoredSchedule {
  readonly name: string;
  readonly definition: ScheduleDefinition;
  readonly state: ScheduleState;
}

/** One due tick, claimed by this process until its lease ends. */
export interface ClaimedTick {
  readonly name: string;
  readonly tick: number;
  readonly version: string;
  readonly runs: number;
  readonly lastJobId: string | null;
  readonly definition: ScheduleDefinition;
}

export interface ClaimPass {
  /** The server's time of the look. */
  readonly now: number;
  readonly down: { readonly from: number; readonly to: number } | undefined;
  /** When the earliest schedule left is due, if any. */
  readonly nextDueAt: number | undefined;
  readonly claimed: readonly ClaimedTick[];
}

export interface TickOutcome {
  readonly outcome: 'made' | 'skipped' | 'none';
  readonly jobTick: number | null;
  readonly jobId: string | null;
  readonly missed: number;
  readonly next: number | null;
}

export interface SchedulePage {
  readonly schedules: StoredSchedule[];
  /** The last name of this page, where the next one starts; null after the last page. */
  readonly nextCursor: string | null;
}

export interface ScheduleStore {
  /** Writes a schedule with its first tick; true when it is new. */
  put(name: string, definition: ScheduleDefinition, firstTick: number | null): Promise<boolean>;
  get(name: string): Promise<StoredSchedule | undefined>;
  /** A page of schedules by name, after the name `after`. */
  list(after: string | undefined, limit: number): Promise<SchedulePage>;
  /** True when it existed. */
  delete(name: string): Promise<boolean>;
  claim(options: { max: number; leaseMs: number; downAfterMs: number; clock?: number }): Promise<ClaimPass>;
  /** Records a claimed tick's outcome: false when another claimer recorded it first, or it was deleted. */
  advance(tick: ClaimedTick, outcome: TickOutcome): Promise<boolean>;
}

const STATE_FIELDS = ['next', 'runs', 'skipped', 'missed', 'lastTick', 'lastJob'] as const;

export function createScheduleStore({ redis, prefix }: { redis: RedisClient; prefix: string }): ScheduleStore {
  const keys = scheduleKeys(prefix);
  const script = scriptsIn(redis, LUA_DIRECTORY);
  const [claimScript, advanceScript, putScript, deleteScript] = [
    'schedule-claim',
    'schedule-advance',
    'schedule-put',
    'schedule-delete',
  ].map(script) as [
    ReturnType<typeof script>,
    ReturnType<typeof script>,
    ReturnType<typeof script>,
    ReturnType<typeof script>,
  ];
  const writeKeys = [keys.due, keys.states, keys.definitions];

  const statesOf = async (names: readonly string[]): Promise<ScheduleState[]> => {
    if (names.length === 0) return [];
    const fields = names.flatMap((name) => STATE_FIELDS.map((field) => `${name}|${field}`));
    const values = await redis.hmget(keys.states, ...fields);
    return names.map((_, i) => {
      const [next, runs, skipped, missed, lastTick, lastJob] = values.slice(
        i * STATE_FIELDS.length,
        (i + 1) * STATE_FIELDS.length,
      );
      return {
        next: numberOrNull(next),
        runs: Number(runs ?? 0),
        skipped: Number(skipped ?? 0),
        missed: Number(missed ?? 0),
        lastTick: numberOrNull(lastTick),
        lastJobId: lastJob ? lastJob : null,
      };
    });
  };

  return {
    async put(name, definition, firstTick) {
      const created = await putScript(writeKeys, [name, JSON.stringify(definition), firstTick ?? '']);
      return created === 1;
    },

    async get(name) {
      const raw = await redis.hget(keys.definitions, name);
      if (raw === null) return undefined;
      const [state] = await statesOf([name]);
      return { name, definition: JSON.parse(raw) as ScheduleDefinition, state: state as ScheduleState };
    },

    async list(after, limit) {
      // By name: a page goes on after the last name of the one before, whether or not that schedule
      // is still there. Schedules are few (each is written by hand), so every name is read.
      const names = (await redis.hkeys(keys.definitions)).sort().filter((name) => after === undefined || name > after);
      const page = names.slice(0, limit);
      const [raws, states] = await Promise.all([
        page.length === 0 ? [] : redis.hmget(keys.definitions, ...page),
        statesOf(page),
      ]);
      const schedules = page.flatMap((name, i) => {
        const raw = raws[i];
        // Deleted between the two reads.
        if (raw === null || raw === undefined) return [];
        return [{ name, definition: JSON.parse(raw) as ScheduleDefinition, state: states[i] as ScheduleState }];
      });
      return { schedules, nextCursor: names.length > limit ? (page.at(-1) ?? null) : null };
    },

    async delete(name) {
      return (await deleteScript(writeKeys, [name])) === 1;
    },

    async claim({ max, leaseMs, downAfterMs, clock }) {
      const [now, downFrom, downTo, earliest, claimed] = (await claimScript(
        [keys.due, keys.states, keys.seen, keys.down, keys.definitions],
        [max, leaseMs, downAfterMs, clock ?? ''],
      )) as [number, string, string, string, [string, string, string, string, string, string][]];
      return {
        now: Number(now),
        down: downFrom === '' ? undefined : { from: Number(downFrom), to: Number(downTo) },
        nextDueAt: earliest === '' ? undefined : Number(earliest),
        claimed: claimed.map(([name, tick, version, runs, lastJob, definition]) => ({
          name,
          tick: Number(tick),
          version,
          runs: Number(runs),
          lastJobId: lastJob === '' ? null : lastJob,
          definition: JSON.parse(definition) as ScheduleDefinition,
        })),
      };
    },

    async advance(tick, { outcome, jobTick, jobId, missed, next }) {
      const reply = await advanceScript(writeKeys, [
        tick.name,
        tick.tick,
        tick.version,
        outcome,
        jobTick ?? '',
        jobId ?? '',
        missed,
        next ?? '',
      ]);
      return reply === 'recorded';
    },
  };
}

function numberOrNull(value: string | null | undefined): number | null {
  return value === null || value === undefined || value === '' ? null : Number(value);
}
