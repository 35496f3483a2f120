/**
 * The ledger's side of moving a job between workers' queues: the intent written before anything
 * moves, the reservation shifting from source to target, the end of the move, the take-over of a
 * move whose executor died, and the choices that start a move (whom a free worker steals from).
 * The queue's side lives in `queue/transfer.ts`; `ownership/mover.ts` drives the steps in order.
 */
import type { RedisClient } from '../redis/connections.js';
import { ledgerKeys } from '../contracts/keys.js';
import { clockArgument, ledgerScripts, type Clock } from './scripts.js';

export type MoveReason = 'stolen' | 'retired';
export type MovePhase = 'begun' | 'shifted';

export interface MoveIntent {
  readonly token: string;
  readonly id: string;
  readonly jobId: string;
  readonly source: string;
  readonly target: string;
  readonly reason: MoveReason;
  readonly executor: string;
  readonly at: number;
  readonly phase: MovePhase;
}

export type BeginOutcome =
  | { readonly begun: true; readonly target: string }
  | { readonly begun: false; readonly why: 'busy' | 'running' | 'no-target' };

/** 1 ended by this call, 0 already gone, -1 an abort refused because the reservation shifted. */
export type EndOutcome = 1 | 0 | -1;

export interface JobLocation {
  readonly current: string;
  readonly movedFrom: readonly string[];
}

export interface MoveLedger {
  begin(request: {
    readonly jobId: string;
    readonly token: string;
    readonly intentId: string;
    readonly source: string;
    readonly target: string | undefined;
    readonly reason: MoveReason;
  }): Promise<BeginOutcome>;
  shift(token: string, intentId: string): Promise<boolean>;
  end(token: string, intentId: string, mode: 'commit' | 'abort'): Promise<EndOutcome>;
  /** Takes over a move whose executor no longer holds its lease; undefined if it is still alive. */
  adopt(intent: MoveIntent): Promise<MoveIntent | undefined>;
  /** Every move under way. */
  pending(): Promise<readonly MoveIntent[]>;
  /** The worker with the most waiting work beyond its capacity, if the thief has a free slot. */
  pickVictim(thiefId: string): Promise<string | undefined>;
  /** Where a moved job is now, and where it was; undefined for a job that never moved. */
  location(token: string): Promise<JobLocation | undefined>;
}

export interface MoveLedgerOptions {
  readonly redis: RedisClient;
  readonly prefix: string;
  /** The executor of moves started here: this process's worker id and lease holder name. */
  readonly workerId: string;
  readonly owner: string;
  readonly workerTtlMs: number;
  /** How long the location of a moved job is kept: longer than any job stays in a queue. */
  readonly locationTtlMs: number;
  /** Tests only: the time the scripts judge by, instead of Redis's (see `Clock`). */
  readonly clock?: Clock;
}

interface IntentJson {
  readonly id: string;
  readonly j: string;
  readonly s: string;
  readonly t: string;
  readonly r: MoveReason;
  readonly w: string;
  readonly o: string;
  readonly at: number;
  readonly p: MovePhase;
}

export function createMoveLedger({
  redis,
  prefix,
  workerId,
  owner,
  workerTtlMs,
  locationTtlMs,
  clock,
}: MoveLedgerOptions): MoveLedger {
  const keys = ledgerKeys(prefix);
  const script = ledgerScripts(redis);
  const beginScript = script('move-begin');
  const shiftScript = script('move-shift');
  const endScript = script('move-end');
  const adoptScript = script('move-adopt');
  const pickScript = script('steal-pick');
  const now = () => clockArgument(clock);

  return {
    async begin({ jobId, token, intentId, source, target, reason }) {
      const reply = (await beginScript(
        [keys.moves, keys.jobs(source), keys.heartbeats, keys.capacity, keys.queued, keys.active, keys.cursor],
        [token, intentId, source, target ?? '', reason, workerId, owner, workerTtlMs, jobId, now()],
      )) as [number, string];
      if (reply[0] === 1) return { begun: true, target: reply[1] };
      return { begun: false, why: reply[1] as 'busy' | 'running' | 'no-target' };
    },
    async shift(token, intentId) {
      const raw = await redis.hget(keys.moves, token);
      const intent = raw === null ? undefined : parseIntent(token, raw);
      if (!intent || intent.id !== intentId) return false;
      const reply = await shiftScript(
        [
          keys.moves,
          keys.jobs(intent.source),
          keys.jobs(intent.target),
          keys.queued,
          keys.active,
          keys.location(token),
          keys.unconfirmed(intent.source),
          keys.unconfirmed(intent.target),
        ],
        [token, intentId, locationTtlMs, now()],
      );
      return reply === 1;
    },
    async end(token, intentId, mode) {
      return Number(await endScript([keys.moves], [token, intentId, mode])) as EndOutcome;
    },
    async adopt(intent) {
      const raw = await adoptScript([keys.moves, keys.leases], [intent.token, intent.id, workerId, owner, now()]);
      return typeof raw === 'string' ? parseIntent(intent.token, raw) : undefined;
    },
    async pending() {
      const all = await redis.hgetall(keys.moves);
      return Object.entries(all).flatMap(([token, raw]) => parseIntent(token, raw) ?? []);
    },
    async pickVictim(thiefId) {
      const reply = await pickScript(
        [keys.heartbeats, keys.capacity, keys.queued, keys.active],
        [thiefId, workerTtlMs, now()],
      );
      return typeof reply === 'string' ? reply : undefined;
    },
    location: (token) => readLocation(redis, prefix, token),
  };
}

/**
 * Where a moved job is now, read on any connection: the HTTP reads take it on the request connection,
 * so that a Redis that is away refuses them at once instead of queueing them on the consumer's.
 */
export async function readLocation(
  redis: RedisClient,
  prefix: string,
  token: string,
): Promise<JobLocation | undefined> {
  const value = await redis.get(ledgerKeys(prefix).location(token));
  if (value === null) return undefined;
  const [current = '', from = ''] = value.split('|');
  return { current, movedFrom: from === '' ? [] : from.split(',') };
}

function parseIntent(token: string, raw: string): MoveIntent | undefined {
  try {
    const json = JSON.parse(raw) as IntentJson;
    return {
      token,
      id: json.id,
      jobId: json.j,
      source: json.s,
      target: json.t,
      reason: json.r,
      executor: json.w,
      at: json.at,
      phase: json.p,
    };
  } catch {
    return undefined;
  }
}
