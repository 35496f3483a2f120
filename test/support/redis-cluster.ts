/**
 * A real Redis Cluster for tests: `masters` redis-server processes in cluster mode on free loopback
 * ports, no replicas unless asked, joined by `redis-cli --cluster create`. It exists for issue 12
 * (running Bullpen on Redis Cluster): hash tags, CROSSSLOT, MOVED/ASK during a reshard and a master
 * restart can only be proved against a real cluster, never against a single server or a mock. With
 * `replicas` (issue 21), each master gets that many replicas, so that a master killed with SIGKILL
 * is replaced by a promoted replica, as a production cluster fails over.
 *
 * Each node has its own data directory (its `nodes.conf`, its AOF and its `redis.log`) under one
 * temporary folder removed by `stop`. A node can be stopped and started again on the same port and
 * directory: it keeps its node id and slots from `nodes.conf`, and its keys when `appendOnly` is on.
 * Both the client port and the cluster bus port are chosen free (`--cluster-port`), so a client port
 * above 55535 cannot make the default bus port (client port + 10000) invalid.
 *
 * Start-up errors carry what the tools said: redis-cli's output and each node's last log lines.
 *
 * With `tls`, every node serves TLS only, on its client port and on the cluster bus, with the given
 * certificates (test/support/tls-certs.ts); the harness's own connections and redis-cli then trust
 * the test CA, as a service must be told to.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { logTail } from '../../src/local-redis/launch.js';
import { findOnPath } from '../../src/platform/find-on-path.js';
import { probeRedis } from '../../src/local-redis/ping.js';
import { freePort, startOnFreePorts } from './ports.js';
import { redisTlsArgs, type TestCertificates } from './tls-certs.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);

const HOST = '127.0.0.1';
export const CLUSTER_SLOTS = 16_384;
const LOG_FILE = 'redis.log';
/** How many times a node's first start is tried, on fresh ports, when a port was taken meanwhile. */
const PORT_RETRIES = 3;
/** A node answers PING within this after it is spawned, AOF loading included, on a busy 2-core machine. */
const NODE_START_TIMEOUT_MS = 20_000;
/** `cluster_state:ok` on every node after create or a restart; gossip is slow on a loaded machine. */
const CLUSTER_OK_TIMEOUT_MS = 60_000;
/** redis-cli --cluster create / reshard: both wait for the nodes to agree, slowly. */
const CLI_TIMEOUT_MS = 120_000;
/** SIGTERM lets a node write out its AOF; SIGKILL after this. */
const STOP_TIMEOUT_MS = 15_000;
/** Keys per MIGRATE while a slot moves: redis-cli's `--cluster-pipeline` default. */
const MIGRATE_BATCH = 10;
/** MIGRATE's own time-out (ms) for one batch, as redis-cli's `--cluster-timeout` default. */
const MIGRATE_TIMEOUT_MS = 60_000;

export interface ClusterNode {
  readonly host: string;
  readonly port: number;
  /** The node's cluster id (40 hex digits), kept across restarts in its `nodes.conf`. */
  readonly id: string;
  /** The node's data directory: `nodes.conf`, AOF, `redis.log`. */
  readonly dir: string;
}

export interface StartClusterOptions {
  readonly masters?: number;
  /**
   * Replicas per master (`--cluster-replicas`), 0 when not given: the cluster then has
   * `masters * (1 + replicas)` nodes, and redis-cli chooses which of them are masters.
   */
  readonly replicas?: number;
  readonly appendOnly?: boolean;
  /** `cluster-node-timeout`; Redis's default (15 000 ms) when not given. */
  readonly nodeTimeoutMs?: number;
  /** Options of the assertion client `client`, merged over the defaults. */
  readonly clientOptions?: ClusterOptions;
  /** Serve TLS only (client port and cluster bus), with these certificates. */
  readonly tls?: TestCertificates;
  /**
   * A host name the nodes give clients instead of their address (CLUSTER SLOTS, MOVED), as a managed
   * cluster does: `cluster-announce-hostname` with `cluster-preferred-endpoint-type hostname`.
   */
  readonly announceHostname?: string;
}

export interface MoveSlotsOptions {
  /** Keys per MIGRATE; redis-cli's `--cluster-pipeline` default (10) when not given. */
  readonly keysPerBatch?: number;
  /**
   * A pause after each MIGRATE batch (and before the slot's owner is switched), 0 when not given. It
   * keeps each slot half-moved (MIGRATING on its source, IMPORTING on its target, keys on both) for
   * longer, as a slot with many keys is on a busy cluster, so that a test's load meets that state.
   */
  readonly pauseMs?: number;
}

export interface MovedSlot {
  readonly slot: number;
  /** The node index that served the slot before. */
  readonly from: number;
  /** Keys the slot held when it started to move, moved by MIGRATE. */
  readonly keys: number;
}

export interface TestRedisCluster {
  readonly nodes: readonly ClusterNode[];
  /**
   * The seed nodes as REDIS_CLUSTER_NODES takes them: `127.0.0.1:p1,127.0.0.1:p2,...`, or with `tls`
   * `rediss://127.0.0.1:p1,...`.
   */
  readonly nodesSpec: string;
  /** An ioredis Cluster for assertions, ready when returned; closed by `stop`. */
  readonly client: Cluster;
  /**
   * Stops node `index` with SIGTERM (AOF flushed), or with `signal` (SIGKILL: a crash, nothing
   * written out), and resolves once it has exited.
   */
  stopNode(index: number, signal?: NodeJS.Signals): Promise<void>;
  /**
   * Starts node `index` again on the same port and directory; resolves once it answers PING. It may
   * still say `cluster_state:fail` then: call `waitUntilOk` to wait for the cluster.
   */
  startNode(index: number): Promise<void>;
  /** Whether node `index`'s process runs (started and not stopped). */
  isRunning(index: number): boolean;
  /** Waits until every running node says `cluster_state:ok`, with all slots assigned and every node known. */
  waitUntilOk(timeoutMs?: number): Promise<void>;
  /** `CLUSTER INFO` of node `index`, as fields. */
  clusterInfo(index: number): Promise<Record<string, string>>;
  /** The port of the master that serves the slot of `key` (CLUSTER KEYSLOT + CLUSTER SLOTS). */
  masterOf(key: string): Promise<number>;
  /** The indexes of the nodes that replicate node `index`, as it says (CLUSTER REPLICAS). */
  replicasOf(index: number): Promise<number[]>;
  /** The slot of `key`, as the cluster computes it (CLUSTER KEYSLOT). */
  slotOf(key: string): Promise<number>;
  /**
   * `redis-cli --cluster reshard`: moves `slots` slots from node `from` to node `to` (redis-cli takes
   * the lowest-numbered slots of the source), keys included. Resolves with redis-cli's output.
   */
  reshard(from: number, to: number, slots: number): Promise<string>;
  /**
   * Moves the given slots, one after another, to node `to`, the way `redis-cli --cluster reshard`
   * moves each slot (which cannot be told which slots): `CLUSTER SETSLOT <slot> IMPORTING` on the
   * target, `MIGRATING` on the source, `MIGRATE` of its keys in batches, then `SETSLOT <slot> NODE`
   * on the target, the source and every other running node. Slots that `to` serves already are left
   * alone. Resolves with what moved; each slot's new owner is known to every node by then.
   */
  moveSlots(slots: readonly number[], to: number, options?: MoveSlotsOptions): Promise<MovedSlot[]>;
  /** Closes the client, stops every node, removes the data directories. Safe to call twice. */
  stop(): Promise<void>;
}

/** The first binary of `redis-server` and `redis-cli` missing from PATH, or undefined when both are there. */
export function missingClusterBinary(): string | undefined {
  return ['redis-server', 'redis-cli'].find((binary) => findOnPath(binary, process.env.PATH) === undefined);
}

/**
 * The `skip` option of tests that need a Redis Cluster. Outside CI a missing binary skips them and
 * says how to install it; in CI (`CI` set) they run and fail instead, so CI never passes without them.
 */
export function skipUnlessClusterTools(): string | false {
  const missing = missingClusterBinary();
  if (missing === undefined || (process.env.CI ?? '') !== '') return false;
  return `${missing} is not installed; apt-get install redis-server redis-tools`;
}

/** CLUSTER INFO's `field:value` lines as a record. */
export function parseClusterInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return fields;
}

/** One command on a short-lived connection to one node, failing fast when the node is away. */
async function onNode<T>(port: number, command: (redis: Redis) => Promise<T>, options: RedisOptions = {}): Promise<T> {
  const redis = new Redis({
    ...options,
    host: HOST,
    port,
    lazyConnect: true,
    connectTimeout: 2_000,
    commandTimeout: 5_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  redis.on('error', () => {}); // the command's own rejection says what went wrong
  try {
    await redis.connect();
    return await command(redis);
  } finally {
    redis.disconnect();
  }
}

async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

interface NodeState {
  readonly port: number;
  readonly busPort: number;
  readonly dir: string;
  id: string;
  child: ChildProcess | undefined;
}

/**
 * A cluster, started once more from scratch (fresh ports and directories) when `redis-cli --cluster
 * create` ran out of time waiting for the nodes to agree on the configuration: CI saw that once on a
 * loaded machine, with every node at `cluster_state:ok`. A second start costs less than a failed file.
 */
export async function startRedisCluster(options: StartClusterOptions = {}): Promise<TestRedisCluster> {
  try {
    return await startClusterOnce(options);
  } catch (error) {
    if (!createTimedOut(error)) throw error;
    process.stdout.write(`redis-cli --cluster create timed out; starting the cluster again: ${String(error)}\n`);
    return startClusterOnce(options);
  }
}

/** A failed `redis-cli --cluster create` that was killed at its time-out (see `cli`). */
function createTimedOut(error: unknown): boolean {
  const killed = error instanceof Error && (error.cause as { killed?: boolean } | undefined)?.killed === true;
  return killed && / --cluster create /.test(error.message);
}

async function startClusterOnce({
  masters = 3,
  replicas = 0,
  appendOnly = false,
  nodeTimeoutMs,
  clientOptions = {},
  tls,
  announceHostname,
}: StartClusterOptions = {}): Promise<TestRedisCluster> {
  if (masters < 3) throw new Error(`redis-cli --cluster create needs at least 3 masters, not ${masters}`);
  if (!Number.isInteger(replicas) || replicas < 0) throw new Error(`replicas must be 0 or more, not ${replicas}`);
  const total = masters * (1 + replicas);
  const missing = missingClusterBinary();
  if (missing !== undefined) {
    throw new Error(`${missing} is not on PATH; install it with \`sudo apt-get install redis-server redis-tools\``);
  }
  const root = mkdtempSync(join(tmpdir(), 'bullpen-cluster-'));
  const ports = await freePorts(total * 2);
  const states: NodeState[] = Array.from({ length: total }, (_, index) => {
    const dir = join(root, `node-${index}`);
    mkdirSync(dir);
    return { port: ports[index * 2] as number, busPort: ports[index * 2 + 1] as number, dir, id: '', child: undefined };
  });
  let client: Cluster | undefined;
  let stopped: Promise<void> | undefined;
  /**
   * What every connection of the harness adds to reach a node, with `tls`: trust in the test CA, and
   * the certificate checked for `localhost`, the one name every test certificate lists.
   */
  const nodeOptions: RedisOptions = tls === undefined ? {} : { tls: { ca: tls.ca, servername: 'localhost' } };
  const onPort = <T>(port: number, command: (redis: Redis) => Promise<T>): Promise<T> =>
    onNode(port, command, nodeOptions);

  const state = (index: number): NodeState => {
    const node = states[index];
    if (!node) throw new Error(`the cluster has no node ${index} (it has ${total})`);
    return node;
  };
  const running = (node: NodeState): boolean =>
    node.child !== undefined && node.child.exitCode === null && node.child.signalCode === null;
  const logsOf = (nodes: readonly NodeState[]): string =>
    nodes
      .map((node) => `--- node ${node.port} (${node.dir}) ---\n${logTail(join(node.dir, LOG_FILE), 0, 15).join('\n')}`)
      .join('\n');

  const startNode = async (index: number): Promise<void> => {
    const node = state(index);
    if (running(node)) throw new Error(`node ${index} (port ${node.port}) is already running`);
    const logFile = join(node.dir, LOG_FILE);
    const offset = fileSize(logFile);
    const args = [
      ...(tls === undefined
        ? ['--port', String(node.port)]
        : [...redisTlsArgs(tls, node.port), '--tls-cluster', 'yes']),
      '--cluster-port',
      String(node.busPort),
      '--bind',
      HOST,
      '--dir',
      node.dir,
      '--logfile',
      logFile,
      '--save',
      '',
      '--appendonly',
      appendOnly ? 'yes' : 'no',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      ...(nodeTimeoutMs === undefined ? [] : ['--cluster-node-timeout', String(nodeTimeoutMs)]),
      ...(announceHostname === undefined
        ? []
        : ['--cluster-announce-hostname', announceHostname, '--cluster-preferred-endpoint-type', 'hostname']),
    ];
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    let spawnError: Error | undefined;
    child.once('error', (error) => (spawnError = error));
    node.child = child;
    try {
      await waitFor(
        async () => {
          if (spawnError !== undefined) throw spawnError;
          // Exited: no use waiting for it (the error below says so, with its log).
          if (child.exitCode !== null || child.signalCode !== null) return 'exited';
          // -LOADING while it reads its AOF: not answering yet. The raw probe speaks no TLS.
          if (tls !== undefined) return (await onPort(node.port, (redis) => redis.ping())) === 'PONG';
          return (await probeRedis(HOST, node.port)).state === 'pong';
        },
        { timeoutMs: NODE_START_TIMEOUT_MS, what: `cluster node ${index} on port ${node.port}` },
      ).then((outcome) => {
        if (outcome === 'exited') throw new Error(`redis-server exited with ${child.exitCode ?? child.signalCode}`);
      });
    } catch (error) {
      const tail = logTail(logFile, offset).join('\n');
      throw new Error(`${(error as Error).message}; its log says:\n${tail}`, { cause: error });
    }
  };

  const stopNode = async (index: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const node = state(index);
    const child = node.child;
    if (!child || !running(node)) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  const clusterInfo = async (index: number): Promise<Record<string, string>> =>
    parseClusterInfo(await onPort(state(index).port, (redis) => redis.cluster('INFO')));

  const waitUntilOk = async (timeoutMs = CLUSTER_OK_TIMEOUT_MS): Promise<void> => {
    let last: string[] = [];
    try {
      await waitFor(
        async () => {
          const live = states.filter(running);
          const infos = await Promise.all(
            live.map((node) => onPort(node.port, (redis) => redis.cluster('INFO')).then(parseClusterInfo)),
          );
          last = infos.map(
            (info, i) =>
              `${live[i]?.port}: state ${info.cluster_state}, slots ok ${info.cluster_slots_ok}, ` +
              `known nodes ${info.cluster_known_nodes}`,
          );
          return infos.every(
            (info) =>
              info.cluster_state === 'ok' &&
              info.cluster_slots_ok === String(CLUSTER_SLOTS) &&
              info.cluster_known_nodes === String(total),
          );
        },
        { timeoutMs, intervalMs: 200, what: 'cluster_state:ok on every node' },
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}; last seen: ${last.join('; ')}\n${logsOf(states)}`, {
        cause: error,
      });
    }
  };

  const cli = async (command: readonly string[]): Promise<string> => {
    const args = tls === undefined ? command : ['--tls', '--cacert', tls.caFile, ...command];
    try {
      const { stdout, stderr } = await run('redis-cli', args, { timeout: CLI_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
      return `${stdout}${stderr}`;
    } catch (error) {
      const failed = error as Error & { stdout?: string; stderr?: string };
      throw new Error(
        `redis-cli ${args.join(' ')} failed: ${failed.message}\n${failed.stdout ?? ''}${failed.stderr ?? ''}\n` +
          logsOf(states),
        { cause: error },
      );
    }
  };

  /** Owners of every slot as node `index` sees them: slot -> node index. */
  const ownersSeenBy = async (index: number): Promise<Map<number, number>> => {
    const owners = new Map<number, number>();
    const ranges = await onPort(state(index).port, (redis) => redis.cluster('SLOTS'));
    for (const [start, end, master] of ranges) {
      const owner = states.findIndex((node) => node.port === Number(master?.[1]));
      for (let slot = start; slot <= end; slot += 1) owners.set(slot, owner);
    }
    return owners;
  };

  const moveSlots = async (
    slots: readonly number[],
    to: number,
    { keysPerBatch = MIGRATE_BATCH, pauseMs = 0 }: MoveSlotsOptions = {},
  ): Promise<MovedSlot[]> => {
    const target = state(to);
    const owners = await ownersSeenBy(to);
    // One connection per running node for the whole move (onNode's are one command each).
    const open = new Map<number, Redis>();
    const on = (index: number): Redis => {
      const existing = open.get(index);
      if (existing) return existing;
      const redis = new Redis({
        ...nodeOptions,
        host: HOST,
        port: state(index).port,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      redis.on('error', () => {}); // the command's own rejection says what went wrong
      open.set(index, redis);
      return redis;
    };
    const moved: MovedSlot[] = [];
    try {
      for (const slot of slots) {
        const from = owners.get(slot);
        if (from === undefined || from < 0) throw new Error(`no running node serves slot ${slot}`);
        if (from === to) continue;
        const source = state(from);
        await on(to).cluster('SETSLOT', slot, 'IMPORTING', source.id);
        await on(from).cluster('SETSLOT', slot, 'MIGRATING', target.id);
        const keys = Number(await on(from).cluster('COUNTKEYSINSLOT', slot));
        for (;;) {
          const batch = await on(from).cluster('GETKEYSINSLOT', slot, keysPerBatch);
          if (batch.length === 0) break;
          await on(from).migrate(HOST, target.port, '', 0, MIGRATE_TIMEOUT_MS, 'KEYS', ...batch);
          if (pauseMs > 0) await sleep(pauseMs);
        }
        // The target first, so that it serves the slot before the source starts to answer MOVED.
        const others = states.flatMap((node, index) =>
          index !== to && index !== from && running(node) ? [index] : [],
        );
        for (const index of [to, from, ...others]) await on(index).cluster('SETSLOT', slot, 'NODE', target.id);
        moved.push({ slot, from, keys });
      }
    } catch (error) {
      throw new Error(`moving slots to node ${to} failed: ${(error as Error).message}\n${logsOf(states)}`, {
        cause: error,
      });
    } finally {
      for (const redis of open.values()) redis.disconnect();
    }
    return moved;
  };

  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      client?.disconnect();
      await Promise.all(states.map((_, index) => stopNode(index)));
      rmSync(root, { recursive: true, force: true });
    })();
    return stopped;
  };

  /**
   * A node's first start. Its ports were free when chosen, but another process may take one before the
   * node binds it (an outgoing connection's ephemeral port, beside other test files): the node then
   * exits at once, and starts again on ports chosen anew. Only before the cluster is formed, when no
   * other node knows its ports yet.
   */
  const firstStart = (index: number): Promise<void> =>
    startOnFreePorts(
      PORT_RETRIES,
      async (attempt) => {
        if (attempt > 1) {
          const [port, busPort] = (await freePorts(2)) as [number, number];
          states[index] = { ...state(index), port, busPort, child: undefined };
        }
        await startNode(index);
      },
      (error) => /Address already in use/.test((error as Error).message) && !running(state(index)),
    );

  try {
    await Promise.all(states.map((_, index) => firstStart(index)));
    for (const node of states) node.id = await onPort(node.port, (redis) => redis.cluster('MYID'));
    await cli([
      '--cluster',
      'create',
      ...states.map((node) => `${HOST}:${node.port}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ]);
    await waitUntilOk();

    const connected = new Cluster(
      states.map((node) => ({ host: HOST, port: node.port })),
      { ...clientOptions, redisOptions: { maxRetriesPerRequest: 3, ...nodeOptions, ...clientOptions.redisOptions } },
    );
    client = connected;
    connected.on('error', () => {}); // commands reject with their own errors; node errors while one is stopped are expected
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the Cluster client was not ready within 30 s')), 30_000);
      connected.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  } catch (error) {
    await stop();
    throw error;
  }
  const ready = client;

  const slotOf = async (key: string): Promise<number> => ready.cluster('KEYSLOT', key);

  return {
    nodes: states.map((node) => ({
      host: HOST,
      port: node.port,
      id: node.id,
      dir: node.dir,
    })),
    nodesSpec: states.map((node) => `${tls === undefined ? '' : 'rediss://'}${HOST}:${node.port}`).join(','),
    client: ready,
    stopNode,
    startNode,
    isRunning: (index) => running(state(index)),
    waitUntilOk,
    clusterInfo,
    slotOf,
    async masterOf(key) {
      const slot = await slotOf(key);
      const ranges = await ready.cluster('SLOTS');
      for (const [start, end, master] of ranges) {
        if (slot >= start && slot <= end && master) return Number(master[1]);
      }
      throw new Error(`no master serves slot ${slot} (of key ${key})`);
    },
    async replicasOf(index) {
      const node = state(index);
      // One CLUSTER NODES line per replica: `<id> <host:port@bus> <flags> <master id> ...`.
      const lines = await onPort(node.port, (redis) => redis.cluster('REPLICAS', node.id) as Promise<string[]>);
      return lines.map((line) => {
        const id = line.split(' ')[0];
        const replica = states.findIndex((candidate) => candidate.id === id);
        if (replica < 0) throw new Error(`replica ${id} of node ${index} is no node of the cluster`);
        return replica;
      });
    },
    reshard(from, to, slots) {
      const source = state(from);
      const target = state(to);
      return cli([
        '--cluster',
        'reshard',
        `${HOST}:${source.port}`,
        '--cluster-from',
        source.id,
        '--cluster-to',
        target.id,
        '--cluster-slots',
        String(slots),
        '--cluster-yes',
      ]);
    },
    moveSlots,
    stop,
  };
}
