/**
 * Redis connections, made by their owner and closed by it. Three kinds with different needs:
 *
 * - `command`: requests from HTTP (reserve, add, read). Fails at once while Redis is away (no
 *   offline queue, one retry) and gives up on a hung Redis after a time-out, so a client gets a 503
 *   instead of a hung request. A timed-out command may still run later: everything it can reserve
 *   is keyed by a token and released by the reconciler.
 * - `subscriber`: pub/sub only (a subscribed connection can send nothing else); it waits out
 *   outages like the consumer's, and ioredis subscribes it again after a reconnect.
 * - `consumer`: BullMQ's Worker and the ledger updates of running jobs. It queues commands while
 *   Redis is away and sends them when it returns (`maxRetriesPerRequest: null`), so a job that ends
 *   during an outage is still recorded, in order, when Redis comes back.
 *
 * On a Redis Cluster, a slot that migrates (`redis-cli --cluster reshard`) refuses, until its last
 * key has moved, every script and transaction over keys of which some are on either side: BullMQ's
 * and the ledger's scripts name keys that do not exist, so that is each of them, for the whole
 * migration of the slot (TRYAGAIN, measured in test/faults/cluster-reshard.test.ts). Every connection
 * waits that out: ioredis retries single commands and scripts itself, and transactions, which it
 * gives up on after an ASK, are sent again here (`MigrationAwareCluster`). A request still waits no
 * longer than `commandTimeoutMs` in all, so a cluster that is down fails it as fast as one Redis.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis, type ChainableCommander, type ClusterOptions, type Command, type RedisOptions } from 'ioredis';
import type { ClusterTarget, RedisTarget } from './target.js';
import type { Logger } from '../logging/logger.js';
import { throttled } from '../logging/throttle.js';

export type ConnectionRole = 'command' | 'consumer' | 'subscriber';

/** A connection to one Redis, or to a Redis Cluster: the same commands, routed by key on a cluster. */
export type RedisClient = Redis | Cluster;

const ROLE_OPTIONS: Record<ConnectionRole, RedisOptions> = {
  command: { maxRetriesPerRequest: 1, enableOfflineQueue: false },
  consumer: { maxRetriesPerRequest: null },
  subscriber: { maxRetriesPerRequest: null },
};

/** Logs a connection's errors without flooding the log while Redis stays down. */
const ERROR_LOG_INTERVAL_MS = 5_000;

/** How long to wait before reconnecting: soon at first, then every 2 s. */
const retryDelay = (attempt: number) => Math.min(100 * attempt, 2_000);

/**
 * How often a request's command refused by a migrating slot (TRYAGAIN) is sent again. ioredis sends
 * it to a random node first, which answers MOVED unless it serves the slot: two redirections a retry.
 */
const TRYAGAIN_DELAY_MS = 50;
/** How long connections that wait out outages send a transaction refused by a migrating slot again. */
const MIGRATION_PATIENCE_MS = 10_000;

/** What a cluster connection of each role does about migrating slots, redirections and reconnects. */
function clusterBehaviour(
  role: ConnectionRole,
  commandTimeoutMs: number | undefined,
): { readonly options: ClusterOptions; readonly policy: MigrationPolicy } {
  if (role !== 'command') {
    return {
      options: {
        // While a slot migrates, a script over its keys answers TRYAGAIN until the move is done;
        // these connections wait it out, as they wait out outages (measured in redis-cluster.test.ts).
        retryDelayOnTryAgain: 200,
        maxRedirections: 50,
        // No CLUSTER INFO check before `ready`: when it finds `cluster_state:fail`, ioredis reconnects
        // but never settles the `connect()` that ran it. BullMQ awaits that call to reconnect its
        // blocking connection after an error, so a Worker whose reconnect met a failed cluster took
        // no job again, even once the cluster was back (test/faults/cluster-down.test.ts). Without
        // the check, a failed cluster answers CLUSTERDOWN, which these connections retry and then
        // report, as they do when a cluster fails under them.
        enableReadyCheck: false,
      },
      policy: { commandDeadlineMs: undefined, transactionPatienceMs: MIGRATION_PATIENCE_MS },
    };
  }
  // Without a time-out (tools, tests): ioredis's defaults.
  if (commandTimeoutMs === undefined) {
    return { options: {}, policy: { commandDeadlineMs: undefined, transactionPatienceMs: 0 } };
  }
  // A request waits out a migrating slot for as long as it may wait for Redis at all, and no longer:
  // enough redirections for ioredis to retry TRYAGAIN until then (and a few MOVED and ASK on top),
  // with the time-out as the one limit of the whole, so that a cluster that is down fails it as
  // fast as one Redis that is down.
  return {
    options: {
      retryDelayOnTryAgain: TRYAGAIN_DELAY_MS,
      maxRedirections: Math.ceil((2 * commandTimeoutMs) / TRYAGAIN_DELAY_MS) + 16,
    },
    policy: { commandDeadlineMs: commandTimeoutMs, transactionPatienceMs: commandTimeoutMs },
  };
}

interface ConnectionOptions {
  readonly commandTimeoutMs?: number;
}

/** A URL is one Redis (tests and tools use this form); a target may be a cluster. */
export function createRedisConnection(
  url: string,
  role: ConnectionRole,
  logger: Logger,
  opts?: ConnectionOptions,
): Redis;
export function createRedisConnection(
  target: RedisTarget,
  role: ConnectionRole,
  logger: Logger,
  opts?: ConnectionOptions,
): RedisClient;
export function createRedisConnection(
  where: RedisTarget | string,
  role: ConnectionRole,
  logger: Logger,
  { commandTimeoutMs }: ConnectionOptions = {},
): RedisClient {
  const target: RedisTarget = typeof where === 'string' ? { kind: 'single', url: where } : where;
  const options: RedisOptions = {
    ...ROLE_OPTIONS[role],
    ...(role === 'command' && commandTimeoutMs !== undefined ? { commandTimeout: commandTimeoutMs } : {}),
    connectionName: `bullpen-${role}`,
    retryStrategy: retryDelay,
  };
  const redis: RedisClient =
    target.kind === 'single'
      ? new Redis(target.url, options)
      : clusterConnection(target, options, clusterBehaviour(role, commandTimeoutMs));
  const report = throttled(ERROR_LOG_INTERVAL_MS, (error: Error, { suppressed }: { suppressed: number }) =>
    logger.warn({ err: error, connection: role, suppressed }, 'redis connection error'),
  );
  redis.on('error', (error: Error) => report(error));
  return redis;
}

function clusterConnection(
  target: ClusterTarget,
  options: RedisOptions,
  behaviour: ReturnType<typeof clusterBehaviour>,
): Cluster {
  return new MigrationAwareCluster(
    [...target.nodes],
    {
      // The cluster client keeps its own queue of commands while it (re)learns the slots: the
      // role decides whether commands wait there or fail at once, as on one Redis.
      enableOfflineQueue: options.enableOfflineQueue ?? true,
      clusterRetryStrategy: retryDelay,
      // A TLS certificate is checked against the name a node is reached by. ioredis resolves the
      // seeds' host names to addresses before it connects, so a certificate that names the host, as
      // a managed Redis's does, was checked against an address and refused: seeds are reached by
      // the name given (test/integration/redis-tls.test.ts, hostname-only certificate).
      ...(target.tls ? { dnsLookup: keepHostName } : {}),
      ...behaviour.options,
      redisOptions: {
        ...options,
        ...(target.username === undefined ? {} : { username: target.username }),
        ...(target.password === undefined ? {} : { password: target.password }),
        ...(target.tls ? { tls: {} } : {}),
      },
    },
    behaviour.policy,
  );
}

/** ioredis's `dnsLookup` that leaves a host name as it is, for the socket to resolve. */
const keepHostName: NonNullable<ClusterOptions['dnsLookup']> = (hostname, callback) => callback(null, hostname);

export function waitUntilReady(redis: RedisClient, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`Redis was not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}

/** Closes politely, and gives up on a connection that cannot say goodbye (Redis is down). */
export async function closeConnection(redis: RedisClient): Promise<void> {
  if (redis.status === 'end') return;
  try {
    await Promise.race([
      redis.quit(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('quit timed out')), 1_000)),
    ]);
  } catch {
    redis.disconnect();
  }
}

interface MigrationPolicy {
  /**
   * The time limit of each command sent on its own, over every redirection and retry that ioredis
   * makes for it; undefined for none. (ioredis starts a command's `commandTimeout` only once a node
   * takes it, so the retries of a command refused before that, while a master is away, had no bound.)
   */
  readonly commandDeadlineMs: number | undefined;
  /** How long a transaction refused by a migrating slot is sent again; 0 for never. */
  readonly transactionPatienceMs: number;
}

/**
 * A Cluster whose commands have one deadline and whose transactions survive a slot migration. Both
 * are missing from ioredis: it retries a transaction refused with TRYAGAIN, but not after it has
 * followed an ASK (its retry then holds an ASKING that it takes for a write), and it gives up on one
 * after `maxRedirections`, without a time limit for the whole. A transaction refused by a migration
 * was discarded by Redis (nothing of it ran), so sending it again is safe.
 */
class MigrationAwareCluster extends Cluster {
  constructor(
    nodes: ConstructorParameters<typeof Cluster>[0],
    options: ClusterOptions,
    private readonly policy: MigrationPolicy,
  ) {
    super(nodes, options);
  }

  override sendCommand(command: Command, stream?: Parameters<Cluster['sendCommand']>[1], node?: unknown): unknown {
    // A pipeline's commands come with their node, and their pipeline has its own limit (below).
    // Set before ioredis's own per-node timer, this one runs from the first attempt to the last.
    // (`policy` is set once the base constructor has returned: nothing is limited before.)
    const deadlineMs = (this.policy as MigrationPolicy | undefined)?.commandDeadlineMs;
    if (deadlineMs !== undefined && node === undefined) command.setTimeout(deadlineMs);
    return super.sendCommand(command, stream, node);
  }

  override multi(options: { pipeline: false }): Promise<'OK'>;
  override multi(): ChainableCommander;
  override multi(options: { pipeline: true }): ChainableCommander;
  override multi(commands?: unknown[][]): ChainableCommander;
  override multi(arg?: { pipeline: boolean } | unknown[][]): ChainableCommander | Promise<'OK'> {
    const base = Cluster.prototype.multi.bind(this) as (...args: unknown[]) => ChainableCommander | Promise<'OK'>;
    // The other forms (commands given up front, MULTI outside a pipeline) are not used here: as ioredis has them.
    if (arg !== undefined) return base(arg);
    if (this.policy.transactionPatienceMs <= 0) return base();
    return replayableTransaction(() => base() as ChainableCommander, this.policy);
  }
}

/** Redis's answers of a slot that is migrating, or has just moved: the command did not run. */
const MIGRATION_REFUSAL = /^(TRYAGAIN|ASK|MOVED) /;

/**
 * Whether a transaction was refused, whole, because of a migrating slot: EXEC itself answered
 * TRYAGAIN (keys on both sides), or Redis discarded the transaction (EXECABORT) because it refused
 * commands while queueing them with ASK, MOVED or TRYAGAIN.
 */
function refusedByMigration(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (MIGRATION_REFUSAL.test(error.message)) return true;
  const previous: unknown = (error as { previousErrors?: unknown }).previousErrors;
  return (
    error.message.startsWith('EXECABORT') &&
    Array.isArray(previous) &&
    previous.length > 0 &&
    previous.every((cause: unknown) => cause instanceof Error && MIGRATION_REFUSAL.test(cause.message))
  );
}

/**
 * A transaction that can be sent again: it keeps every call made on it (commands, and scripts such
 * as BullMQ's, which queue themselves on it), and when EXEC is refused by a migrating slot it makes
 * the same calls on a fresh transaction and sends that, until the patience runs out. A request's
 * transaction ends at its deadline in all, like its single commands.
 */
function replayableTransaction(open: () => ChainableCommander, policy: MigrationPolicy): ChainableCommander {
  const calls: { readonly method: string | symbol; readonly args: unknown[] }[] = [];
  const first = open();

  const execute = async (): Promise<[error: Error | null, result: unknown][] | null> => {
    const startedAt = Date.now();
    let transaction = first;
    for (;;) {
      try {
        return await transaction.exec();
      } catch (error) {
        const left = policy.transactionPatienceMs - (Date.now() - startedAt);
        if (!refusedByMigration(error) || left < TRYAGAIN_DELAY_MS) throw error;
      }
      await sleep(TRYAGAIN_DELAY_MS);
      transaction = open();
      for (const { method, args } of calls) {
        const replay: unknown = Reflect.get(transaction, method);
        if (typeof replay === 'function') Reflect.apply(replay, transaction, args);
      }
    }
  };

  const recorder: ChainableCommander = new Proxy(first, {
    get(target, property) {
      if (property === 'exec') {
        return () =>
          policy.commandDeadlineMs === undefined ? execute() : withDeadline(execute(), policy.commandDeadlineMs);
      }
      const value: unknown = Reflect.get(target, property);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        calls.push({ method: property, args });
        const result: unknown = Reflect.apply(value, target, args);
        // Chained calls go on through the recorder, so that they are kept too.
        return result === target ? recorder : result;
      };
    },
  });
  return recorder;
}

/**
 * Rejects as ioredis's own `commandTimeout` does once `ms` have passed. As with a timed-out command,
 * what was sent may still run later; everything a request can leave behind is undone or reconciled.
 */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('Command timed out')), ms);
  });
  // A transaction that settles after its deadline has no one waiting for it.
  promise.catch(() => {});
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
