/**
 * The ledger's Lua scripts (`src/ledger/lua/`), registered on one connection. Each connection that
 * runs ledger scripts registers its own: a script belongs to the connection it is sent on, which is
 * what keeps a request's undo behind the command it undoes.
 */
import { fileURLToPath } from 'node:url';
import type { RedisClient } from '../redis/connections.js';
import { scriptsIn, type ScriptCall } from '../redis/scripts.js';

const LUA_DIRECTORY = fileURLToPath(new URL('./lua/', import.meta.url));

export type LedgerScripts = (name: string) => ScriptCall;

export function ledgerScripts(redis: RedisClient): LedgerScripts {
  return scriptsIn(redis, LUA_DIRECTORY);
}

/**
 * A clock the ledger's objects may take instead of Redis's, in milliseconds: tests pass one to move
 * time on rather than sleep through a lease. Production passes none, and every host keeps judging
 * time by the one clock of Redis.
 */
export type Clock = () => number;

/** The clock argument of a ledger script: "" has the script read Redis TIME; a test's time otherwise. */
export function clockArgument(clock: Clock | undefined): string {
  return clock === undefined ? '' : String(Math.floor(clock()));
}

/** Milliseconds from a Redis TIME reply: the one clock every host judges time by. */
export function redisMillis([seconds, micros]: readonly (string | number)[]): number {
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}
