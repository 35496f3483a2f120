/**
 * Where the service's Redis is: one server (`REDIS_URL`), a Redis Cluster (`REDIS_CLUSTER_NODES`, a
 * comma-separated list of seed nodes), or a master watched by Redis Sentinel (`REDIS_SENTINELS`, the
 * sentinels, and `REDIS_SENTINEL_MASTER`, the name they know it by). A seed node or a sentinel is
 * `host:port`, or a URL when it needs a password or TLS (`rediss://:secret@host:port`), with the same
 * credentials for every entry of the list. Parsed once with the rest of the configuration.
 */
import { z } from 'zod';

export interface ClusterNode {
  readonly host: string;
  readonly port: number;
}

export interface ClusterTarget {
  readonly kind: 'cluster';
  readonly nodes: readonly ClusterNode[];
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: boolean;
}

/**
 * A master found through its sentinels, which the connections follow when a replica is promoted.
 * The sentinels' credentials and TLS come with their list; the master's and replicas' credentials are
 * their own (REDIS_USERNAME, REDIS_PASSWORD), and TLS, when the sentinels speak it, is spoken to them too.
 */
export interface SentinelTarget {
  readonly kind: 'sentinel';
  readonly sentinels: readonly ClusterNode[];
  /** The name the sentinels monitor the master by (`sentinel monitor <name> ...`). */
  readonly master: string;
  readonly sentinelUsername: string | undefined;
  readonly sentinelPassword: string | undefined;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: boolean;
}

export type RedisTarget = { readonly kind: 'single'; readonly url: string } | ClusterTarget | SentinelTarget;

interface Seed extends ClusterNode {
  /** Whether it was given as a URL, which carries the credentials and TLS of every node. */
  readonly fromUrl: boolean;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: boolean;
}

const HOST_PORT = /^(?<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(?<port>\d{1,5})$/;

function parseSeed(entry: string): Seed | string {
  if (/^rediss?:\/\//.test(entry)) {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      return `"${entry}" is not a valid URL`;
    }
    const port = Number(url.port || 6379);
    if (url.pathname !== '' && url.pathname !== '/') return 'a cluster node URL cannot name a database';
    return {
      host: url.hostname,
      port,
      fromUrl: true,
      username: url.username === '' ? undefined : decodeURIComponent(url.username),
      password: url.password === '' ? undefined : decodeURIComponent(url.password),
      tls: url.protocol === 'rediss:',
    };
  }
  const match = HOST_PORT.exec(entry);
  if (!match?.groups) return `"${entry}" is not host:port or a redis:// URL`;
  const port = Number(match.groups.port);
  if (port < 1 || port > 65535) return `"${entry}" has no valid port`;
  return { host: match.groups.host ?? '', port, fromUrl: false, username: undefined, password: undefined, tls: false };
}

/** A list of nodes that share their credentials and TLS, as both node lists have them. */
interface NodeList {
  readonly nodes: readonly ClusterNode[];
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: boolean;
}

function parseNodeList(value: string): NodeList | string {
  const seeds: Seed[] = [];
  for (const entry of value.split(',').map((part) => part.trim())) {
    if (entry === '') continue;
    const seed = parseSeed(entry);
    if (typeof seed === 'string') return seed;
    seeds.push(seed);
  }
  if (seeds.length === 0) return 'must list at least one host:port';
  // host:port entries take the credentials of the URL entries; two URLs must agree.
  const urls = seeds.filter((seed) => seed.fromUrl);
  const [auth] = urls;
  if (
    urls.some((seed) => seed.username !== auth?.username || seed.password !== auth?.password || seed.tls !== auth?.tls)
  ) {
    return 'every node must have the same user, password and TLS';
  }
  return {
    nodes: seeds.map(({ host, port }) => ({ host, port })),
    username: auth?.username,
    password: auth?.password,
    tls: auth?.tls ?? false,
  };
}

/** `REDIS_CLUSTER_NODES`: one or more seed nodes, all with the same credentials and TLS. */
export const clusterNodesSchema = z.string().transform((value, context): ClusterTarget => {
  const list = parseNodeList(value);
  if (typeof list === 'string') {
    context.addIssue({ code: 'custom', message: list });
    return z.NEVER;
  }
  return { kind: 'cluster', ...list };
});

/** `REDIS_SENTINELS`: one or more sentinels, all with the same credentials and TLS. */
export const sentinelListSchema = z.string().transform((value, context): NodeList => {
  const list = parseNodeList(value);
  if (typeof list === 'string') {
    context.addIssue({ code: 'custom', message: list });
    return z.NEVER;
  }
  return list;
});

/** The sentinel target of the parsed settings. */
export function sentinelTarget(
  sentinels: NodeList,
  master: string,
  data: { readonly username: string | undefined; readonly password: string | undefined },
): SentinelTarget {
  return {
    kind: 'sentinel',
    sentinels: sentinels.nodes,
    master,
    sentinelUsername: sentinels.username,
    sentinelPassword: sentinels.password,
    username: data.username,
    password: data.password,
    tls: sentinels.tls,
  };
}

const hostPort = ({ host, port }: ClusterNode) => `${host}:${port}`;

/** A target for logs: the single URL without its password, the cluster's seeds, or the master's name and sentinels. */
export function describeTarget(target: RedisTarget, redact: (url: string) => string): string {
  if (target.kind === 'single') return redact(target.url);
  const tls = target.tls ? ' (TLS)' : '';
  if (target.kind === 'sentinel')
    return `sentinel ${target.master} via ${target.sentinels.map(hostPort).join(',')}${tls}`;
  return `cluster ${target.nodes.map(hostPort).join(',')}${tls}`;
}
