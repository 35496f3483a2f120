/**
 * A real 3-master Redis Cluster with the real service started on it (`REDIS_CLUSTER_NODES`), for the
 * test files whose subject is the cluster itself: its faults, a reshard, crashes between its slots, a
 * password. They need the cluster's own handle (stop a node, move slots, ask who serves a key), which
 * the mode-neutral test/support/test-redis.ts does not give; this module starts the two in order and
 * stops them in reverse, and stops the cluster when the service fails to start, so that no file
 * repeats either or leaks redis-server processes from a failed `before`.
 */
import { Redis } from 'ioredis';
import { queueNameFor } from '../../src/contracts/names.js';
import { startRedisCluster, type StartClusterOptions, type TestRedisCluster } from './redis-cluster.js';
import { startService, type Service, type ServiceOptions } from './service.js';

/** Issue 12's cluster: the fewest masters `redis-cli --cluster create` accepts. */
const MASTERS = 3;

export interface ClusterServiceOptions extends Omit<ServiceOptions, 'redisUrl' | 'clusterNodes'> {
  /** How the cluster is started; 3 masters unless `masters` says otherwise. */
  readonly cluster?: StartClusterOptions;
  /**
   * A password every node asks for (`requirepass`, set once the cluster is up), which the service is
   * given in its seed URLs (`redis://:<password>@host:port`). The cluster bus needs none, and there
   * are no replicas to tell.
   */
  readonly password?: string;
}

export interface ClusterService {
  readonly cluster: TestRedisCluster;
  readonly service: Service;
  /** The index (in `cluster.nodes`) of the master that holds the queue of worker `workerId`. */
  masterOfQueue(workerId: string): Promise<number>;
  /** Stops the service, then the cluster. Safe to call twice. */
  stop(): Promise<void>;
}

async function requirePassword(cluster: TestRedisCluster, password: string): Promise<void> {
  for (const { host, port } of cluster.nodes) {
    const node = new Redis({ host, port, lazyConnect: true });
    await node.connect();
    await node.config('SET', 'requirepass', password);
    node.disconnect();
  }
}

function seedNodes(cluster: TestRedisCluster, password: string | undefined): string {
  if (password === undefined) return cluster.nodesSpec;
  const secret = encodeURIComponent(password);
  return cluster.nodes.map(({ host, port }) => `redis://:${secret}@${host}:${port}`).join(',');
}

async function serviceOn(
  cluster: TestRedisCluster,
  password: string | undefined,
  options: Omit<ServiceOptions, 'redisUrl' | 'clusterNodes'>,
): Promise<Service> {
  if (password !== undefined) await requirePassword(cluster, password);
  return startService({ ...options, redisUrl: '', clusterNodes: seedNodes(cluster, password) });
}

export async function startClusterService({
  cluster: clusterOptions = {},
  password,
  ...serviceOptions
}: ClusterServiceOptions = {}): Promise<ClusterService> {
  const cluster = await startRedisCluster({ masters: MASTERS, ...clusterOptions });
  const service = await serviceOn(cluster, password, serviceOptions).catch(async (error: unknown) => {
    // The caller's `after` cannot stop a cluster it was never given.
    await cluster.stop();
    throw error;
  });
  return {
    cluster,
    service,
    async masterOfQueue(workerId) {
      const port = await cluster.masterOf(`${service.prefix}:${queueNameFor(workerId)}:wait`);
      const index = cluster.nodes.findIndex((node) => node.port === port);
      if (index < 0) throw new Error(`port ${port}, which serves the queue of ${workerId}, is no node of the cluster`);
      return index;
    },
    async stop() {
      await service.stop();
      await cluster.stop();
    },
  };
}
