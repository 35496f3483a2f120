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
 *
 * Through Redis Sentinel, a connection asks the sentinels for the master and connects to it; when a
 * replica is promoted, the old master's connection breaks (or the sentinels' `+switch-master` closes
 * it) and the reconnect asks the sentinels again, so every role follows the promotion by itself, and
 * each role keeps its outage behaviour meanwhile (a request answers 503 within its time-out).
 */
import { Redis, type Cluster, type ClusterOptions, type RedisOptions } from './ioredis.js';
import type { ClusterTarget, RedisTarget, SentinelTarget } from './target.js';
import type { Logger } from '../logging/logger.js';
import { MigrationAwareCluster, TRYAGAIN_DELAY_MS, type MigrationPolicy } from './migration-aware-cluster.js';
import { reportOutage } from '../logging/outage.js';
import { SwitchSafeSentinelConnector } from './sentinel-connector.js';

export type ConnectionRole = 'command' | 'consumer' | 'subscriber';

/** A connection to one Redis, or to a Redis Cluster: the same commands, routed by key on a cluster. */
export type RedisClient = Redis | Cluster;

const ROLE_OPTIONS: Record<ConnectionRole, RedisOptions> = {
  command: { maxRetriesPerRequest: 1, enableOfflineQueue: false },
  consumer: { maxRetriesPerRequest: null },
  subscriber: { maxRetriesPerRequest: null },
};

/** How long to wait before reconnecting: soon at first, then every 2 s. */
const retryDelay = (attempt: number) => Math.min(100 * attempt, 2_000);

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
  /**
   * Logs no error before the connection is first ready: a process's start-up waits for its Redis and
   * says so in one line for all its connections (wait-for-redis.ts), not one line per connection.
   */
  readonly quietUntilReady?: boolean;
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
  { commandTimeoutMs, quietUntilReady = false }: ConnectionOptions = {},
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
      : target.kind === 'sentinel'
        ? sentinelConnection(target, options)
        : clusterConnection(target, options, clusterBehaviour(role, commandTimeoutMs));
  // ioredis emits an error on every reconnect attempt while Redis is away, and `ready` once it is back.
  const outage = reportOutage({
    logger,
    level: 'warn',
    about: { connection: role },
    error: { event: 'redis.connection-error', msg: 'redis connection error; reconnecting' },
    restored: { event: 'redis.connection-restored', msg: 'redis connection restored' },
  });
  let reporting = !quietUntilReady;
  redis.on('error', (error: Error) => {
    if (reporting) outage.error(error);
  });
  redis.on('ready', () => {
    reporting = true;
    outage.restored();
  });
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

function sentinelConnection(target: SentinelTarget, options: RedisOptions): Redis {
  return new Redis({
    ...options,
    sentinels: [...target.sentinels],
    name: target.master,
    role: 'master',
    // The sentinels are asked again after a failed round as the master is after a failed connect.
    sentinelRetryStrategy: retryDelay,
    // Listens to the sentinels' `+switch-master`: a promotion closes the connection to the old master
    // at once, instead of when its socket fails (a master cut off by the network can take long to).
    // Not ioredis's own detector, which can end a connection for good (sentinel-connector.ts).
    Connector: SwitchSafeSentinelConnector,
    ...(target.sentinelUsername === undefined ? {} : { sentinelUsername: target.sentinelUsername }),
    ...(target.sentinelPassword === undefined ? {} : { sentinelPassword: target.sentinelPassword }),
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
    ...(target.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
  });
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
