/**
 * Reads of one worker's reservations for the reconcile pass, chosen so that a pass costs what can
 * be wrong, not the backlog: the tokens listed as running, the reservations whose job has not been
 * seen yet (both kept by the scripts beside the reservations), and one page at a time of the whole
 * hash for the slow sweep that catches anything else.
 */
import type { RedisClient } from '../redis/connections.js';
import { jobIdFor } from '../contracts/names.js';
import type { LedgerKeys } from '../contracts/keys.js';

export type ReservationState = 'queued' | 'active';

export interface Reservation {
  readonly token: string;
  readonly state: ReservationState;
  readonly reservedAt: number;
  /** The job's public id: it names the worker the job was first routed to, which a move keeps. */
  readonly jobId: string;
}

export interface ReservationPage {
  /** Where the next page starts; "0" once the page ended a full pass over the hash. */
  readonly cursor: string;
  readonly reservations: readonly Reservation[];
}

export interface ReservationReads {
  /** The tokens listed as running: the entries marked active, and now and then one that no longer is. */
  runningTokens(workerId: string): Promise<readonly string[]>;
  /** Up to `limit` reservations made before `before` (ms, the ledger's clock) whose job was not seen. */
  unconfirmed(workerId: string, before: number, limit: number): Promise<readonly string[]>;
  /** The reservations of these tokens, in order; undefined where a token has none. */
  entries(workerId: string, tokens: readonly string[]): Promise<readonly (Reservation | undefined)[]>;
  /** The jobs of these reservations were seen: they leave the unconfirmed ones. */
  confirm(workerId: string, tokens: readonly string[]): Promise<void>;
  /** About `count` reservations from `cursor` on (HSCAN: an entry present throughout is met at least once). */
  reservationPage(workerId: string, cursor: string, count: number): Promise<ReservationPage>;
}

export function reservationReads(
  redis: RedisClient,
  keys: Pick<LedgerKeys, 'jobs' | 'running' | 'unconfirmed'>,
): ReservationReads {
  return {
    runningTokens: (workerId) => redis.smembers(keys.running(workerId)),
    // Strictly before: a reservation exactly `grace` old is still within its grace period.
    unconfirmed: (workerId, before, limit) =>
      redis.zrangebyscore(keys.unconfirmed(workerId), '-inf', `(${before}`, 'LIMIT', 0, limit),
    async entries(workerId, tokens) {
      if (tokens.length === 0) return [];
      const values = await redis.hmget(keys.jobs(workerId), ...tokens);
      return tokens.map((token, i) => {
        const value = values[i];
        return value === null || value === undefined ? undefined : parseReservation(workerId, token, value);
      });
    },
    async confirm(workerId, tokens) {
      if (tokens.length > 0) await redis.zrem(keys.unconfirmed(workerId), ...tokens);
    },
    async reservationPage(workerId, cursor, count) {
      const [next, flat] = await redis.hscan(keys.jobs(workerId), cursor, 'COUNT', count);
      const reservations: Reservation[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const reservation = parseReservation(workerId, flat[i] ?? '', flat[i + 1] ?? '');
        if (reservation) reservations.push(reservation);
      }
      return { cursor: next, reservations };
    },
  };
}

export function parseReservation(workerId: string, token: string, value: string): Reservation | undefined {
  const match = /^(?<state>[qa])\|(?<since>\d+)(?:\|(?<first>[^|]+))?$/.exec(value);
  if (!match?.groups) return undefined;
  const { state, since, first } = match.groups as { state: string; since: string; first?: string };
  return {
    token,
    state: state === 'a' ? 'active' : 'queued',
    reservedAt: Number(since),
    jobId: jobIdFor(first ?? workerId, token),
  };
}
