/**
 * The ledgers' settings from the configuration, in one place for every ledger a process makes
 * (build.ts) and for the in-process test app, so that both count, cap and hand out alike.
 */
import type { Config } from '../config/config.js';
import type { Ledger, LedgerOptions } from '../ledger/ledger.js';
import { createGroupLedger, type GroupLedger } from '../ledger/groups.js';
import type { RedisClient } from '../redis/connections.js';

/** The ledger's settings from the configuration, for every ledger a process (or a test app) makes. */
export function ledgerOptionsFrom(config: Config): Omit<LedgerOptions, 'redis'> {
  return {
    prefix: config.prefix,
    workerTtlMs: config.workerTtlMs,
    maxBacklog: config.maxBacklog,
    prefetch: config.prefetch,
    groupConcurrency: config.groupConcurrency,
  };
}

/** The group ledger that goes with a ledger: on its connection, covering the workers it covers. */
export function groupLedgerFor(config: Config, redis: RedisClient, ledger: Ledger): GroupLedger {
  return createGroupLedger({
    redis,
    prefix: config.prefix,
    workerTtlMs: config.workerTtlMs,
    prefetch: config.prefetch,
    groupConcurrency: config.groupConcurrency,
    members: () => ledger.memberIds(),
    refreshMembers: () => ledger.refreshMembers(),
  });
}
