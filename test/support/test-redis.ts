/**
 * The Redis a test file runs against, in either mode the service supports: one redis-server
 * (test/support/redis-server.ts, the default) or a real 3-master Redis Cluster on loopback
 * (test/support/redis-cluster.ts) when `TEST_REDIS_MODE=cluster`. Only the test support reads that
 * variable; the service is told which Redis it has as in production (`REDIS_URL` or
 * `REDIS_CLUSTER_NODES`, through `serviceOptions`).
 *
 * A file written against this helper runs unchanged in both modes, and `npm test` runs it in both
 * (test/run.ts finds such files by their import of this module). What differs between the
 * modes stays here: how the service and in-process connections reach Redis, a client for assertions
 * (keys of one command must share a slot on a cluster), a URL a job thread can start from, and what
 * taking the whole Redis away means.
 */
import { describe } from 'node:test';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisClient } from '../../src/redis/connections.js';
import type { RedisTarget } from '../../src/redis/target.js';
import { skipUnlessClusterTools, startRedisCluster } from './redis-cluster.js';
import { startRedis } from './redis-server.js';
import type { ServiceOptions } from './service.js';

export const REDIS_MODE_VARIABLE = 'TEST_REDIS_MODE';
export const REDIS_MODES = ['single', 'cluster'] as const;
export type RedisMode = (typeof REDIS_MODES)[number];

/** The mode of this run: `single` unless `TEST_REDIS_MODE` says `cluster`; any other value is a mistake. */
export function redisMode(env: NodeJS.ProcessEnv = process.env): RedisMode {
  const value = env[REDIS_MODE_VARIABLE] ?? '';
  if (value === '') return 'single';
  const mode = REDIS_MODES.find((candidate) => candidate === value);
  if (mode === undefined) {
    throw new Error(`${REDIS_MODE_VARIABLE} must be one of ${REDIS_MODES.join(', ')}, not "${value}"`);
  }
  return mode;
}

export interface ModeRedis {
  readonly mode: RedisMode;
  /** A client for assertions, closed by `stop`. On a cluster, keys of one command must share a slot. */
  readonly client: RedisClient;
  /** How a service under test reaches this Redis: spread it into `startService`'s options. */
  readonly serviceOptions: Pick<ServiceOptions, 'redisUrl' | 'clusterNodes'>;
  /** The same, as the service's own connections take it (`createRedisConnection`, in-process apps). */
  readonly target: RedisTarget;
  /**
   * A `redis://` URL of one node, for job threads that speak to Redis themselves (the gate fixture):
   * the server, or one seed node of the cluster, which answers MOVED for keys it does not serve.
   */
  readonly nodeUrl: string;
  /**
   * A new client of the caller's own (closed by the caller), with `options` for each connection; on
   * a cluster the offline queue and retry strategy apply to the cluster client as well.
   */
  connect(options?: RedisOptions): RedisClient;
  /** Takes the whole Redis away (every node of a cluster); data survives with `appendOnly`. */
  stopServer(): Promise<void>;
  /** Brings it back, and on a cluster waits until every node says `cluster_state:ok`. */
  startServer(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartModeRedisOptions {
  readonly appendOnly?: boolean;
  /**
   * One Redis requires this password, and its URL carries it. A cluster's nodes are left without one
   * (test/integration/cluster-auth.test.ts covers passwords there).
   */
  readonly password?: string;
}

async function startSingle(appendOnly: boolean, password: string | undefined): Promise<ModeRedis> {
  const redis = await startRedis({ appendOnly, ...(password === undefined ? {} : { password }) });
  return {
    mode: 'single',
    client: redis.client,
    serviceOptions: { redisUrl: redis.url },
    target: { kind: 'single', url: redis.url },
    nodeUrl: redis.url,
    connect: (options = {}) => new Redis(redis.url, options),
    stopServer: () => redis.stopServer(),
    startServer: () => redis.startServer(),
    stop: () => redis.stop(),
  };
}

async function startCluster(appendOnly: boolean): Promise<ModeRedis> {
  const cluster = await startRedisCluster({ masters: 3, appendOnly });
  const nodes = cluster.nodes.map(({ host, port }) => ({ host, port }));
  const [seed] = nodes;
  if (seed === undefined) throw new Error('the cluster has no nodes');
  const everyNode = nodes.map((_, index) => index);
  return {
    mode: 'cluster',
    client: cluster.client,
    // startService ignores redisUrl when it has cluster nodes.
    serviceOptions: { redisUrl: '', clusterNodes: cluster.nodesSpec },
    target: { kind: 'cluster', nodes, username: undefined, password: undefined, tls: false },
    nodeUrl: `redis://${seed.host}:${seed.port}`,
    connect: (options = {}) =>
      new Cluster(nodes, {
        enableOfflineQueue: options.enableOfflineQueue ?? true,
        ...(options.retryStrategy === undefined ? {} : { clusterRetryStrategy: options.retryStrategy }),
        redisOptions: options,
      }),
    stopServer: async () => {
      await Promise.all(everyNode.map((index) => cluster.stopNode(index)));
    },
    startServer: async () => {
      await Promise.all(everyNode.map((index) => cluster.startNode(index)));
      await cluster.waitUntilOk();
    },
    stop: () => cluster.stop(),
  };
}

/** Starts the Redis of this run's mode (`TEST_REDIS_MODE`). */
export function startTestRedis({ appendOnly = false, password }: StartModeRedisOptions = {}): Promise<ModeRedis> {
  return redisMode() === 'cluster' ? startCluster(appendOnly) : startSingle(appendOnly, password);
}

/**
 * Runs a test file written against this module on a Redis Cluster, as one suite named for it: test/run.ts
 * writes, for each such file, a file of its own that calls this with the file's import. The mode is set
 * before `load` imports the file, and each test file runs in a process of its own, so it reaches that
 * file alone. Without `redis-cli` the suite is skipped and says why, except in CI, where it fails.
 */
export function describeOnCluster(file: string, load: () => Promise<unknown>): void {
  process.env[REDIS_MODE_VARIABLE] = 'cluster';
  describe(
    `${file} on a Redis Cluster (${REDIS_MODE_VARIABLE}=cluster)`,
    { skip: skipUnlessClusterTools() },
    async () => {
      await load();
    },
  );
}
